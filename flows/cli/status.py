"""``spymaster status``: what the lake holds, which models are registered, how far behind a topic it is."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from flows.config import load_config

if TYPE_CHECKING:
    from flows.jobs.status import LiveLag, RegistryState, StatusReport


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="what the lake holds: tables, sessions, dead letters, registered models, lag behind a topic",
        description=(
            "Print each table's Delta version, rows and last commit; the instruments defined, by class "
            "(future, call, put, stock, spread); the sessions and contracts the lake "
            "covers and which are finished (manifest complete and every completion mark written) and "
            "scored; dead letters by reason; the registered models of the MLflow registry "
            "(MLFLOW_TRACKING_URI, or sqlite mlflow.db in the working directory), their versions and "
            "which one the champion alias names; and, when the input is a topic (--topic, or "
            "SPYMASTER_INPUT=kafka://…), how many messages of each partition are not in the lake yet. "
            "An unreachable registry or broker is said in one sentence; the rest is still printed."
        ),
    )
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--topic", help="kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB to measure the lag behind "
                                   "(default: SPYMASTER_INPUT when it is a topic)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object for machines (keys: flows/jobs/status.py)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from connectors.mlflow.tracking import tracking_uri
    from connectors.topic.input import is_topic_input
    from flows.jobs.status import lake_status

    cfg = load_config()
    topic = args.topic or (cfg.source.inputs[0] if is_topic_input(cfg.source.inputs) else None)
    if topic is not None and not is_topic_input([topic]):
        from operators.errors import ConfigError

        raise ConfigError(f"--topic {topic!r} is not kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB")
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    report = lake_status(lake, tracking_uri(), alias=cfg.scoring.alias, topic=topic,
                         connection=cfg.source.eventhubs_connection)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    print_report(report, Console(width=None if sys.stdout.isatty() else 120))
    return 0


def print_report(report: StatusReport, console: Console) -> None:
    from flows.narration import counts_table

    console.print(f"[bold]lake[/bold] {report.lake}", soft_wrap=True)
    console.print(_tables(report))
    if report.sessions:
        console.print(_sessions(report))
        console.print("  finished: every table holds the contract's rows of the session (completion marks written); "
                      "scored: gold.inference_scores too", soft_wrap=True)
    else:
        console.print("sessions: none yet (nothing has been replayed into this lake)")
    unfinished = [s for s in report.sources if not s.finished]
    for s in unfinished:
        console.print(f"  not finished: {s.source} (generation {s.generation}, manifest {s.status})", soft_wrap=True)
    console.print(counts_table("dead letters", report.dead_letters, "reason"))
    if report.instruments:
        console.print(counts_table("instruments", report.instruments, "class"))
    _print_registry(report.registry, console)
    if report.live is not None:
        _print_live(report.live, console)


def _tables(report: StatusReport) -> Table:
    table = Table(title="tables")
    for name, justify in (("table", "left"), ("version", "right"), ("rows", "right"), ("last commit (UTC)", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for t in report.tables:
        when = t.last_commit.strftime("%Y-%m-%d %H:%M:%S") if t.last_commit else "-"
        table.add_row(t.name, "-" if t.version is None else str(t.version), f"{t.rows:,}", when)
    return table


def _sessions(report: StatusReport) -> Table:
    table = Table(title="sessions")
    for name in ("session", "contracts", "finished", "scored"):
        table.add_column(name)
    for s in report.sessions:
        n = len(s.contracts)
        done, scored = sum(c.finished for c in s.contracts), sum(c.scored for c in s.contracts)
        table.add_row(s.session_date.isoformat(), ", ".join(c.contract_id for c in s.contracts),
                      _share(done, n), _share(scored, n))
    return table


def _share(count: int, total: int) -> str:
    return "yes" if count == total else "no" if count == 0 else f"{count} of {total}"


def _print_registry(registry: RegistryState, console: Console) -> None:
    if registry.error is not None:
        console.print(f"models: {registry.error}", soft_wrap=True)
        return
    if not registry.models:
        console.print(f"models: none registered in {registry.uri}", soft_wrap=True)
        return
    table = Table(title=f"registered models ({registry.uri})")
    for name in ("model", "versions", "aliases", registry.alias):
        table.add_column(name)
    for m in registry.models:
        aliases = ", ".join(f"{a} → {v}" for a, v in sorted(m.aliases.items())) or "-"
        table.add_row(m.name, ", ".join(m.versions), aliases, registry.holder(m) or "none")
    console.print(table)


def _print_live(live: LiveLag, console: Console) -> None:
    if live.error is not None:
        console.print(f"lag behind {live.input}: {live.error}", soft_wrap=True)
        return
    table = Table(title=f"lag behind {live.input}: {live.behind:,} message(s)")
    for name in ("partition", "end offset", "in the lake up to", "behind"):
        table.add_column(name, justify="right")
    for p in live.partitions:
        table.add_row(str(p.partition), f"{p.end_offset:,}", f"{p.lake_offset:,}", f"{p.behind:,}")
    console.print(table)
