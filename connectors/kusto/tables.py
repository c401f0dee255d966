"""The Eventhouse tables the flow feeds: their columns in Kusto types, and the mapping each is ingested with.

The schema script ``infra/fabric/eventhouse_schema.kql`` declares the same tables (a test holds
the two equal). Every table ends with ``stream`` and ``position``, a row's identity: the same row
has the same pair whether the flow sent it, re-sent it after a crash, or ``spymaster eventhouse
sync`` shipped it from the lake, so ``summarize take_any(*) by stream, position`` (the
``*Dedup`` materialized views) shows each row once. The pair is the row's natural key in the
lake (contract and session, then the instant or the episode), not a delivery counter.

Prices are index points (the lake keeps 1e-9 fixed point), times are Kusto ``datetime`` (UTC),
durations seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from operators.surfaces import NORM_NAMES, RAW_NAMES


@dataclass(frozen=True, slots=True)
class EventhouseTable:
    name: str
    columns: tuple[tuple[str, str], ...]
    """(column, Kusto type) in table order."""
    source: str
    """The lake table (or tables) its rows come from."""

    @property
    def mapping(self) -> str:
        """The stored JSON ingestion mapping (one ``$.column`` path per column), for any producer."""
        return f"{self.name}Mapping"

    @property
    def parquet_mapping(self) -> str:
        """The stored Parquet ingestion mapping the flow's rows are sent with."""
        return f"{self.name}ParquetMapping"

    @property
    def dedup_view(self) -> str:
        return f"{self.name}Dedup"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def schema_text(self) -> str:
        """``(a:string, b:long)`` as Kusto writes a table schema."""
        return "(" + ", ".join(f"{c}:{t}" for c, t in self.columns) + ")"


_CONTRACT = (("contract_id", "string"), ("instrument_id", "long"), ("underlier", "string"),
             ("session_date", "datetime"))
_IDENTITY = (("stream", "string"), ("position", "long"))

FEATURES: Final = EventhouseTable(
    "Features",
    (*_CONTRACT, ("ts", "datetime"), ("mid_close", "real"), ("vwap", "real"), ("session_vwap", "real"),
     ("volume", "long"), ("flow_aggressor_imbalance", "real"), ("flow_ofi", "real"), ("shape_book_skew", "real"),
     ("wall_bid_ratio", "real"), ("wall_ask_ratio", "real"), ("vacuum_bid_near_depth_ratio", "real"),
     ("vacuum_ask_near_depth_ratio", "real"), *_IDENTITY),
    "gold.feature_series",
)
"""The 5-second feature series per contract. stream = contract|session date, position = ts (ns)."""

SCORES: Final = EventhouseTable(
    "Scores",
    (("episode_id", "string"), ("model_id", "string"), ("model_version", "string"), ("backend", "string"),
     ("feature_hash", "string"), *_CONTRACT, ("level_type", "string"), ("direction", "string"),
     ("time_bucket", "int"), ("vector_time", "datetime"), ("p_break", "real"), ("p_reject", "real"),
     ("p_chop", "real"), ("nn_break", "real"), ("nn_reject", "real"), ("nn_chop", "real"),
     ("nn_weighted_break", "real"), ("nn_weighted_reject", "real"), ("nn_weighted_chop", "real"),
     ("nn_count", "int"), ("nn_episode_ids", "dynamic"), ("status", "string"), ("detail", "string"),
     ("attempts", "int"), ("batch_close_ts", "datetime"), ("scored_at", "datetime"), ("latency_ms", "real"),
     *_IDENTITY),
    "gold.inference_scores",
)
"""One score per episode and model. stream = episode id|model id, position = vector_time (ns)."""

LEVELS: Final = EventhouseTable(
    "Levels",
    (*_CONTRACT, ("level_type", "string"), ("price", "real"), ("known_ts", "datetime"), ("status", "string"),
     ("detail", "string"), ("prior_session_date", "datetime"), *_IDENTITY),
    "silver.session_levels",
)
"""The six key levels per contract and session. stream = contract|session date, position = the
level type's index in PDH, PDL, PMH, PML, ORH, ORL."""

OUTCOMES: Final = EventhouseTable(
    "Outcomes",
    (("episode_id", "string"), *_CONTRACT, ("level_type", "string"), ("level_price", "real"),
     ("direction", "string"), ("start_ts", "datetime"), ("time_bucket", "int"), ("distance_ticks", "real"),
     ("approach_seconds", "int"), ("velocity_tps", "real"), ("outcome", "string"), ("resolved_ts", "datetime"),
     ("time_to_resolution_s", "real"), ("mfe_ticks", "real"), ("mae_ticks", "real"), ("truncated", "bool"),
     *_IDENTITY),
    "silver.level_approach ⋈ gold.labels",
)
"""An episode's approach and, once resolved, its label. stream = episode id, position = start_ts (ns)."""

RADAR: Final = EventhouseTable(
    "Radar",
    (*_CONTRACT, ("ts", "datetime"), ("spot", "real"), ("best_bid", "real"), ("best_ask", "real"),
     ("bid_size", "long"), ("ask_size", "long"), ("mid", "real"),
     *[(n, "real") for n in (*RAW_NAMES, *NORM_NAMES)], *_IDENTITY),
    "silver.book_snapshot_1s (top) + silver.physics_bands_1s",
)
"""Per contract and second: top of book, spot, and the 16 physics bands raw and normalised.
stream = contract|session date, position = ts (ns)."""

GEX: Final = EventhouseTable(
    "Gex",
    (("contract_id", "string"), ("underlying_id", "long"), ("underlier", "string"), ("session_date", "datetime"),
     ("ts", "datetime"), ("underlying_px", "real"), ("model", "string"), ("sign_convention", "string"),
     ("net_gex", "real"), ("call_gex", "real"), ("put_gex", "real"), ("zero_gamma", "real"), ("call_wall", "real"),
     ("put_wall", "real"), ("options_priced", "long"), *_IDENTITY),
    "silver.gex_summary_1s",
)
"""Per option chain and second with GEX rows (``docs/options.md``): net, call and put GEX, the
zero-gamma level and the walls. contract_id is the underlying future, underlier its product.
stream = contract|session date, position = ts (ns)."""

ALL_EVENTHOUSE_TABLES: Final = (FEATURES, SCORES, LEVELS, OUTCOMES, RADAR, GEX)
BY_NAME: Final = {t.name: t for t in ALL_EVENTHOUSE_TABLES}
