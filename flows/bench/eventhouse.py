"""``spymaster bench --eventhouse``: what feeding an Eventhouse costs a replay, and how fast rows land.

The same simulated day is replayed twice into fresh lakes, once without and once with every
Eventhouse table on, the Eventhouse being the local one (``flows.services.eventhouse``) in a
process of its own, so its work does not share this process's interpreter. The flow's time
includes the sink's drain at the end of input (the replay is not finished until the last batch is
acknowledged); the cost is the relative drop in records/s. The replay's flush interval is the
default for a replay (``REPLAY_FLUSH_S``), so rows go in few, large requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True, slots=True)
class EventhouseBench:
    records: int
    plain_rps: float
    """Records/s of the whole flow with no Eventhouse."""
    with_sink_rps: float
    """Records/s of the whole flow feeding the five Eventhouse tables (drain included)."""
    cost: float
    """1 - with_sink_rps / plain_rps: the share of throughput the sink costs (target <= 0.10)."""
    eventhouse_rows: int
    eventhouse_rows_per_s: float
    """Rows acknowledged by the Eventhouse over the flow's whole run."""
    requests: int


def measure_eventhouse(day: list[Path], scratch: Path, records: int, workers: int = 1) -> EventhouseBench:
    from connectors.kusto.config import EventhouseConfig
    from connectors.kusto.sink import EventhouseSink
    from flows.app import PreparedRun, prepare
    from flows.config import load_config
    from flows.jobs.eventhouse import SCHEMA_SCRIPT
    from flows.runner import run_flow
    from flows.services.eventhouse import start_local_eventhouse

    def timed(lake: Path, eventhouse: EventhouseConfig | None) -> tuple[float, PreparedRun]:
        cfg = load_config({})
        cfg = replace(cfg, source=replace(cfg.source, inputs=tuple(map(str, day))),
                      lake=replace(cfg.lake, root=str(lake)), run=replace(cfg.run, workers=workers))
        if eventhouse is not None:
            cfg = replace(cfg, eventhouse=eventhouse)
        prepared = prepare(cfg)
        started = time.perf_counter()
        run_flow(prepared, workers=workers)
        return time.perf_counter() - started, prepared

    plain_s, _ = timed(scratch / "lake-plain", None)
    with start_local_eventhouse(log_path=scratch / "eventhouse.log", schema=SCHEMA_SCRIPT) as eh:
        sink_s, prepared = timed(scratch / "lake-eventhouse", EventhouseConfig(uri=eh.url, auth="none"))
        sinks = [s for s in prepared.sinks.eventhouse.values() if isinstance(s, EventhouseSink)]
        rows = sum(sinks[0].stats.acknowledged.values()) if sinks else 0  # one stats object for all tables
        requests = _requests(eh.url)
    plain_rps, sink_rps = records / plain_s, records / sink_s
    return EventhouseBench(records, plain_rps, sink_rps, 1 - sink_rps / plain_rps, rows, rows / sink_s, requests)


def _requests(url: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/spymaster/stats", timeout=10) as reply:  # noqa: S310 - loopback
        return int(json.load(reply)["ingest_ok"])


def print_eventhouse(result: EventhouseBench, console: Console) -> None:
    table = Table(title=f"spymaster bench --eventhouse: {result.records:,} MBO records into the local Eventhouse")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("whole flow, no Eventhouse, records/s", f"{result.plain_rps:,.0f}")
    table.add_row("whole flow feeding 5 Eventhouse tables, records/s", f"{result.with_sink_rps:,.0f}")
    table.add_row("cost = 1 - with / without (target <= 10 %)", f"{result.cost:.1%}")
    table.add_row("rows acknowledged by the Eventhouse", f"{result.eventhouse_rows:,}")
    table.add_row("rows/s into the Eventhouse (over the run)", f"{result.eventhouse_rows_per_s:,.0f}")
    table.add_row("streaming-ingest requests", f"{result.requests:,}")
    console.print(table)
