"""Every Delta table Spymaster writes: its name, Arrow schema and partitioning.

Delta has no unsigned integers and no nanosecond timestamps, so:
- nanosecond event times (``ts_event``, ``ts_recv``, ``first_ts_recv`` …) are int64 ns since the
  UNIX epoch (UTC), exactly as DBN carries them; ``ts_ingest`` is a wall-clock microsecond
  timestamp (it is the one column that differs between runs);
- ``order_id`` (u64 in DBN) is stored as int64 holding the same 64 bits (two's complement). Ids
  below 2**63 — every CME id seen in practice — read unchanged; to recover a larger id, read it
  as unsigned: ``np.asarray(col, np.int64).view(np.uint64)`` or ``col & 0xFFFFFFFFFFFFFFFF`` in
  SQL engines with 128-bit arithmetic;
- u32 sizes, sequence numbers and counts widen to int64, which is lossless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from operators.records import BOOK_DEPTH


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table's identity: ``name`` is ``layer.table``; it lives at ``<lake>/<layer>/<table>``."""

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    delta_encoded: tuple[str, ...] = ()
    """Increasing integer columns (times, offsets): DELTA_BINARY_PACKED, no dictionary."""
    high_cardinality: tuple[str, ...] = ()
    """Columns with nearly unique values (ids, hashes): no dictionary attempt."""
    statistics: tuple[str, ...] | None = None
    """Columns with min/max statistics (for data skipping); None means every column."""

    @property
    def relative_path(self) -> str:
        return self.name.replace(".", "/")


_TS_INGEST = pa.field("ts_ingest", pa.timestamp("us", tz="UTC"))

BRONZE_MBO: Final = TableSpec(
    "bronze.mbo",
    pa.schema(
        [
            ("ts_event", pa.int64()),
            ("ts_recv", pa.int64()),
            _TS_INGEST,
            ("dataset", pa.string()),
            ("venue", pa.string()),
            ("publisher_id", pa.int32()),
            ("instrument_id", pa.int64()),
            ("contract_id", pa.string()),
            ("underlier", pa.string()),
            ("instrument_type", pa.string()),
            ("action", pa.string()),
            ("side", pa.string()),
            ("price", pa.int64()),
            ("size", pa.int64()),
            ("order_id", pa.int64()),
            ("flags", pa.int32()),
            ("sequence", pa.int64()),
            ("channel_id", pa.int32()),
            ("ts_in_delta", pa.int32()),
            ("session_date", pa.date32()),
            ("source", pa.string()),
            ("source_offset", pa.int64()),
            ("dedupe_key", pa.int64()),
        ]
    ),
    ("session_date", "underlier", "instrument_type"),
    delta_encoded=("ts_event", "ts_recv", "sequence", "source_offset"),
    high_cardinality=("order_id", "dedupe_key", "ts_in_delta"),
    statistics=("ts_recv", "instrument_id", "source_offset", "price"),
)

BRONZE_MBO_DLQ: Final = TableSpec(
    "bronze.mbo_dlq",
    pa.schema(
        [
            ("source", pa.string()),
            ("source_offset", pa.int64()),
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("raw", pa.binary()),
            ("instrument_id", pa.int64()),
            ("ts_recv", pa.int64()),
            _TS_INGEST,
        ]
    ),
)

BRONZE_DEFINITIONS: Final = TableSpec(
    "bronze.instrument_definitions",
    pa.schema(
        [
            ("instrument_id", pa.int64()),
            ("raw_symbol", pa.string()),
            ("underlier", pa.string()),
            ("instrument_class", pa.string()),
            ("instrument_type", pa.string()),
            ("strike_price", pa.int64()),
            ("expiration", pa.int64()),
            ("tick_size", pa.int64()),
            ("multiplier", pa.float64()),
            ("ts_recv", pa.int64()),
            ("dataset", pa.string()),
            ("source", pa.string()),
            ("source_offset", pa.int64()),
            _TS_INGEST,
        ]
    ),
)

BRONZE_STATISTICS: Final = TableSpec(
    "bronze.statistics",
    pa.schema(
        [
            ("ts_event", pa.int64()),
            ("ts_recv", pa.int64()),
            ("ts_ref", pa.int64()),
            ("instrument_id", pa.int64()),
            ("stat_type", pa.int32()),
            ("price", pa.int64()),
            ("quantity", pa.int64()),
            ("sequence", pa.int64()),
            ("update_action", pa.int32()),
            ("stat_flags", pa.int32()),
            ("channel_id", pa.int32()),
            ("dataset", pa.string()),
            ("session_date", pa.date32()),
            ("source", pa.string()),
            ("source_offset", pa.int64()),
            _TS_INGEST,
        ]
    ),
)

BRONZE_MANIFEST: Final = TableSpec(
    "bronze.raw_manifest",
    pa.schema(
        [
            ("source", pa.string()),
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("size_bytes", pa.int64()),
            ("schema", pa.string()),
            ("records", pa.int64()),
            ("faults", pa.int64()),
            ("first_ts_recv", pa.int64()),
            ("last_ts_recv", pa.int64()),
            ("session_dates", pa.list_(pa.date32())),
            ("book_keys", pa.list_(pa.string())),
            ("generation", pa.int32()),
            ("status", pa.string()),
            ("run_id", pa.string()),
            _TS_INGEST,
        ]
    ),
)


def _level_fields() -> list[tuple[str, pa.DataType]]:
    fields: list[tuple[str, pa.DataType]] = []
    for side in ("bid", "ask"):
        for kind, dtype in (("px", pa.int64()), ("sz", pa.int64()), ("ct", pa.int64())):
            fields += [(f"{side}_{kind}_{i:02d}", dtype) for i in range(BOOK_DEPTH)]
    return fields


SILVER_BOOK_1S: Final = TableSpec(
    "silver.book_snapshot_1s",
    pa.schema(
        [
            ("contract_id", pa.string()),
            ("instrument_id", pa.int64()),
            ("underlier", pa.string()),
            ("session_date", pa.date32()),
            ("ts_recv", pa.int64()),
            ("book_valid", pa.bool_()),
            *_level_fields(),
            ("best_bid_px", pa.int64()),
            ("best_ask_px", pa.int64()),
            ("mid_px", pa.float64()),
            ("spread_ticks", pa.int32()),
            ("microprice", pa.float64()),
            ("last_trade_px", pa.int64()),
            ("last_trade_sz", pa.int64()),
            ("volume", pa.int64()),
            ("buy_volume", pa.int64()),
            ("sell_volume", pa.int64()),
            ("trade_count", pa.int64()),
            ("add_count", pa.int64()),
            ("cancel_count", pa.int64()),
            ("modify_count", pa.int64()),
            ("event_count", pa.int64()),
        ]
    ),
    ("session_date", "underlier"),
    delta_encoded=("ts_recv",),
)

SILVER_BOOK_ANOMALIES: Final = TableSpec(
    "silver.book_anomalies",
    pa.schema(
        [
            ("contract_id", pa.string()),
            ("instrument_id", pa.int64()),
            ("underlier", pa.string()),
            ("session_date", pa.date32()),
            ("anomaly", pa.string()),
            ("count", pa.int64()),
        ]
    ),
    ("session_date",),
)
"""Book anomalies (cancel of an unknown order, crossed book …) per contract and session."""

_CONTRACT = [("contract_id", pa.string()), ("instrument_id", pa.int64()), ("underlier", pa.string()),
             ("session_date", pa.date32())]

SILVER_SESSION_SUMMARY: Final = TableSpec(
    "silver.session_summary",
    pa.schema([*_CONTRACT, ("rth_high", pa.int64()), ("rth_low", pa.int64()), ("pm_high", pa.int64()),
               ("pm_low", pa.int64()), ("or_high", pa.int64()), ("or_low", pa.int64()), ("complete", pa.bool_())]),
)
"""What a later session needs of this one (its RTH high and low become the next PDH and PDL)."""

SILVER_SESSION_LEVELS: Final = TableSpec(
    "silver.session_levels",
    pa.schema([*_CONTRACT, ("level_type", pa.string()), ("price", pa.int64()), ("known_ts", pa.int64()),
               ("status", pa.string()), ("detail", pa.string()), ("prior_session_date", pa.date32())]),
    ("session_date",),
)
"""One row per level type: ``status`` ok with the price and the instant it becomes known, or
missing with the reason (``price`` and ``known_ts`` null)."""

SILVER_LEVEL_APPROACH: Final = TableSpec(
    "silver.level_approach",
    pa.schema([("episode_id", pa.string()), *_CONTRACT, ("level_type", pa.string()), ("level_price", pa.int64()),
               ("level_known_ts", pa.int64()), ("direction", pa.string()), ("start_ts", pa.int64()),
               ("time_bucket", pa.int32()), ("distance_ticks", pa.float64()), ("approach_seconds", pa.int32()),
               ("velocity_tps", pa.float64()), ("max_distance_ticks", pa.float64()), ("start_mid", pa.float64())]),
    ("session_date",),
)

GOLD_LABELS: Final = TableSpec(
    "gold.labels",
    pa.schema([("episode_id", pa.string()), *_CONTRACT, ("level_type", pa.string()), ("direction", pa.string()),
               ("start_ts", pa.int64()), ("level_price", pa.int64()), ("outcome", pa.string()),
               ("resolved_ts", pa.int64()), ("time_to_resolution_ns", pa.int64()), ("mfe_ticks", pa.float64()),
               ("mae_ticks", pa.float64()), ("truncated", pa.bool_()), ("break_ticks", pa.int32()),
               ("reject_ticks", pa.int32()), ("horizon_seconds", pa.int32())]),
    ("session_date",),
)

ALL_TABLES: Final = (
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_DEFINITIONS,
    BRONZE_STATISTICS,
    BRONZE_MANIFEST,
    SILVER_BOOK_1S,
    SILVER_BOOK_ANOMALIES,
    SILVER_SESSION_SUMMARY,
    SILVER_SESSION_LEVELS,
    SILVER_LEVEL_APPROACH,
    GOLD_LABELS,
)
TABLES_BY_NAME: Final = {spec.name: spec for spec in ALL_TABLES}
