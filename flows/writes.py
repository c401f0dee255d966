"""What each table gets: items of the graph turned into keyed Delta writes (``TableWrite``).

Nothing here does I/O; the sinks live in ``connectors.delta``. Methods are plain (not lambdas) so
that the flow can be pickled for multi-process runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from connectors.delta.analytics_rows import (
    band_rows,
    bar_rows,
    episode_rows,
    feature_series_rows,
    label_rows,
    level_rows,
    summary_rows,
    training_rows,
    vacuum_rows,
    vector_rows,
    wall_rows,
)
from connectors.delta.rows import (
    anomaly_rows,
    book_second_rows,
    cmbp_rows,
    dead_letter_rows,
    definition_rows,
    manifest_row,
    mbo_rows,
    statistics_rows,
)
from connectors.delta.sink import TableWrite, lane_of
from connectors.delta.tables import (
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    TableSpec,
)
from connectors.kusto.rows import outcomes_rows, radar_rows
from flows.config import AnalyticsConfig
from flows.items import (
    BookRows,
    ChainRows,
    Checked,
    CheckedChunk,
    Episode,
    EpisodeUpdate,
    SessionBars,
    SessionSeries,
    SurfaceRows,
    book_key,
)
from flows.plan import TABLE_OF_SCHEMA, ReplayPlan, book_end_mark, end_mark
from operators.chunks import RecordChunk, SourceEnd, SourceFault
from operators.features.registry import REGISTRY_VERSION
from operators.grouping import group_rows
from operators.normalize import DeadLetter, fault_letter, split_definitions
from operators.sessions import day_to_date
from operators.vectors import LOOKBACK_SPEC, feature_hash, model_id_for

Keyed = tuple[str, TableWrite]


BRONZE_LANES = 2
LANE_BLOCK = 65_536
"""Bronze MBO rows of one file go to two lanes by blocks of 64k record offsets, so two commits
(Parquet encoding in delta-rs, off the GIL) run at once. Lanes depend only on offsets, never on
batch size or worker count, so a resumed run puts every row in the lane it was committed in."""


def _in_lanes(stream: str, rows: pa.Table, offsets: np.ndarray) -> list[Keyed]:
    lanes = (offsets // LANE_BLOCK) % BRONZE_LANES
    out = []
    for lane in range(BRONZE_LANES):
        mask = lanes == lane
        if not mask.any():
            continue
        lane_stream = lane_of(stream, lane)
        mine = rows if mask.all() else rows.filter(pa.array(mask))
        out.append((lane_stream, TableWrite(lane_stream, mine, offsets[mask])))
    return out


class BronzeWrites:
    """Turns checked items into keyed Delta writes for each Bronze table."""

    def __init__(self, plan: ReplayPlan, run_id: str) -> None:
        self._plan, self._run_id = plan, run_id

    def records(self, item: Checked) -> list[Keyed]:
        """bronze.mbo, bronze.instrument_definitions, bronze.statistics and bronze.cmbp_1 rows, and end marks."""
        if isinstance(item, CheckedChunk):
            if item.valid is None:
                return []
            stream = self._plan.stream(item.chunk.source_id)
            return _in_lanes(stream, mbo_rows(item.valid, item.session_days), item.valid.offsets)
        if isinstance(item, RecordChunk):
            chunk = split_definitions(item)[0] if item.schema == "definition" else item
            rows = {"definition": definition_rows, "cmbp-1": cmbp_rows}.get(item.schema, statistics_rows)(chunk)
            stream = self._plan.stream(item.source_id)
            return [(stream, TableWrite(stream, rows, chunk.record_positions()))]
        if isinstance(item, SourceEnd):
            return self._end(item, TABLE_OF_SCHEMA.get(item.schema, BRONZE_MBO)) if item.final else []
        return []

    def dead_letters(self, item: Checked) -> list[Keyed]:
        """bronze.mbo_dlq rows: invalid records, source faults; and every file's end mark."""
        letters: list[DeadLetter]
        if isinstance(item, CheckedChunk):
            letters = list(item.letters)
            source = item.chunk.source_id
        elif isinstance(item, SourceFault):
            letters, source = [fault_letter(item)], item.source_id
        elif isinstance(item, RecordChunk) and item.schema == "definition":
            letters, source = split_definitions(item)[1], item.source_id
        elif isinstance(item, SourceEnd):
            return self._end(item, BRONZE_MBO_DLQ) if item.final else []
        else:
            return []
        if not letters:
            return []
        stream = self._plan.stream(source)
        positions = np.array([d.record_offset for d in letters], np.int64)
        return [(stream, TableWrite(stream, dead_letter_rows(letters), positions))]

    def manifest(self, item: Checked) -> list[Keyed]:
        if not isinstance(item, SourceEnd) or not item.final:
            return []
        generation = self._plan.generations.get(item.source_id, 0)
        stream = self._plan.stream(item.source_id)
        return [(stream, TableWrite(stream, manifest_row(item, generation, self._run_id), np.zeros(1, np.int64)))]

    def _end(self, end: SourceEnd, spec: TableSpec) -> list[Keyed]:
        stream = self._plan.stream(end.source_id)
        return [(stream, TableWrite.mark(stream, spec, (end_mark(stream),)))]


class SilverWrites:
    """Turns closed book rows into keyed Delta writes for the Silver book tables."""

    def __init__(self, plan: ReplayPlan) -> None:
        self._plan = plan

    def seconds(self, rows: BookRows) -> list[Keyed]:
        stream = f"{rows.key}@{self._plan.stream(rows.source_id)}"
        marks = (book_end_mark(self._plan.stream(rows.source_id), rows.key),) if rows.final else ()
        table = book_second_rows(rows.rows, rows.info, rows.session_day)
        positions = rows.rows["ts_recv"].view(np.int64)
        if table.num_rows == 0 and not marks:
            return []
        return [(stream, TableWrite(stream, table, positions, marks))]

    def late_records(self, item: Checked) -> list[Keyed]:
        """A ``late_record`` anomaly per book that a live partition's records arrived for after it
        closed the book's session: they are in Bronze, not in that session's Silver and Gold."""
        if not isinstance(item, CheckedChunk) or item.valid is None or item.chunk.closed_before < 0:
            return []
        late = np.flatnonzero(item.session_days < item.chunk.closed_before)
        if late.size == 0:
            return []
        out = []
        for value, index in group_rows((item.valid.records["instrument_id"][late].astype(np.int64) << 32)
                                       | item.session_days[late].astype(np.int64)):
            iid, day = int(value >> 32), int(value & 0xFFFFFFFF)
            key = book_key(iid, day)
            stream = f"{key}@{self._plan.stream(item.chunk.source_id)}|late"  # not the book's own stream,
            rows = late[index]  # ``index`` is a slice when every late record is this book's
            table = anomaly_rows({"late_record": len(rows)}, item.chunk.instruments[iid], day)  # which commits last
            out.append((stream, TableWrite(stream, table, item.valid.offsets[rows[:1]])))
        return out

    def anomalies(self, rows: BookRows) -> list[Keyed]:
        if not rows.final or not rows.anomalies:
            return []
        stream = f"{rows.key}@{self._plan.stream(rows.source_id)}"
        table = anomaly_rows(rows.anomalies, rows.info, rows.session_day)
        if table.num_rows == 0:
            return []
        return [(stream, TableWrite(stream, table, np.zeros(table.num_rows, np.int64)))]


class AnalyticsWrites:
    """Turns session updates into keyed Delta writes for the level-analytics tables.

    Rows are positioned by a per-session counter the episode step keeps, so a replayed update
    is recognised; the last update of a session carries its levels and the book's end mark, so a
    file is only *finished* once its sessions' analytics are written.
    """

    def __init__(self, plan: ReplayPlan, cfg: AnalyticsConfig) -> None:
        self._plan, self._cfg = plan, cfg

    def _write(self, key: str, source_id: str, table: pa.Table, first: int, final: bool) -> list[Keyed]:
        stream = f"{key}@{self._plan.stream(source_id)}"
        marks = (book_end_mark(self._plan.stream(source_id), key),) if final else ()
        if table.num_rows == 0 and not marks:
            return []
        return [(stream, TableWrite(stream, table, first + np.arange(table.num_rows, dtype=np.int64), marks))]

    def summary(self, series: SessionSeries) -> list[Keyed]:
        return self._write(series.key, series.source_id, summary_rows(series.summary, series.info), 0, True)

    def levels(self, u: EpisodeUpdate) -> list[Keyed]:
        if not u.final:
            return []
        table = level_rows(u.levels, u.missing, u.prior_date, u.info, day_to_date(u.session_day))
        return self._write(u.key, u.source_id, table, 0, True)

    def episodes(self, u: EpisodeUpdate) -> list[Keyed]:
        eps = u.started
        rows = np.array([e.row for e in eps]) if eps else np.zeros(0)
        table = episode_rows(rows, tuple(e.episode_id for e in eps), tuple(e.level_type for e in eps),
                             np.array([e.bucket for e in eps]), [e.level_known_ts for e in eps], u.info,
                             day_to_date(u.session_day))
        return self._write(u.key, u.source_id, table, u.positions[0], u.final)

    def vectors(self, u: EpisodeUpdate) -> list[Keyed]:
        return self._write(u.key, u.source_id, self._vector_table(u, u.started), u.positions[0], u.final)

    def labels(self, u: EpisodeUpdate) -> list[Keyed]:
        return self._write(u.key, u.source_id, self._label_table(u, u.resolved), u.positions[1], u.final)

    def training_view(self, u: EpisodeUpdate) -> list[Keyed]:
        table = training_rows(self._vector_table(u, u.complete), self._label_table(u, u.complete))
        return self._write(u.key, u.source_id, table, u.positions[2], u.final)

    def bars(self, out: SessionBars) -> list[Keyed]:
        table = bar_rows(out.bars, out.context, out.info, day_to_date(out.session_day))
        return self._positioned(out, table)

    def feature_series(self, out: SessionBars) -> list[Keyed]:
        table = feature_series_rows(bar_rows(out.bars, out.context, out.info, day_to_date(out.session_day)))
        return self._positioned(out, table)

    def _positioned(self, out: SessionBars, table: pa.Table) -> list[Keyed]:
        stream = f"{out.key}@{self._plan.stream(out.source_id)}"
        marks = (book_end_mark(self._plan.stream(out.source_id), out.key),) if out.final else ()
        if table.num_rows == 0 and not marks:
            return []
        return [(stream, TableWrite(stream, table, out.bars["ts"].astype(np.int64), marks))]

    def _label_table(self, u: EpisodeUpdate, eps: tuple[Episode, ...]) -> pa.Table:
        labels = np.array([e.label for e in eps]) if eps else np.zeros(0)
        return label_rows(labels, tuple(e.episode_id for e in eps), tuple(e.level_type for e in eps),
                          self._cfg.labels, u.info, day_to_date(u.session_day))

    def _vector_table(self, u: EpisodeUpdate, eps: tuple[Episode, ...]) -> pa.Table:
        rows = np.array([e.row for e in eps]) if eps else np.zeros(0)
        vectors = np.array([e.vector for e in eps], np.float32) if eps else np.zeros((0, 0), np.float32)
        hashes = [feature_hash(v) for v in vectors]
        return vector_rows(tuple(e.episode_id for e in eps), rows, tuple(e.level_type for e in eps),
                           np.array([e.bucket for e in eps]), vectors, hashes, model_id_for(u.info.underlier),
                           self._plan.stream(u.source_id), u.info, day_to_date(u.session_day), REGISTRY_VERSION,
                           LOOKBACK_SPEC)


def keyed_write(plan: ReplayPlan, key: str, source_id: str, final: bool, table: pa.Table,
                ts: np.ndarray, sources: tuple[str, ...] = ()) -> list[Keyed]:
    """Rows of one keyed step (a book's, a chain's) in the stream ``key@source``, positioned by
    their second; the last write also end-marks the key, for ``source_id`` and any other
    ``sources`` that fed it."""
    stream = f"{key}@{plan.stream(source_id)}"
    marks = tuple(book_end_mark(plan.stream(s), key) for s in sorted({source_id, *sources})) if final else ()
    if table.num_rows == 0 and not marks:
        return []
    return [(stream, TableWrite(stream, table, ts.astype(np.int64), marks))]


class SurfaceWrites:
    """The radar tables: one row per second each, positioned by time, end-marked with the book."""

    def __init__(self, plan: ReplayPlan) -> None:
        self._plan = plan

    def _write(self, out: SurfaceRows, table: pa.Table, ts: np.ndarray) -> list[Keyed]:
        return keyed_write(self._plan, out.key, out.source_id, out.final, table, ts)

    def wall(self, out: SurfaceRows) -> list[Keyed]:
        return self._write(out, wall_rows(out.wall, out.info, day_to_date(out.session_day)), out.wall["ts"])

    def vacuum(self, out: SurfaceRows) -> list[Keyed]:
        return self._write(out, vacuum_rows(out.vacuum, out.info, day_to_date(out.session_day)), out.vacuum["ts"])

    def bands(self, out: SurfaceRows) -> list[Keyed]:
        return self._write(out, band_rows(out.bands, out.info, day_to_date(out.session_day)), out.bands["ts"])


class ChainWrites:
    """The option-chain tables: rows positioned by their second, end-marked with the chain."""

    def __init__(self, plan: ReplayPlan) -> None:
        self._plan = plan

    def _write(self, out: ChainRows, table: pa.Table, ts: np.ndarray) -> list[Keyed]:
        return keyed_write(self._plan, out.key, out.source_id, out.final, table, ts, out.sources)

    def tops(self, out: ChainRows) -> list[Keyed]:
        return self._write(out, out.tables.tops, out.tops["ts_recv"]) if out.tables is not None else []

    def surface(self, out: ChainRows) -> list[Keyed]:
        return self._write(out, *out.tables.surface) if out.tables is not None else []

    def summary(self, out: ChainRows) -> list[Keyed]:
        return self._write(out, *out.tables.summary) if out.tables is not None else []


class EventhouseWrites:
    """The Eventhouse's rows (``connectors.kusto.rows``) from the same items as the lake's: keyed by
    contract and session, so one partition keeps a contract's rows in order."""

    def __init__(self, cfg: AnalyticsConfig) -> None:
        self._cfg = cfg

    @staticmethod
    def from_lake_rows(kv: Keyed, convert: Callable[[pa.Table], pa.Table]) -> tuple[str, pa.Table] | None:
        """A lake write's rows in Eventhouse columns (None for a write that is only an end mark)."""
        key, write = kv
        if write.rows.num_rows == 0:
            return None
        return key, convert(write.rows)

    def outcomes(self, u: EpisodeUpdate) -> list[tuple[str, pa.Table]]:
        eps = u.resolved
        if not eps:
            return []
        day = day_to_date(u.session_day)
        approach = episode_rows(np.array([e.row for e in eps]), tuple(e.episode_id for e in eps),
                                tuple(e.level_type for e in eps), np.array([e.bucket for e in eps]),
                                [e.level_known_ts for e in eps], u.info, day)
        labels = label_rows(np.array([e.label for e in eps]), tuple(e.episode_id for e in eps),
                            tuple(e.level_type for e in eps), self._cfg.labels, u.info, day)
        return [(u.key, outcomes_rows(approach, labels))]

    @staticmethod
    def radar(out: SurfaceRows) -> list[tuple[str, pa.Table]]:
        if out.top is None or len(out.bands) == 0:
            return []
        bands = band_rows(out.bands, out.info, day_to_date(out.session_day))
        top = pa.table({name: out.top[name] for name in out.top.dtype.names or ()})
        return [(out.key, radar_rows(bands, top, out.wall["spot_px"]))]
