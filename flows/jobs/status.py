"""What a lake holds, for ``spymaster status``: tables, sessions, dead letters, models, live lag,
instruments by class.

It reads the lake (Delta logs and a few narrow projections), the MLflow registry and, for a topic
input, the topic's end offsets, and returns frozen values; ``flows.cli.status`` prints them. Every
table is opened once, so all parts describe the same versions. The registry and the broker each
fail on their own: one sentence in their part of the report, never a failed command.

``StatusReport.to_json()`` (``spymaster status --json``) has these keys, always present::

    lake            the lake root read
    tables          {name: {"version": int | null, "rows": int, "last_commit": ISO-8601 | null}}
                    for every table Spymaster writes (flow order); null: not created yet
    sessions        {"YYYY-MM-DD": {"finished": bool, "contracts": {contract: {"finished": bool,
                    "scored": bool}}}} for every (contract, session) with 1-second book rows
    sources         {source id: {"schema": str, "generation": int, "status": "complete" | "started",
                    "finished": bool, "scored": bool}} from bronze.raw_manifest (current generation)
    dead_letters    {reason: rows} of bronze.mbo_dlq
    registry        {"uri": str, "alias": str, "error": str | null, "models": {name: {"versions":
                    [str], "aliases": {alias: version}, "champion": version | null}}}
                    ("champion": the version ``alias`` names)
    live            null unless the input is a topic; else {"input": url, "error": str | null,
                    "behind": messages, "partitions": {"<index>": {"end_offset": int,
                    "lake_offset": int, "behind": int}}}
    instruments     {class: instruments} defined in bronze.instrument_definitions: future, call,
                    put, stock, spread, other (most first)

A (contract, session) is *finished* when a source that lists it in ``bronze.raw_manifest`` is
finished as ``flows.plan.is_finished`` decides for a full run (manifest complete, every completion
mark in Bronze, Silver and Gold), and *scored* when ``gold.inference_scores`` carries its mark
too. ``lake_offset`` is the offset after the last message of the partition with a row in Bronze or
its dead letters (positions are ``offset << 20 | index``, ``connectors.topic.positions``);
``behind`` is the end offset minus it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

from connectors.delta.lake import Lake, rows_in
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_CMBP_1,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    SILVER_BOOK_1S,
    TableSpec,
)
from flows.items import book_key
from flows.plan import is_finished
from operators.calendar import CME_GLOBEX, calendar_of
from operators.errors import SpymasterError
from operators.sessions import date_to_day


@dataclass(frozen=True, slots=True)
class TableState:
    name: str
    version: int | None
    """None: the table has not been created yet."""
    rows: int
    last_commit: datetime | None


@dataclass(frozen=True, slots=True)
class BookState:
    """One contract in one session."""

    contract_id: str
    finished: bool
    scored: bool


@dataclass(frozen=True, slots=True)
class SessionState:
    session_date: date
    contracts: tuple[BookState, ...]

    @property
    def finished(self) -> bool:
        return all(c.finished for c in self.contracts)


@dataclass(frozen=True, slots=True)
class SourceState:
    source: str
    schema: str
    generation: int
    status: str
    finished: bool
    scored: bool
    book_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelState:
    name: str
    versions: tuple[str, ...]
    aliases: dict[str, str]


@dataclass(frozen=True, slots=True)
class RegistryState:
    uri: str
    alias: str
    models: tuple[ModelState, ...] = ()
    error: str | None = None

    def holder(self, model: ModelState) -> str | None:
        """The version the alias names, if any."""
        return model.aliases.get(self.alias)


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    end_offset: int
    lake_offset: int

    @property
    def behind(self) -> int:
        return max(0, self.end_offset - self.lake_offset)


@dataclass(frozen=True, slots=True)
class LiveLag:
    input: str
    partitions: tuple[PartitionLag, ...] = ()
    error: str | None = None

    @property
    def behind(self) -> int:
        return sum(p.behind for p in self.partitions)


@dataclass(frozen=True, slots=True)
class StatusReport:
    lake: str
    tables: tuple[TableState, ...]
    sessions: tuple[SessionState, ...]
    sources: tuple[SourceState, ...]
    dead_letters: dict[str, int]
    registry: RegistryState
    live: LiveLag | None
    instruments: dict[str, int] = field(default_factory=dict)
    """Instruments defined in the lake by class (future, call, put, stock, spread, other)."""

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object (keys in the module docstring)."""
        return {
            "lake": self.lake,
            "tables": {t.name: {"version": t.version, "rows": t.rows,
                                "last_commit": t.last_commit.isoformat() if t.last_commit else None}
                       for t in self.tables},
            "sessions": {s.session_date.isoformat(): {
                "finished": s.finished,
                "contracts": {c.contract_id: {"finished": c.finished, "scored": c.scored} for c in s.contracts}}
                for s in self.sessions},
            "sources": {s.source: {"schema": s.schema, "generation": s.generation, "status": s.status,
                                   "finished": s.finished, "scored": s.scored} for s in self.sources},
            "dead_letters": dict(self.dead_letters),
            "registry": _registry_json(self.registry),
            "live": None if self.live is None else _live_json(self.live),
            "instruments": dict(self.instruments),
        }


def lake_status(lake: Lake, registry_uri: str, *, alias: str = "champion", topic: str | None = None,
                connection: str = "") -> StatusReport:
    """The whole report; ``topic`` (``kafka://…`` or ``eventhubs://…``) adds the live lag."""
    pinned = PinnedLake(lake.root, lake.storage_options)
    sources = source_states(pinned)
    return StatusReport(
        lake=lake.root,
        tables=table_states(pinned),
        sessions=session_states(pinned, sources),
        sources=sources,
        dead_letters=dead_letters(pinned),
        registry=registry_state(registry_uri, alias),
        live=None if topic is None else live_lag(pinned, topic, connection),
        instruments=instrument_classes(pinned),
    )


_CLASS_NAMES = {"F": "future", "C": "call", "P": "put", "K": "stock", "I": "index", "S": "spread", "T": "spread",
                "M": "spread"}


def instrument_classes(lake: Lake) -> dict[str, int]:
    """Distinct instruments of ``bronze.instrument_definitions`` by class, most first; a class on
    the US equities calendar says so (``stock, us equities``), Globex's is the default."""
    rows = lake.read(BRONZE_DEFINITIONS, ["instrument_id", "instrument_class", "dataset"]).to_pylist()
    latest = {r["instrument_id"]: (r["instrument_class"], r["dataset"]) for r in rows}
    counts = Counter(_class_name(c, d) for c, d in latest.values())
    return dict(counts.most_common())


def _class_name(code: str | None, dataset: str | None) -> str:
    name = _CLASS_NAMES.get((code or "").strip(), "other")
    calendar = calendar_of(dataset or "")
    return name if calendar is CME_GLOBEX else f"{name}, {calendar.name.replace('_', ' ')}"


@dataclass(frozen=True, slots=True)
class PinnedLake(Lake):
    """The lake as it was when each table was first opened here: every question sees one version."""

    opened: dict[str, DeltaTable | None] = field(default_factory=dict)

    def open(self, spec: TableSpec) -> DeltaTable | None:
        if spec.name not in self.opened:
            self.opened[spec.name] = Lake.open(self, spec)
        return self.opened[spec.name]


def table_states(lake: Lake) -> tuple[TableState, ...]:
    return tuple(_table_state(spec.name, lake.open(spec)) for spec in ALL_TABLES)


def _table_state(name: str, table: DeltaTable | None) -> TableState:
    if table is None:
        return TableState(name, None, 0, None)
    last = table.history(1)
    stamp = datetime.fromtimestamp(last[0]["timestamp"] / 1000, UTC) if last else None
    return TableState(name, table.version(), rows_in(table), stamp)


def source_states(lake: Lake) -> tuple[SourceState, ...]:
    """Every source of ``bronze.raw_manifest`` at its current generation, finished or not."""
    rows = lake.read(BRONZE_MANIFEST, ["source", "schema", "generation", "status", "book_keys"]).to_pylist()
    out = []
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        generation = max(r["generation"] for r in mine)
        current = [r for r in mine if r["generation"] == generation]
        done = [r for r in current if r["status"] == "complete"]
        schema = current[-1]["schema"]
        out.append(SourceState(
            source, schema, generation, "complete" if done else "started",
            finished=is_finished(lake, source, schema, generation, mine, True),
            scored=is_finished(lake, source, schema, generation, mine, True, True),
            book_keys=tuple(done[-1]["book_keys"] or ()) if done else ()))
    return tuple(out)


def session_states(lake: Lake, sources: tuple[SourceState, ...]) -> tuple[SessionState, ...]:
    """Each session with 1-second book rows, its contracts, and which of them are finished."""
    finished = {k for s in sources if s.finished for k in s.book_keys}
    scored = {k for s in sources if s.scored for k in s.book_keys}
    books = _sql(lake, SILVER_BOOK_1S, "select distinct session_date, instrument_id, contract_id from t").to_pylist()
    by_day: dict[date, list[BookState]] = {}
    for b in books:
        key = book_key(b["instrument_id"], date_to_day(b["session_date"]))
        by_day.setdefault(b["session_date"], []).append(BookState(b["contract_id"], key in finished, key in scored))
    return tuple(SessionState(day, tuple(sorted(found, key=lambda c: c.contract_id)))
                 for day, found in sorted(by_day.items()))


def dead_letters(lake: Lake) -> dict[str, int]:
    counts = Counter(lake.read(BRONZE_MBO_DLQ, ["reason"])["reason"].to_pylist())
    return dict(sorted(counts.items()))


def registry_state(uri: str, alias: str = "champion") -> RegistryState:
    """The registered models of ``uri``, or why there are none to show (one sentence)."""
    from connectors.mlflow.tracking import local_store_missing

    shown = without_secret(uri)
    if local_store_missing(uri):
        return RegistryState(shown, alias, error=f"no MLflow registry: {uri.removeprefix('sqlite:///')} does not exist "
                                                 "(spymaster train, or make sample, creates it)")
    try:
        with _impatient_http():
            return RegistryState(shown, alias, _registered(uri))
    except Exception as err:  # noqa: BLE001 - a registry that does not answer is a line of the report
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        first = first if len(first) <= 160 else first[:159] + "…"
        return RegistryState(shown, alias, error=f"the MLflow registry at {shown} did not answer: {first}")


@contextmanager
def _impatient_http() -> Iterator[None]:
    """One retry and a 10 s timeout for the registry's HTTP requests, unless the user chose
    otherwise: MLflow's own defaults (7 retries with backoff, 120 s each) keep a status of an
    unreachable tracking server waiting for minutes. MLflow reads them from the environment at
    each request, so they are set there for the duration of the read and then put back."""
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    added = [k for k in wanted if k not in os.environ]
    os.environ.update({k: wanted[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _registered(uri: str) -> tuple[ModelState, ...]:
    import warnings

    with warnings.catch_warnings():  # MLflow's SQL store warns about its own SQLAlchemy use: noise to a reader
        warnings.simplefilter("ignore", DeprecationWarning)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        models = client.search_registered_models()
    out = []
    for model in models:
        quoted = model.name.replace("'", "\\'")
        versions = sorted((str(v.version) for v in client.search_model_versions(f"name='{quoted}'")), key=int)
        out.append(ModelState(model.name, tuple(versions), {a: str(v) for a, v in model.aliases.items()}))
    return tuple(sorted(out, key=lambda m: m.name))


def live_lag(lake: Lake, url: str, connection: str = "", timeout: float = 5.0) -> LiveLag:
    """How far the lake is behind the topic, partition by partition (Kafka protocol only)."""
    from connectors.kafka.offsets import end_offsets
    from connectors.topic.dispatch import parse_topic_url
    from connectors.topic.positions import offset_of

    try:
        source = parse_topic_url(url, connection_string=connection)
        if source.transport != "kafka":
            return LiveLag(url, error="lag is read over the Kafka protocol; an AMQP input has no end offsets here")
        ends = end_offsets(source, timeout)
    except SpymasterError as err:
        return LiveLag(url, error=str(err))
    last = last_positions(lake, f"kafka:{source.topic}/")
    return LiveLag(url, tuple(PartitionLag(i, end, offset_of(last[i]) + 1 if i in last else 0)
                              for i, end in sorted(ends.items())))


def last_positions(lake: Lake, prefix: str) -> dict[int, int]:
    """Partition → the highest position with a row in Bronze or its dead letters, for the sources
    named ``<prefix><partition>``."""
    quoted = prefix.replace("'", "''")
    sql = f"select source, max(source_offset) as last from t where starts_with(source, '{quoted}') group by source"
    out: dict[int, int] = {}
    for spec in (BRONZE_MBO, BRONZE_MBO_DLQ, BRONZE_DEFINITIONS, BRONZE_STATISTICS, BRONZE_CMBP_1):
        for row in _sql(lake, spec, sql).to_pylist():
            index = int(row["source"].removeprefix(prefix))
            out[index] = max(out.get(index, -1), int(row["last"]))
    return out


def without_secret(uri: str) -> str:
    """``uri`` with any password in it masked: a tracking URI may carry one."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _sql(lake: Lake, spec: TableSpec, sql: str) -> pa.Table:
    """``sql`` over the table registered as ``t``; an empty table when it does not exist yet."""
    table = lake.open(spec)
    if table is None:
        return pa.table({})
    return pa.table(QueryBuilder().register("t", table).execute(sql).read_all())


def _registry_json(registry: RegistryState) -> dict[str, Any]:
    return {"uri": registry.uri, "alias": registry.alias, "error": registry.error,
            "models": {m.name: {"versions": list(m.versions), "aliases": dict(m.aliases),
                                "champion": registry.holder(m)} for m in registry.models}}


def _live_json(live: LiveLag) -> dict[str, Any]:
    return {"input": live.input, "error": live.error, "behind": live.behind,
            "partitions": {str(p.partition): {"end_offset": p.end_offset, "lake_offset": p.lake_offset,
                                              "behind": p.behind} for p in live.partitions}}
