"""The one Spymaster dataflow: source → check → Bronze; → books → Silver.

The graph does not know which source feeds it: anything that yields ``RecordChunk``,
``SourceFault`` and ``SourceEnd`` items (DBN files today, a Kafka topic next) plugs in at
``mbo_in``; a tailed topic adds ``SourceTick`` items, which only the books read (``book_slices``
fans them out; every other step passes them by). Step ids are stable names of what comes out;
recovery is keyed by them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import bytewax.operators as op
import pyarrow as pa
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from connectors.dbn.chains import ChainFacts
from connectors.delta.lake import Lake
from connectors.delta.sink import DeltaAppendSink, TableWrite
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_CMBP_1,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    GOLD_FEATURE_SERIES,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    GOLD_SETUP_VECTORS,
    GOLD_TRAINING_VIEW,
    SILVER_BAR_5S,
    SILVER_BOOK_1S,
    SILVER_BOOK_ANOMALIES,
    SILVER_GEX_SUMMARY_1S,
    SILVER_GEX_SURFACE_1S,
    SILVER_LEVEL_APPROACH,
    SILVER_OPTIONS_TOP_1S,
    SILVER_PHYSICS_BANDS_1S,
    SILVER_SESSION_LEVELS,
    SILVER_SESSION_SUMMARY,
    SILVER_VACUUM_SURFACE_1S,
    SILVER_WALL_SURFACE_1S,
    TableSpec,
)
from connectors.kusto.rows import features_rows, gex_rows, levels_rows, scores_rows
from flows.config import AnalyticsConfig, AppConfig
from flows.items import (
    BookRows,
    ChainProfiles,
    Checked,
    CheckedChunk,
    PriorSession,
    SeriesPiece,
    SessionBars,
    SessionOpened,
    SessionSeries,
)
from flows.plan import ReplayPlan
from flows.route import book_slices, chain_slices, check, partition_news
from flows.steps.book_1s import BookLogicState, BookSecondsLogic
from flows.steps.option_chain import (
    ChainItem,
    ChainLogic,
    ChainLogicState,
    chain_profiles,
    chained_sessions,
    profiled_sessions,
    underlying_seconds,
)
from flows.steps.option_relay import OptionRelayLogic, RelayState
from flows.steps.prior_sessions import PriorSessionLogic, _JoinState
from flows.steps.radar_1s import SurfaceLogic, _SurfaceLogicState
from flows.steps.session_episodes import EpisodeInput, EpisodesState, SessionEpisodesLogic
from flows.steps.session_series import SessionSeriesLogic, _SeriesState
from flows.writes import AnalyticsWrites, BronzeWrites, ChainWrites, EventhouseWrites, SilverWrites, SurfaceWrites
from operators.chunks import RecordChunk, SourceEnd
from operators.options.chain import ChainGexConfig

V = TypeVar("V")

@dataclass(frozen=True, slots=True)
class Sinks:
    """Where each table goes. Tests swap in other sinks; the default is the Delta lake."""

    by_table: dict[str, Sink[tuple[str, TableWrite]]]
    eventhouse: dict[str, Sink[tuple[str, pa.Table]]] = field(default_factory=dict)
    """Eventhouse tables fed beside the lake ([eventhouse]; connectors.kusto.sink), by table name."""

    @staticmethod
    def delta(cfg: AppConfig, lake: Lake) -> Sinks:
        sinks: dict[str, Sink[tuple[str, TableWrite]]] = {
            s.name: DeltaAppendSink(lake, s, partitions=cfg.lake.sink_partitions, flush_rows=cfg.lake.flush_rows,
                                    commit_every_s=cfg.lake.commit_every_s)
            for s in ALL_TABLES
        }
        if cfg.outputs.enabled:  # [outputs]: the same rows on Kafka topics too (connectors.kafka.sink)
            from connectors.kafka.sink import tee_to_topics

            sinks = tee_to_topics(sinks, lake, cfg.outputs, {s.name: s for s in ALL_TABLES})
        eventhouse: dict[str, Sink[tuple[str, pa.Table]]] = {}
        if cfg.eventhouse.enabled:
            from connectors.kusto.sink import EventhouseSink, EventhouseStats
            from connectors.kusto.tables import BY_NAME

            stats = EventhouseStats()
            eventhouse = {t: EventhouseSink(cfg.eventhouse, BY_NAME[t], stats=stats) for t in cfg.eventhouse.tables}
        return Sinks(sinks, eventhouse)

    def __getitem__(self, spec: TableSpec) -> Sink[tuple[str, TableWrite]]:
        return self.by_table[spec.name]

    def keep_snapshots(self, kept: bool) -> None:
        """Tell the Delta sinks whether the run keeps its snapshots (``connectors.delta.sink``)."""
        for sink in self.by_table.values():
            delta = getattr(sink, "inner", sink)  # a table teed to a topic writes through its Delta sink
            if isinstance(delta, DeltaAppendSink):
                delta.snapshots_kept = kept


def _step(spec: TableSpec) -> str:
    """Step ids may not contain dots: ``bronze.mbo`` → ``bronze_mbo``."""
    return spec.name.replace(".", "_")


def _of_schema(schema: str, item: Checked) -> bool:
    if isinstance(item, CheckedChunk):
        return schema == "mbo"
    if isinstance(item, RecordChunk | SourceEnd):
        return item.schema == schema
    return False


def _new_book(depth: int, resume: BookLogicState | None) -> BookSecondsLogic:
    return BookSecondsLogic(depth, resume)


def _value(kv: tuple[str, V]) -> V:
    return kv[1]


def build_flow(cfg: AppConfig, source: Source, plan: ReplayPlan, sinks: Sinks, *, bronze_out: bool = True) -> Dataflow:
    """Wire the graph. ``source`` yields chunks, faults and ends; ``plan`` names the streams.

    ``bronze_out=False`` is for a source that reads Bronze itself (``connectors.bronze``): its
    records are already the system of record, so they are not written to Bronze again. Dead
    letters (records that fail validation now) and the manifest (what was replayed) still are.
    """
    flow = Dataflow("spymaster")
    items = op.input("mbo_in", flow, source)
    checked = op.map("checked", items, check)

    bronze = BronzeWrites(plan, cfg.run.run_id)
    records = (("mbo", BRONZE_MBO), ("definition", BRONZE_DEFINITIONS), ("statistics", BRONZE_STATISTICS),
               ("cmbp-1", BRONZE_CMBP_1))
    for schema, spec in records if bronze_out else ():
        mine = op.filter(f"{schema}_items", checked, partial(_of_schema, schema))
        op.output(_step(spec), op.flat_map(f"{_step(spec)}_rows", mine, bronze.records), sinks[spec])
    op.output(_step(BRONZE_MBO_DLQ), op.flat_map("dead_letters", checked, bronze.dead_letters), sinks[BRONZE_MBO_DLQ])
    op.output(_step(BRONZE_MANIFEST), op.flat_map("manifest_rows", checked, bronze.manifest), sinks[BRONZE_MANIFEST])

    slices = op.flat_map("book_slices", checked, book_slices)
    keyed_seconds = op.stateful("book_1s", slices, partial(_new_book, cfg.book.depth))
    seconds = op.map("book_rows", keyed_seconds, _value)
    silver = SilverWrites(plan)
    op.output(_step(SILVER_BOOK_1S), op.flat_map("book_1s_rows", seconds, silver.seconds), sinks[SILVER_BOOK_1S])
    anomalies = op.merge("anomaly_rows", op.flat_map("book_anomaly_rows", seconds, silver.anomalies),
                         op.flat_map("late_record_rows", checked, silver.late_records))
    op.output(_step(SILVER_BOOK_ANOMALIES), anomalies, sinks[SILVER_BOOK_ANOMALIES])
    profiles = _option_chains(cfg, plan, sinks, checked, seconds) if plan.chains.any else None
    if cfg.analytics.enabled:
        _level_analytics(cfg, plan, sinks, seconds, profiles)
        _radar(plan, sinks, seconds)
    return flow


def _option_chains(cfg: AppConfig, plan: ReplayPlan, sinks: Sinks, checked: Stream[Checked],
                   seconds: Stream[BookRows]) -> Stream[tuple[str, ChainProfiles]]:
    """Option books, their 1-second tops and the GEX of each chain (see ``flows.steps.option_chain``);
    returns the chains' profiles under the sessions whose vectors read them."""
    options: Stream[tuple[str, ChainItem]]
    if plan.chains.relayed:  # a topic run: the partitions' options meet in the relay first
        lateness = round(cfg.source.ticks.lateness_s * 1e9)
        news = op.flat_map("partition_news", checked, partial(partition_news, lateness))
        options = op.map("relayed", op.stateful("option_relay", news, partial(_new_relay, plan.chains)), _value)
    else:
        options = op.flat_map("chain_slices", checked, chain_slices)
    wanted = None if plan.chains.relayed else plan.chains.underlyings
    underlying = op.filter_map("underlying_seconds", seconds, partial(underlying_seconds, wanted))
    both: Stream[tuple[str, ChainItem]] = op.merge("chain_inputs", options, underlying)
    chains = op.stateful("option_chain", both, partial(_new_chain, plan.chains, cfg.options))
    rows = op.map("chain_rows", chains, _value)
    writes = ChainWrites(plan)
    for spec, write in ((SILVER_OPTIONS_TOP_1S, writes.tops), (SILVER_GEX_SURFACE_1S, writes.surface)):
        op.output(_step(spec), op.flat_map(f"{_step(spec)}_rows", rows, write), sinks[spec])
    summary = op.flat_map(f"{_step(SILVER_GEX_SUMMARY_1S)}_rows", rows, writes.summary)
    op.output(_step(SILVER_GEX_SUMMARY_1S), summary, sinks[SILVER_GEX_SUMMARY_1S])
    _to_eventhouse(sinks, "Gex", lambda: _lake_rows("gex_for_eventhouse", summary, gex_rows))
    return op.filter_map("chain_profiles", rows, partial(chain_profiles, profiled_sessions(plan.chains)))


def _new_chain(facts: ChainFacts, options: ChainGexConfig, resume: ChainLogicState | None) -> ChainLogic:
    return ChainLogic(facts, options, resume)


def _new_relay(facts: ChainFacts, resume: RelayState | None) -> OptionRelayLogic:
    return OptionRelayLogic(facts, resume)


def _radar(plan: ReplayPlan, sinks: Sinks, seconds: Stream[BookRows]) -> None:
    """Wall and vacuum surfaces and physics bands per second (see ``flows.steps.radar_1s``)."""
    keyed = op.key_on("book_rows_for_radar", seconds, _book_rows_key)
    radar = op.map("radar_rows", op.stateful("radar_1s", keyed, partial(_new_radar, plan.calibrations)), _value)
    writes = SurfaceWrites(plan)
    op.output(_step(SILVER_WALL_SURFACE_1S), op.flat_map("wall_surface_rows", radar, writes.wall),
              sinks[SILVER_WALL_SURFACE_1S])
    op.output(_step(SILVER_VACUUM_SURFACE_1S), op.flat_map("vacuum_surface_rows", radar, writes.vacuum),
              sinks[SILVER_VACUUM_SURFACE_1S])
    op.output(_step(SILVER_PHYSICS_BANDS_1S), op.flat_map("physics_band_rows", radar, writes.bands),
              sinks[SILVER_PHYSICS_BANDS_1S])
    _to_eventhouse(sinks, "Radar", lambda: op.flat_map("radar_rows_for_eventhouse", radar, EventhouseWrites.radar))


def _new_radar(calibrations: dict, resume: _SurfaceLogicState | None) -> SurfaceLogic:
    return SurfaceLogic(calibrations, resume)


def _level_analytics(cfg: AppConfig, plan: ReplayPlan, sinks: Sinks, seconds: Stream[BookRows],
                     profiles: Stream[tuple[str, ChainProfiles]] | None) -> None:
    """Sessions → (prior session) → levels, approach episodes and labels (see ``flows.steps.session_series``)."""
    keyed = op.key_on("book_rows_by_key", seconds, _book_rows_key)
    collected = op.map("session_series_values",
                       op.stateful("session_series", keyed, partial(_new_series, cfg.analytics)), _value)
    series = op.filter_map("closed_sessions", collected, _as_series)
    bars = op.filter_map("session_bars", collected, _as_bars)
    pieces = op.filter_map("series_pieces", collected, _as_piece)
    marks: Stream[SessionOpened | SessionSeries] = op.filter_map("session_marks", collected, _as_session_mark)
    by_contract = op.key_on("sessions_by_contract", marks, _contract_key)
    priors = op.map("prior_sessions_values",
                    op.stateful("prior_sessions", by_contract, partial(_new_join, plan.mbo_sessions,
                                                                        plan.stored_summaries, plan.open_sessions)),
                    _value)
    both: Stream[tuple[str, EpisodeInput]] = op.merge(
        "pieces_and_priors", op.key_on("pieces_by_session", pieces, _session_key),
        op.key_on("priors_by_session", priors, _session_key), *([profiles] if profiles is not None else []))
    chained = chained_sessions(plan.chains) if profiles is not None else frozenset()  # None: every session
    found = op.map("session_updates",
                   op.stateful("session_episodes", both, partial(_new_episodes, cfg.analytics, chained)), _value)
    writes = AnalyticsWrites(plan, cfg.analytics)
    op.output(_step(SILVER_SESSION_SUMMARY), op.flat_map("session_summary_rows", series, writes.summary),
              sinks[SILVER_SESSION_SUMMARY])
    levels = op.flat_map("session_level_rows", found, writes.levels)
    op.output(_step(SILVER_SESSION_LEVELS), levels, sinks[SILVER_SESSION_LEVELS])
    eventhouse = EventhouseWrites(cfg.analytics)
    _to_eventhouse(sinks, "Levels", lambda: _lake_rows("levels_for_eventhouse", levels, levels_rows))
    _to_eventhouse(sinks, "Outcomes", lambda: op.flat_map("outcomes_for_eventhouse", found, eventhouse.outcomes))
    op.output(_step(SILVER_LEVEL_APPROACH), op.flat_map("level_approach_rows", found, writes.episodes),
              sinks[SILVER_LEVEL_APPROACH])
    op.output(_step(GOLD_LABELS), op.flat_map("label_rows", found, writes.labels), sinks[GOLD_LABELS])
    op.output(_step(GOLD_SETUP_VECTORS), op.flat_map("setup_vector_rows", found, writes.vectors),
              sinks[GOLD_SETUP_VECTORS])
    op.output(_step(GOLD_TRAINING_VIEW), op.flat_map("training_view_rows", found, writes.training_view),
              sinks[GOLD_TRAINING_VIEW])
    op.output(_step(SILVER_BAR_5S), op.flat_map("bar_5s_rows", bars, writes.bars), sinks[SILVER_BAR_5S])
    if cfg.scoring.backend != "off":
        from flows.steps.inference_scores import score_episodes

        scores = score_episodes(found, plan, cfg.scoring, cfg.inference)
        op.output(_step(GOLD_INFERENCE_SCORES), scores, sinks[GOLD_INFERENCE_SCORES])
        _to_eventhouse(sinks, "Scores", lambda: _lake_rows("scores_for_eventhouse", scores, scores_rows))
    features = op.flat_map("feature_series_rows", bars, writes.feature_series)
    op.output(_step(GOLD_FEATURE_SERIES), features, sinks[GOLD_FEATURE_SERIES])
    _to_eventhouse(sinks, "Features", lambda: _lake_rows("features_for_eventhouse", features, features_rows))


def _to_eventhouse(sinks: Sinks, table: str, rows: Callable[[], Stream[tuple[str, pa.Table]]]) -> None:
    """Feed Eventhouse ``table`` with ``rows()`` when it is configured (no steps otherwise)."""
    if table in sinks.eventhouse:
        op.output(f"eventhouse_{table.lower()}", rows(), sinks.eventhouse[table])


def _lake_rows(step_id: str, writes: Stream[tuple[str, TableWrite]],
               convert: Callable[[pa.Table], pa.Table]) -> Stream[tuple[str, pa.Table]]:
    return op.filter_map(step_id, writes, partial(EventhouseWrites.from_lake_rows, convert=convert))


# the session-series step emits several kinds of item; each of these keeps one kind (filter_map:
# the stream after it has that kind's type)
def _as_piece(item: object) -> SeriesPiece | None:
    return item if isinstance(item, SeriesPiece) else None


def _as_session_mark(item: object) -> SessionOpened | SessionSeries | None:
    return item if isinstance(item, SessionOpened | SessionSeries) else None


def _as_series(item: object) -> SessionSeries | None:
    return item if isinstance(item, SessionSeries) else None


def _as_bars(item: object) -> SessionBars | None:
    return item if isinstance(item, SessionBars) else None


def _book_rows_key(rows: BookRows) -> str:
    return rows.key


def _contract_key(item: SessionOpened | SessionSeries) -> str:
    return str(item.info.instrument_id)


def _session_key(item: SeriesPiece | PriorSession) -> str:
    return item.key


def _new_series(analytics: AnalyticsConfig, resume: _SeriesState | None) -> SessionSeriesLogic:
    return SessionSeriesLogic(analytics.windows, resume, calendar=analytics.calendar)


def _new_join(expected: frozenset, stored: dict, grow: bool, resume: _JoinState | None) -> PriorSessionLogic:
    return PriorSessionLogic(expected, stored, resume, grow)


def _new_episodes(cfg: AnalyticsConfig, chained: frozenset[str] | None,
                  resume: EpisodesState | None) -> SessionEpisodesLogic:
    return SessionEpisodesLogic(cfg, resume, chained)
