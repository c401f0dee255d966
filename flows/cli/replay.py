"""``spymaster replay``: replay DBN files (or, with ``--from-bronze``, a lake's own Bronze) through the
flow into the lake, with progress."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.config import BRONZE_SCHEME, RECOVERY_EPOCH_S, DateRange, load_config
from operators.errors import ConfigError

if TYPE_CHECKING:
    from connectors.dbn.chains import ChainFacts
    from flows.app import PreparedRun
    from flows.bronze_plan import BronzePlan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay DBN files (or Bronze itself) into Bronze, Silver and Gold Delta tables",
        description=(
            "Replay DBN files (files, directories or globs; default: the built-in sample) through the "
            "Spymaster dataflow into the lake. Files already ingested whole are skipped unless "
            "--overwrite. With --from-bronze, replay the lake's own bronze.mbo instead (a day captured "
            "live, after the topic's retention has passed or an operator changed), one (session, contract) "
            "at a time, into the Silver and Gold tables of --to-lake (default: the same lake; its sessions "
            "computed from their original source are recomputed only with --overwrite); nothing is "
            "written to Bronze. Settings not given here come from SPYMASTER_CONFIG and SPYMASTER_* variables."
        ),
    )
    p.add_argument("paths", nargs="*", help="DBN files, directories or globs (default: SPYMASTER_INPUT or the sample)")
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake); with --from-bronze, the lake read")
    p.add_argument("--from-bronze", action="store_true",
                   help="replay bronze.mbo of --lake (with its instrument definitions) instead of files")
    p.add_argument("--to-lake", help="with --from-bronze: the lake whose Silver and Gold are written (default: --lake)")
    p.add_argument("--dates", type=DateRange.parse, help="only sessions in A:B (YYYY-MM-DD:YYYY-MM-DD)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute files (with --from-bronze: sessions of contracts) already done: their Silver "
                        "and Gold rows are deleted and written anew")
    p.add_argument("--workers", type=int, help="Bytewax workers per process (default 1)")
    p.add_argument("--processes", type=int, default=1,
                   help="Bytewax processes on this machine (default 1); the plan is decided once, here")
    p.add_argument("--plan-only", action="store_true",
                   help="decide the plan (skip finished files; --overwrite deletes and opens a new generation) "
                        "and exit, e.g. before starting processes by hand or on Kubernetes")
    p.add_argument("--batch-records", type=int, help="records per batch (default 65536)")
    p.add_argument("--speed", type=float, help="pace at real time x SPEED (default: as fast as possible)")
    p.add_argument("--recovery", type=Path,
                   help="Bytewax recovery directory (initialized on first use): resume after a crash")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.app import prepare
    from flows.narration import closing_summary, committed_rows
    from flows.runner import run_flow

    cfg = load_config()
    inputs, target = _input_and_lake(args, cfg.source.inputs, cfg.lake.root)
    source = replace(
        cfg.source,
        inputs=inputs,
        dates=args.dates or cfg.source.dates,
        batch_records=args.batch_records or cfg.source.batch_records,
        speed=args.speed if args.speed is not None else cfg.source.speed,
    )
    cfg = replace(
        cfg,
        source=source,
        lake=replace(cfg.lake, root=target),
        run=replace(cfg.run, overwrite=args.overwrite or cfg.run.overwrite, workers=args.workers or cfg.run.workers),
    )
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    if args.processes > 1 or args.plan_only:
        from flows.cluster import plan_once

        prepared = plan_once(cfg)  # one decision for every process (see flows.cluster)
    else:
        prepared = prepare(cfg)
    plan = prepared.plan
    for line in plan_lines(prepared):
        console.print(line)
    if args.plan_only:
        return 0
    started = time.perf_counter()
    unit = "partitions" if prepared.bronze is not None else "files"
    columns = (TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("replay", total=len(plan.files), rate="")

        def tick(p) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=p.files_done, rate=f"{p.records:,} records  {p.records / elapsed:,.0f}/s")

        if args.processes > 1:
            from flows.cluster import ClusterSpec, run_cluster

            spec = ClusterSpec(processes=args.processes, workers=cfg.run.workers, recovery=args.recovery)
            run_cluster(prepared, spec, on_tick=tick)
        else:
            run_flow(prepared, workers=cfg.run.workers, recovery=args.recovery,
                     epoch_interval=timedelta(seconds=RECOVERY_EPOCH_S) if args.recovery else None, on_tick=tick)
    seconds = time.perf_counter() - started
    committed = None if args.processes > 1 else committed_rows(prepared)  # other processes' sinks: unknown here
    console.print(closing_summary(prepared, seconds, title=_title(prepared, seconds), committed=committed))
    return 0


def _title(run: PreparedRun, seconds: float) -> str:
    if run.bronze is not None:
        return (f"replay from Bronze: {len(run.bronze.slices)} (session, contract) partition(s) in {seconds:,.1f} s"
                f" ({len(run.bronze.done)} skipped as already computed)")
    return (f"replay: {len(run.plan.files)} file(s) in {seconds:,.1f} s"
            f" ({len(run.plan.skipped)} skipped as already ingested)")


def _input_and_lake(args: argparse.Namespace, inputs: tuple[str, ...], root: str) -> tuple[tuple[str, ...], str]:
    """The inputs and the lake written: ``bronze://LAKE`` and --to-lake for --from-bronze."""
    if not args.from_bronze:
        if args.to_lake:
            raise ConfigError("--to-lake names the lake a --from-bronze replay writes; a file replay writes --lake")
        return tuple(args.paths) or inputs, args.lake or root
    if args.paths:
        raise ConfigError(f"--from-bronze reads bronze.mbo of --lake, not files; drop {args.paths[0]}")
    read = args.lake or root
    return (f"{BRONZE_SCHEME}{read}",), args.to_lake or read


def plan_lines(prepared: PreparedRun) -> list[str]:
    """What the plan decided, a line each: what is left out or skipped, and what is replayed."""
    if prepared.bronze is not None:
        return _bronze_lines(prepared.bronze, prepared.plan.chains, prepared.cfg.run.run_id)
    plan = prepared.plan
    lines = [f"leaving out {len(plan.outside_dates)} file(s) outside --dates"] if plan.outside_dates else []
    if plan.skipped:
        lines.append(f"skipping {len(plan.skipped)} file(s) already ingested whole (use --overwrite to recompute)")
    lines.append(f"planned run {prepared.cfg.run.run_id}: {len(plan.files)} file(s) to replay "
                 f"({len(plan.overwritten)} under a new generation)")
    return lines


def _bronze_lines(bronze: BronzePlan, chains: ChainFacts, run_id: str) -> list[str]:
    from connectors.bronze.catalog import QUOTES

    lines = []
    if bronze.finished:
        lines.append(f"skipping {len(bronze.finished)} Bronze partition(s) already replayed from "
                     "Bronze (use --overwrite to recompute)")
    if bronze.original:
        lines.append(f"skipping {len(bronze.original)} Bronze partition(s) this lake already computed "
                     "from their original source (use --overwrite to recompute them from Bronze)")
    quotes = sum(1 for s in bronze.slices if s.schema == QUOTES)
    lines.append(f"planned run {run_id}: {len(bronze.slices) - quotes} (session, contract) partition(s) of "
                 f"{bronze.table.uri} at version {bronze.table.version} to replay "
                 f"({len(bronze.overwritten)} overwritten)")
    if quotes and bronze.quotes is not None:
        lines.append(f"and {quotes} (session, source) partition(s) of consolidated option quotes, "
                     f"{bronze.quotes.uri} at version {bronze.quotes.version}")
    if chains.feeds:
        options = sum(len(sources) for sources in chains.feeds.values())
        lines.append(f"rebuilding {len(chains.feeds)} option chain(s) (underlier and session) from {options} option "
                     "partition(s): a chain's GEX rows come once all of its options have been read")
    return lines
