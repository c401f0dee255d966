"""``spymaster replay``: replay DBN files through the flow into the lake, with progress."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.config import RECOVERY_EPOCH_S, DateRange, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay DBN files into Bronze and Silver Delta tables",
        description=(
            "Replay DBN files (files, directories or globs; default: the built-in sample) through the "
            "Spymaster dataflow into the lake. Files already ingested whole are skipped unless "
            "--overwrite. Settings not given here come from SPYMASTER_CONFIG and SPYMASTER_* variables."
        ),
    )
    p.add_argument("paths", nargs="*", help="DBN files, directories or globs (default: SPYMASTER_INPUT or the sample)")
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--dates", type=DateRange.parse, help="only sessions in A:B (YYYY-MM-DD:YYYY-MM-DD)")
    p.add_argument("--overwrite", action="store_true", help="recompute files already ingested whole")
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
    from flows.runner import run_flow
    from flows.summary import summarize

    cfg = load_config()
    source = replace(
        cfg.source,
        inputs=tuple(args.paths) or cfg.source.inputs,
        dates=args.dates or cfg.source.dates,
        batch_records=args.batch_records or cfg.source.batch_records,
        speed=args.speed if args.speed is not None else cfg.source.speed,
    )
    cfg = replace(
        cfg,
        source=source,
        lake=replace(cfg.lake, root=args.lake or cfg.lake.root),
        run=replace(cfg.run, overwrite=args.overwrite or cfg.run.overwrite, workers=args.workers or cfg.run.workers),
    )
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    if args.processes > 1 or args.plan_only:
        from flows.cluster import plan_once

        prepared = plan_once(cfg)  # one decision for every process (see flows.cluster)
    else:
        prepared = prepare(cfg)
    plan = prepared.plan
    if plan.outside_dates:
        console.print(f"leaving out {len(plan.outside_dates)} file(s) outside --dates")
    if plan.skipped:
        console.print(f"skipping {len(plan.skipped)} file(s) already ingested whole (use --overwrite to recompute)")
    if args.plan_only:
        console.print(f"planned run {prepared.cfg.run.run_id}: {len(plan.files)} file(s) to replay"
                      f" ({len(plan.overwritten)} under a new generation)")
        return 0
    started = time.perf_counter()
    columns = (TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
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
    console.print(summarize(prepared, time.perf_counter() - started))
    return 0
