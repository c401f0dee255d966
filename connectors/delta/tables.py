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
    """Columns written without a dictionary: nearly unique values (ids, hashes), or any whose
    dictionary costs more CPU than the bytes it saves are worth."""
    statistics: tuple[str, ...] | None = None
    """Columns with min/max statistics (for data skipping); None means every column."""
    uncompressed: tuple[str, ...] = ()
    """Columns written without compression: values snappy cannot shrink (hashes, solved floats),
    where trying cost time and saved nothing. Local lakes only (``local_append``): delta-rs's
    writer, for remote lakes, takes one codec for every column."""

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
    uncompressed=("dedupe_key",),  # a hash: snappy took a sixth of the write to save nothing
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
            ("underlying_id", pa.int64()),  # last: a lake made before it has it added at the end
        ]
    ),
)
"""An option's ``underlying_id`` is what a Bronze replay builds its chain from (``flows.bronze_plan``);
null in rows written before the column existed."""

BRONZE_CMBP_1: Final = TableSpec(
    "bronze.cmbp_1",
    pa.schema(
        [
            ("ts_event", pa.int64()),
            ("ts_recv", pa.int64()),
            ("instrument_id", pa.int64()),
            ("publisher_id", pa.int32()),
            ("action", pa.string()),
            ("side", pa.string()),
            ("price", pa.int64()),
            ("size", pa.int64()),
            ("flags", pa.int32()),
            ("ts_in_delta", pa.int32()),
            ("bid_px", pa.int64()),
            ("ask_px", pa.int64()),
            ("bid_sz", pa.int64()),
            ("ask_sz", pa.int64()),
            ("bid_pb", pa.int32()),
            ("ask_pb", pa.int32()),
            ("dataset", pa.string()),
            ("session_date", pa.date32()),
            ("source", pa.string()),
            ("source_offset", pa.int64()),
            _TS_INGEST,
        ]
    ),
    ("session_date",),
    delta_encoded=("ts_recv",),
    statistics=("ts_recv", "instrument_id", "source_offset"),
)
"""Consolidated top of book (Databento ``cmbp-1``: OPRA's options), record for record: each
update's best bid and offer across venues with the publisher holding each side, and trades."""

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
            ("trade_open_px", pa.int64()),
            ("trade_high_px", pa.int64()),
            ("trade_low_px", pa.int64()),
            ("trade_close_px", pa.int64()),
            ("notional", pa.float64()),
            ("mid_open", pa.float64()),
            ("mid_high", pa.float64()),
            ("mid_low", pa.float64()),
            ("ofi", pa.float64()),
            ("add_bid_size", pa.int64()),
            ("add_ask_size", pa.int64()),
            ("cancel_bid_size", pa.int64()),
            ("cancel_ask_size", pa.int64()),
            ("near_pulled_bid_size", pa.int64()),
            ("near_pulled_ask_size", pa.int64()),
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

def _surface_schema(*lists: str) -> pa.Schema:
    return pa.schema([*_CONTRACT, ("ts_recv", pa.int64()), ("spot_px", pa.int64()),
                      *[(name, pa.list_(pa.float32())) for name in lists]])


_RADAR = {"delta_encoded": ("ts_recv",), "statistics": ("ts_recv", "instrument_id")}

SILVER_WALL_SURFACE_1S: Final = TableSpec(
    "silver.wall_surface_1s", _surface_schema("depth", "change"), ("session_date",),
    high_cardinality=("depth", "change"), **_RADAR)
"""Per second: resting size at each tick offset from spot (``operators.surfaces``), and its change."""

SILVER_VACUUM_SURFACE_1S: Final = TableSpec(
    "silver.vacuum_surface_1s", _surface_schema("depletion"), ("session_date",), high_cardinality=("depletion",),
    **_RADAR)
"""Per second: liquidity that disappeared at each tick offset from spot."""


def _band_schema() -> pa.Schema:
    from operators.surfaces import NORM_NAMES, RAW_NAMES

    return pa.schema([*_CONTRACT, ("ts_recv", pa.int64()), *[(n, pa.float32()) for n in (*RAW_NAMES, *NORM_NAMES)]])


SILVER_PHYSICS_BANDS_1S: Final = TableSpec("silver.physics_bands_1s", _band_schema(), ("session_date",), **_RADAR)
"""Per second: wall and vacuum in AT/NEAR/MID/FAR bands per side, raw and normalised to 0..1."""

GOLD_PHYSICS_CALIBRATION: Final = TableSpec(
    "gold.physics_norm_calibration",
    pa.schema([("contract_id", pa.string()), ("session_date", pa.date32()), ("registry_version", pa.string()),
               ("band", pa.list_(pa.string())), ("lo", pa.list_(pa.float64())), ("hi", pa.list_(pa.float64())),
               ("rows", pa.int64())]),
)
"""Per contract and session: the band quantiles of that full day (``spymaster calibrate``); the
bands of a later session are normalised with the latest calibration before it."""

def _bar_schema() -> pa.Schema:
    from connectors.delta.arrays import struct_fields
    from operators.bars import BAR_DTYPE

    fields = [f for f in struct_fields(BAR_DTYPE) if f.name not in ("ts", "instrument_id")]
    context = [("session_vwap", pa.float64()), ("ma_60s", pa.float64()), ("ma_300s", pa.float64()),
               ("ma_900s", pa.float64())]
    return pa.schema([*_CONTRACT, ("ts", pa.int64()), *fields, *context])


SILVER_BAR_5S: Final = TableSpec("silver.bar_5s", _bar_schema(), ("session_date",), delta_encoded=("ts",),
                                 statistics=("ts", "instrument_id"))
"""5-second bars per contract: trade and mid OHLC, volume, VWAP, every registry feature
(``docs/features.md``), and context: session VWAP and moving averages of the mid close."""

GOLD_SETUP_VECTORS: Final = TableSpec(
    "gold.setup_vectors",
    pa.schema([("episode_id", pa.string()), ("vector_time", pa.int64()), ("model_id", pa.string()), *_CONTRACT,
               ("level_type", pa.string()), ("direction", pa.string()), ("time_bucket", pa.int32()),
               ("lookback_spec", pa.string()), ("feature_vector", pa.list_(pa.float32())),
               ("feature_hash", pa.string()), ("registry_version", pa.string()), ("data_version", pa.string())]),
    ("session_date",),
)
"""One 144-value vector per episode (layout: ``operators.vectors.layout``), from data at or before
``vector_time`` (the episode start). ``data_version`` names the input it came from: the source
file and its ingest generation."""

GOLD_TRAINING_VIEW: Final = TableSpec(
    "gold.training_view",
    pa.schema([*GOLD_SETUP_VECTORS.schema, ("outcome", pa.string()), ("resolved_ts", pa.int64()),
               ("mfe_ticks", pa.float64()), ("mae_ticks", pa.float64()), ("truncated", pa.bool_())]),
    ("session_date",),
)
"""Setup vectors joined with their labels: what training reads (through snapshots)."""

GOLD_FEATURE_SERIES: Final = TableSpec(
    "gold.feature_series",
    pa.schema([*_CONTRACT, ("ts", pa.int64()), ("mid_close", pa.float64()), ("vwap", pa.float64()),
               ("session_vwap", pa.float64()), ("volume", pa.int64()), ("flow_aggressor_imbalance", pa.float64()),
               ("flow_ofi", pa.float64()), ("shape_book_skew", pa.float64()), ("wall_bid_ratio", pa.float64()),
               ("wall_ask_ratio", pa.float64()), ("vacuum_bid_near_depth_ratio", pa.float64()),
               ("vacuum_ask_near_depth_ratio", pa.float64())]),
    ("session_date",),
    delta_encoded=("ts",),
)
"""A compact 5-second series per contract for dashboards (a projection of ``silver.bar_5s``)."""

_NN = ("nn_break", "nn_reject", "nn_chop", "nn_weighted_break", "nn_weighted_reject", "nn_weighted_chop")

GOLD_INFERENCE_SCORES: Final = TableSpec(
    "gold.inference_scores",
    pa.schema([("episode_id", pa.string()), ("model_id", pa.string()), ("model_version", pa.string()),
               ("backend", pa.string()), ("feature_hash", pa.string()), *_CONTRACT, ("level_type", pa.string()),
               ("direction", pa.string()), ("time_bucket", pa.int32()), ("vector_time", pa.int64()),
               ("p_break", pa.float64()), ("p_reject", pa.float64()), ("p_chop", pa.float64()),
               *[(n, pa.float64()) for n in _NN], ("nn_count", pa.int32()),
               ("nn_episode_ids", pa.list_(pa.string())), ("status", pa.string()), ("detail", pa.string()),
               ("attempts", pa.int32()), ("batch_close_ts", pa.int64()),
               ("scored_at", pa.timestamp("us", tz="UTC")), ("latency_ms", pa.float64())]),
    ("session_date",),
    high_cardinality=("episode_id", "feature_hash"),
)
"""One score per episode as it opens (``flows.steps.inference_scores``): class probabilities of ``model_id`` at
``model_version`` (null unless ``status`` is ok), the outcome shares of its ``nn_count`` most
similar historical episodes in that version's retrieval memory (plain and inverse-distance
weighted; null when there are none), and ``batch_close_ts``, the end of the event-time
micro-batch window it was scored in. ``scored_at`` and ``latency_ms`` (from reaching the scoring
step to the score, batching wait included) are wall-clock: the two columns that differ between runs."""

_CHAIN = [("underlier", pa.string()), ("underlying_id", pa.int64()), ("session_date", pa.date32()),
          ("ts_recv", pa.int64())]
_CHAIN_LAYOUT = {"delta_encoded": ("ts_recv",), "statistics": ("ts_recv", "underlying_id")}

SILVER_OPTIONS_TOP_1S: Final = TableSpec(
    "silver.options_top_1s",
    pa.schema([*_CHAIN, ("contract_id", pa.string()), ("instrument_id", pa.int64()), ("option_right", pa.string()),
               ("strike_price", pa.int64()), ("expiration", pa.int64()), ("bid_px", pa.int64()),
               ("bid_sz", pa.int64()), ("ask_px", pa.int64()), ("ask_sz", pa.int64()), ("mid", pa.float64()),
               ("last_trade_px", pa.int64()), ("volume", pa.int64())]),
    ("session_date",), **_CHAIN_LAYOUT)
"""Per option and second it was active (an event or a trade): its top of book at the second's
close (prices in 1e-9, null when a side is empty), the mid in index points, and the second's
last trade price (null without one) and volume (``operators.options.chain.OptionTops``)."""

SILVER_GEX_SURFACE_1S: Final = TableSpec(
    "silver.gex_surface_1s",
    pa.schema([*_CHAIN, ("expiration", pa.int64()), ("strike", pa.float64()), ("model", pa.string()),
               ("sign_convention", pa.string()),
               *[(c, pa.float64()) for c in ("underlying_px", "t_years", "rate", "carry", "vol_floor", "multiplier",
                                             "call_mid", "put_mid", "call_iv", "put_iv", "call_gamma", "put_gamma",
                                             "call_oi", "put_oi", "call_sign", "put_sign", "call_gex", "put_gex",
                                             "net_gex")]]),
    ("session_date",), **_CHAIN_LAYOUT,
    # no dictionary but for the text and the listing (expiry, strike): most numbers are nearly every
    # row's own, and a dictionary built and thrown away per column chunk was a third of the write's
    # CPU; the rest are one value per column chunk (the rate, the signs), and hashing each of their
    # millions of values cost a quarter of the write again, to save 8 % of the files' size
    high_cardinality=("underlying_id", "underlying_px", "t_years", "rate", "carry", "vol_floor", "multiplier",
                      "call_mid", "put_mid", "call_iv", "put_iv", "call_gamma", "put_gamma", "call_oi", "put_oi",
                      "call_sign", "put_sign", "call_gex", "put_gex", "net_gex"),
    # solved σ, Γ and GEX: snappy took a quarter of the write to shrink them by a few percent
    uncompressed=("call_iv", "put_iv", "call_gamma", "put_gamma", "call_gex", "put_gex", "net_gex"))
"""Per underlier, second, expiry and strike: the call and the put side by side with every input
their gamma exposure was computed from (``operators.options.surface``; recompute with
``recompute``). Written at each second an input changed and at least once a minute
(``operators.options.chain.ChainGex``): a second without rows has the rows before it."""

SILVER_GEX_SUMMARY_1S: Final = TableSpec(
    "silver.gex_summary_1s",
    pa.schema([*_CHAIN, ("underlying_px", pa.float64()), ("model", pa.string()), ("sign_convention", pa.string()),
               ("net_gex", pa.float64()), ("call_gex", pa.float64()), ("put_gex", pa.float64()),
               ("zero_gamma", pa.float64()), ("call_wall", pa.float64()), ("put_wall", pa.float64()),
               ("options_priced", pa.int64()), ("grid_low", pa.float64()), ("grid_high", pa.float64()),
               ("grid_points", pa.int64())]),
    ("session_date",), **_CHAIN_LAYOUT)
"""Per underlier and second of ``silver.gex_surface_1s``: net, call and put GEX, the zero-gamma
level (null when the re-priced grid keeps one sign), and the call and put walls."""

CHAIN_TABLES: Final = (SILVER_OPTIONS_TOP_1S, SILVER_GEX_SURFACE_1S, SILVER_GEX_SUMMARY_1S)
"""The tables an option chain writes, end-marked per chain key (``operators.options.chain``)."""

ALL_TABLES: Final = (
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_DEFINITIONS,
    BRONZE_STATISTICS,
    BRONZE_CMBP_1,
    BRONZE_MANIFEST,
    SILVER_BOOK_1S,
    SILVER_BOOK_ANOMALIES,
    SILVER_SESSION_SUMMARY,
    SILVER_SESSION_LEVELS,
    SILVER_LEVEL_APPROACH,
    GOLD_LABELS,
    SILVER_WALL_SURFACE_1S,
    SILVER_VACUUM_SURFACE_1S,
    SILVER_PHYSICS_BANDS_1S,
    GOLD_PHYSICS_CALIBRATION,
    SILVER_BAR_5S,
    GOLD_SETUP_VECTORS,
    GOLD_TRAINING_VIEW,
    GOLD_FEATURE_SERIES,
    GOLD_INFERENCE_SCORES,
    *CHAIN_TABLES,
)
