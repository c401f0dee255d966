"""What a replay will read: inputs resolved, dates filtered, finished files skipped.

A file is *finished* when the manifest says so and every table it feeds carries its completion
mark (an app transaction committed with the file's last rows). Only then is it skipped; a file
cut short by a crash is replayed and the sinks drop what was already committed. ``--overwrite``
deletes a finished file's rows and replays it under the next *generation*, so the new rows are
not mistaken for duplicates of the old ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from connectors.dbn.chains import ChainFacts, chain_facts, stored_open_interest
from connectors.dbn.reader import BadHeader, DbnFileReader
from connectors.dbn.source import source_id_of
from connectors.delta.lake import Lake
from connectors.delta.tables import (
    BRONZE_CMBP_1,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    CHAIN_TABLES,
    GOLD_FEATURE_SERIES,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    GOLD_PHYSICS_CALIBRATION,
    GOLD_SETUP_VECTORS,
    GOLD_TRAINING_VIEW,
    SILVER_BAR_5S,
    SILVER_BOOK_1S,
    SILVER_BOOK_ANOMALIES,
    SILVER_LEVEL_APPROACH,
    SILVER_PHYSICS_BANDS_1S,
    SILVER_SESSION_LEVELS,
    SILVER_SESSION_SUMMARY,
    SILVER_VACUUM_SURFACE_1S,
    SILVER_WALL_SURFACE_1S,
    TableSpec,
)
from flows.config import AppConfig
from operators.calendar import calendar_of
from operators.options.chain import chain_of, is_chain_key
from operators.sessions import date_to_day, day_to_date

log = logging.getLogger("spymaster.plan")

TABLE_OF_SCHEMA: dict[str, TableSpec] = {
    "mbo": BRONZE_MBO,
    "definition": BRONZE_DEFINITIONS,
    "statistics": BRONZE_STATISTICS,
    "cmbp-1": BRONZE_CMBP_1,
}


SESSION_TABLES: tuple[TableSpec, ...] = (SILVER_SESSION_SUMMARY, SILVER_SESSION_LEVELS, SILVER_LEVEL_APPROACH,
                                         GOLD_LABELS, SILVER_WALL_SURFACE_1S, SILVER_VACUUM_SURFACE_1S,
                                         SILVER_PHYSICS_BANDS_1S, SILVER_BAR_5S, GOLD_FEATURE_SERIES,
                                         GOLD_SETUP_VECTORS, GOLD_TRAINING_VIEW)
"""Tables with rows per (contract, session), deleted with their session on --overwrite."""


def stream_of(source_id: str, generation: int) -> str:
    """The app-transaction stream of one source under one generation."""
    return f"{source_id}#g{generation}"


def end_mark(stream: str) -> str:
    return f"end|{stream}"


def book_end_mark(stream: str, key: str) -> str:
    return f"end|{stream}|{key}"


@dataclass(frozen=True, slots=True)
class PlannedFile:
    path: Path
    source_id: str
    schema: str
    generation: int
    sessions: tuple[date, ...] = ()
    """Session dates the file's metadata covers."""

    @property
    def stream(self) -> str:
        return stream_of(self.source_id, self.generation)


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    files: tuple[PlannedFile, ...]
    skipped: tuple[Path, ...] = ()
    outside_dates: tuple[Path, ...] = ()
    overwritten: tuple[Path, ...] = ()
    generations: dict[str, int] = field(default_factory=dict)
    calibrations: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """Physics-band calibrations per contract (``gold.physics_norm_calibration``)."""
    stored_summaries: dict[int, dict[date, object]] = field(default_factory=dict)
    """Session summaries an earlier run wrote (instrument → date → SessionSummary), for sessions
    this run does not replay: the prior session of the first replayed day is often among them."""
    chains: ChainFacts = field(default_factory=ChainFacts)
    """The run's option chains: their underlyings, the underlying books it replays, open interest."""
    open_sessions: bool = False
    """Sessions are learnt as they open (a topic source): the prior-session join grows its
    expected set instead of taking ``mbo_sessions`` up front."""

    @property
    def mbo_sessions(self) -> frozenset[date]:
        return frozenset(d for f in self.files if f.schema == "mbo" for d in f.sessions)

    def stream(self, source_id: str) -> str:
        return stream_of(source_id, self.generations.get(source_id, 0))


def plan_replay(cfg: AppConfig, lake: Lake, inputs: list[Path]) -> ReplayPlan:
    """Decide which of ``inputs`` to read, under which generation; delete rows to overwrite."""
    manifest = lake.read(BRONZE_MANIFEST, ["source", "generation", "status", "book_keys"]).to_pylist()
    files, skipped, outside, overwritten = [], [], [], []
    opened: dict[str, DeltaTable | None] = {}  # end marks are only read here: one opening per table
    for path in inputs:
        schema, first, last = _header_facts(path)
        if cfg.source.dates is not None and first is not None and last is not None:
            if last < cfg.source.dates.first or first > cfg.source.dates.last:
                outside.append(path)
                continue
        sid = source_id_of(path)
        rows = [r for r in manifest if r["source"] == sid]
        generation = max((r["generation"] for r in rows), default=0)
        finished = is_finished(lake, sid, schema, generation, rows, cfg.analytics.enabled,
                             cfg.analytics.enabled and cfg.scoring.backend != "off", opened)
        if finished and not cfg.run.overwrite:
            skipped.append(path)
            continue
        if finished or (cfg.run.overwrite and rows):
            delete_source(lake, sid, schema, rows)
            generation += 1
            record_start(lake, sid, path, schema, generation, cfg.run.run_id)
            overwritten.append(path)
        sessions = _dates_between(first, last)
        files.append(PlannedFile(path, sid, schema, generation, sessions))
    replayed = frozenset(d for f in files if f.schema == "mbo" for d in f.sessions)
    return ReplayPlan(
        chains=chain_facts(lake, [(f.path, f.schema, f.sessions) for f in files]),
        files=tuple(files),
        skipped=tuple(skipped),
        outside_dates=tuple(outside),
        overwritten=tuple(overwritten),
        generations={f.source_id: f.generation for f in files},
        stored_summaries=stored_summaries_outside(lake, replayed),
        calibrations=stored_calibrations(lake),
    )


def stored_calibrations(lake: Lake) -> dict[str, tuple[object, ...]]:
    from connectors.delta.analytics_rows import calibration_from_row

    out: dict[str, list[object]] = {}
    for row in lake.read(GOLD_PHYSICS_CALIBRATION).to_pylist():
        out.setdefault(row["contract_id"], []).append(calibration_from_row(row))
    return {k: tuple(v) for k, v in out.items()}


def _dates_between(first: date | None, last: date | None) -> tuple[date, ...]:
    if first is None or last is None:
        return ()
    return tuple(day_to_date(d) for d in range(date_to_day(first), date_to_day(last) + 1))


def stored_summaries_outside(lake: Lake, replayed: frozenset[date]) -> dict[int, dict[date, object]]:
    from connectors.delta.analytics_rows import summary_from_row

    out: dict[int, dict[date, object]] = {}
    for row in lake.read(SILVER_SESSION_SUMMARY).to_pylist():
        if row["session_date"] not in replayed:
            out.setdefault(row["instrument_id"], {})[row["session_date"]] = summary_from_row(row)
    return out


def _header_facts(path: Path) -> tuple[str, date | None, date | None]:
    try:
        reader = DbnFileReader(path)
    except BadHeader:
        return "mbo", None, None  # replayed so that the bad header lands in the DLQ
    try:
        meta = reader.header.metadata
        schema = str(reader.header.schema) if reader.header.schema is not None else "mbo"
        calendar = calendar_of(str(meta.dataset or ""))
        first = calendar.trade_date_of(meta.start) if meta.start else None
        last = calendar.trade_date_of(meta.end - 1) if meta.end else first
        return schema, first, last
    finally:
        reader.close()


def is_finished(lake: Lake, sid: str, schema: str, generation: int, rows: list[dict], analytics: bool,
              scoring: bool = False, opened: dict[str, DeltaTable | None] | None = None) -> bool:
    """Whether ``sid``'s latest generation is complete and every table it feeds carries its end
    marks. ``opened``: tables already opened by the caller's earlier questions (a plan asks for
    every file or slice; a Bronze replay of an options day has a slice per option)."""
    done = [r for r in rows if r["generation"] == generation and r["status"] == "complete"]
    if not done:
        return False
    tables = {} if opened is None else opened

    def table_of(spec: TableSpec) -> DeltaTable | None:
        if spec.name not in tables:
            tables[spec.name] = lake.open(spec)
        return tables[spec.name]

    stream = stream_of(sid, generation)
    for spec in bronze_tables_of(schema):
        table = table_of(spec)
        if table is None or table.transaction_version(end_mark(stream)) is None:
            return False
    keys = [k for k in done[-1]["book_keys"] or [] if not is_chain_key(k)]
    chains = [k for k in done[-1]["book_keys"] or [] if is_chain_key(k)]
    scored = (GOLD_INFERENCE_SCORES,) if scoring else ()  # a scoring run also fills in scores of unscored files
    books = [(spec, keys) for spec in (SILVER_BOOK_1S, *(SESSION_TABLES if analytics else ()), *scored)] if keys else []
    for spec, marked in [*books, *((spec, chains) for spec in (CHAIN_TABLES if chains else ()))]:
        table = table_of(spec)
        if table is None or any(table.transaction_version(book_end_mark(stream, k)) is None for k in marked):
            return False
    return True


def bronze_tables_of(schema: str) -> tuple[TableSpec, ...]:
    """The Bronze tables a source of ``schema`` writes rows and its end mark to. A source that
    replays a Bronze table itself (schema ``bronze.mbo`` or ``bronze.cmbp_1``, ``connectors.bronze``)
    writes no Bronze rows: only its dead letters."""
    if schema in (BRONZE_MBO.name, BRONZE_CMBP_1.name):
        return (BRONZE_MBO_DLQ,)
    return (TABLE_OF_SCHEMA.get(schema, BRONZE_MBO), BRONZE_MBO_DLQ)


def delete_source(lake: Lake, sid: str, schema: str, rows: list[dict]) -> None:
    delete_sources(lake, [sid], schema, sorted({k for r in rows for k in (r["book_keys"] or [])}))


def delete_sources(lake: Lake, sids: list[str], schema: str, keys: list[str]) -> None:
    """Delete what ``sids`` wrote to their Bronze tables and the books and chains ``keys``: one
    delete per table (a Bronze replay overwrites a slice per option of a day)."""
    quoted = ", ".join("'" + sid.replace("'", "''") + "'" for sid in sids)
    for spec in bronze_tables_of(schema):
        table = lake.open(spec)
        if table is not None:
            table.delete(f"source IN ({quoted})")
    delete_books(lake, keys)
    log.info("overwrite: deleted the rows of %s", sids[0] if len(sids) == 1 else f"{len(sids)} sources")


def delete_books(lake: Lake, keys: list[str]) -> None:
    """Delete the Silver and Gold rows of the (contract, session) books ``instrument_id:day`` and
    of the option chains among ``keys`` (``operators.options.chain.chain_key``)."""
    for spec in (SILVER_BOOK_1S, SILVER_BOOK_ANOMALIES, *SESSION_TABLES, GOLD_INFERENCE_SCORES):
        table = lake.open(spec)
        if table is None:
            continue
        for key in keys:
            if is_chain_key(key):
                continue
            iid, day = key.split(":")
            table.delete(f"instrument_id = {int(iid)} AND session_date = '{day_to_date(int(day)).isoformat()}'")
    chains = [chain_of(k) for k in keys if is_chain_key(k)]
    for spec in CHAIN_TABLES if chains else ():
        chain_table = lake.open(spec)
        if chain_table is None:
            continue
        for uid, chain_day in chains:
            chain_table.delete(f"underlying_id = {uid} AND session_date = '{day_to_date(chain_day).isoformat()}'")


def record_start(lake: Lake, sid: str, path: Path | str, schema: str, generation: int, run_id: str,
                  size_bytes: int | None = None) -> None:
    """A manifest row saying a new generation began, so a crash mid-overwrite is not 'finished'.
    ``size_bytes`` defaults to the size of the file at ``path``."""
    record_starts(lake, [(sid, generation)], path, schema, run_id, size_bytes)


def record_starts(lake: Lake, started: list[tuple[str, int]], path: Path | str, schema: str, run_id: str,
                  size_bytes: int | None = None) -> None:
    """``record_start`` of several (source, generation) read from one ``path``, in one commit."""
    from deltalake import write_deltalake

    size = Path(path).stat().st_size if size_bytes is None else size_bytes
    now = datetime.now(UTC)
    rows = [{
        "source": sid, "path": str(path), "sha256": "", "size_bytes": size,
        "schema": schema, "records": 0, "faults": 0, "first_ts_recv": -1, "last_ts_recv": -1,
        "session_dates": [], "book_keys": [], "generation": generation, "status": "started",
        "run_id": run_id, "ts_ingest": now,
    } for sid, generation in started]
    write_deltalake(lake.uri(BRONZE_MANIFEST), pa.Table.from_pylist(rows, BRONZE_MANIFEST.schema), mode="append",
                    storage_options=lake.storage_options or None)


def plan_topic(lake: Lake, partitions: tuple[str, ...] = (), *, bounded: bool = False) -> ReplayPlan:
    """The plan of a topic source: nothing to skip (the sinks drop what an earlier run already
    committed, by position), generation 0, sessions learnt as they open, every stored session
    summary available as a prior. ``partitions``: the topic's (their source ids), whose options the
    relay gathers into chains, with the open interest earlier runs stored; ``bounded``: a read to
    the topic's end, whose setup vectors wait for their chains (``ChainFacts.vectors_wait``)."""
    chains = ChainFacts(open_interest=stored_open_interest(lake), partitions=partitions,
                        vectors_wait=bounded) if partitions else ChainFacts()
    return ReplayPlan(files=(), stored_summaries=stored_summaries_outside(lake, frozenset()),
                      calibrations=stored_calibrations(lake), open_sessions=True, chains=chains)
