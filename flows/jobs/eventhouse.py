"""Offline Eventhouse jobs: apply the schema script, and ship what the lake holds (``sync``).

``sync`` reads the lake tables a range of sessions covers, turns them into Eventhouse rows with
the functions the flow uses (``connectors.kusto.rows``), and sends them with the flow's
``Shipper``: the same rows with the same identities, so shipping a range twice, or a range the
flow already sent, leaves the dedup views unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    GOLD_FEATURE_SERIES,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    SILVER_BOOK_1S,
    SILVER_GEX_SUMMARY_1S,
    SILVER_LEVEL_APPROACH,
    SILVER_PHYSICS_BANDS_1S,
    SILVER_SESSION_LEVELS,
    SILVER_WALL_SURFACE_1S,
    TableSpec,
)
from connectors.kusto.client import Shipper, query_client
from connectors.kusto.config import EventhouseConfig
from connectors.kusto.rows import (
    RADAR_TOP,
    features_rows,
    gex_rows,
    levels_rows,
    outcomes_rows,
    radar_rows,
    scores_rows,
)
from connectors.kusto.script import split_commands
from connectors.kusto.tables import BY_NAME
from flows.config import DateRange

log = logging.getLogger("spymaster.eventhouse")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_SCRIPT = ROOT / "infra" / "fabric" / "eventhouse_schema.kql"
SYNC_BATCH_ROWS = 50_000


def apply_schema(cfg: EventhouseConfig, script: Path = SCHEMA_SCRIPT,
                 on_command: Callable[[str], None] | None = None) -> int:
    """Run every command of ``script`` through the management endpoint (they are idempotent:
    ``.create-merge``, ``.create-or-alter``, ``.alter``); how many ran."""
    client = query_client(cfg)
    try:
        script_commands = split_commands(script.read_text())
        for command in script_commands:
            client.execute_mgmt(cfg.database, command)
            if on_command is not None:
                on_command(command.splitlines()[0])
        return len(script_commands)
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class SyncResult:
    table: str
    rows: int


def _where(dates: DateRange | None) -> str | None:
    if dates is None:
        return None
    return f"\"session_date\" >= '{dates.first.isoformat()}' AND \"session_date\" <= '{dates.last.isoformat()}'"


def _read(lake: Lake, spec: TableSpec, dates: DateRange | None, columns: list[str] | None = None) -> pa.Table:
    return lake.read(spec, columns, _where(dates))


def eventhouse_rows(lake: Lake, table: str, dates: DateRange | None) -> pa.Table:
    """What the lake holds for Eventhouse ``table`` over ``dates`` (all sessions if None)."""
    if table == "Features":
        return features_rows(_read(lake, GOLD_FEATURE_SERIES, dates))
    if table == "Scores":
        return scores_rows(_read(lake, GOLD_INFERENCE_SCORES, dates))
    if table == "Levels":
        return levels_rows(_read(lake, SILVER_SESSION_LEVELS, dates))
    if table == "Outcomes":
        return outcomes_rows(_read(lake, SILVER_LEVEL_APPROACH, dates), _read(lake, GOLD_LABELS, dates))
    if table == "Radar":
        return _radar(lake, dates)
    if table == "Gex":
        return gex_rows(_read(lake, SILVER_GEX_SUMMARY_1S, dates).sort_by([("underlier", "ascending"),
                                                                            ("ts_recv", "ascending")]))
    msg = f"unknown Eventhouse table {table!r}"
    raise ValueError(msg)


def _radar(lake: Lake, dates: DateRange | None) -> pa.Table:
    keys = ["contract_id", "session_date", "ts_recv"]
    bands = _read(lake, SILVER_PHYSICS_BANDS_1S, dates)
    top = _read(lake, SILVER_BOOK_1S, dates, [*keys, *RADAR_TOP])
    top = top.rename_columns([RADAR_TOP.get(n, n) for n in top.column_names])
    spot = _read(lake, SILVER_WALL_SURFACE_1S, dates, [*keys, "spot_px"])
    joined = bands.join(top, keys, join_type="inner").join(spot, keys, join_type="inner")
    joined = joined.sort_by([("contract_id", "ascending"), ("ts_recv", "ascending")])
    return radar_rows(joined, joined.select(list(RADAR_TOP.values())), joined["spot_px"].combine_chunks())


def _batches(rows: pa.Table, size: int) -> Iterator[pa.Table]:
    for start in range(0, rows.num_rows, size):
        yield rows.slice(start, size)


def sync(lake: Lake, cfg: EventhouseConfig, dates: DateRange | None,
         on_batch: Callable[[str, int, int], None] | None = None) -> list[SyncResult]:
    """Ship every row the lake holds for ``dates`` to each of ``cfg.tables``; rows per table."""
    results = []
    for name in cfg.tables:
        rows = eventhouse_rows(lake, name, dates)
        shipper = Shipper(cfg, BY_NAME[name])
        try:
            sent = 0
            for batch in _batches(rows, SYNC_BATCH_ROWS):
                shipper.send(batch)
                sent += batch.num_rows
                if on_batch is not None:
                    on_batch(name, sent, rows.num_rows)
        finally:
            shipper.close()
        results.append(SyncResult(name, rows.num_rows))
    return results
