"""What ``bronze.mbo`` and ``bronze.cmbp_1`` of a lake hold for a range of sessions: the slices a
Bronze replay reads (a (session, contract) of MBO; a (session, source) of OPRA's consolidated
quotes), and the instrument facts each needs.

Everything is read from one version of the table (:class:`BronzeTable`), so every partition of a
run reads the same rows however long the run takes and whatever a live ingest appends meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, cast

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import TableNotFoundError

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_CMBP_1, BRONZE_DEFINITIONS, BRONZE_MBO, TableSpec
from operators.calendar import trade_dates_by_feed
from operators.chunks import InstrumentInfo, InstrumentType, Schema
from operators.errors import SourceError
from operators.instruments import venue_of
from operators.options.chain import chain_key
from operators.sessions import date_to_day

SOURCE_PREFIX = "bronze:"
"""Partition ids (and the ``source`` of their dead letters) are ``bronze:<session>/<contract>``."""


def sql_text(value: str) -> str:
    """A string literal for delta-rs SQL."""
    return "'" + value.replace("'", "''") + "'"


QUOTES: Final[Schema] = "cmbp-1"
"""The schema of a slice of ``bronze.cmbp_1`` (one session of one source's quotes), and the first
part of its ``contract_id``: ``cmbp-1/<source>``."""


@dataclass(frozen=True, slots=True)
class BronzeTable:
    """A Bronze table of one lake (``bronze.mbo``, or ``bronze.cmbp_1``), pinned at one version."""

    lake: Lake
    version: int
    spec: TableSpec = BRONZE_MBO

    @property
    def uri(self) -> str:
        return self.lake.uri(self.spec)

    @property
    def path(self) -> str:
        """The table and version a slice was read from, as a manifest row's ``path``."""
        return f"{self.uri}#version={self.version}"

    def open(self) -> DeltaTable:
        return DeltaTable(self.uri, version=self.version, storage_options=self.lake.storage_options or None)


@dataclass(frozen=True, slots=True)
class BronzeSlice:
    """One (session, contract) of ``bronze.mbo``, or one (session, source) of ``bronze.cmbp_1``
    (``quote_slices``): what a partition reads, known before it reads."""

    session_date: date
    contract_id: str
    underlier: str
    instrument_type: str
    instrument_ids: tuple[int, ...]
    sources: tuple[str, ...]
    """The original sources of its rows (files, topic partitions), by name; the reader replays
    them in the order of their first records (``records.read_group``)."""
    dataset: str
    schema: Schema = "mbo"
    """``mbo`` (a contract of ``bronze.mbo``), or ``cmbp-1`` (a source of ``bronze.cmbp_1``)."""

    @property
    def source_id(self) -> str:
        return f"{SOURCE_PREFIX}{self.session_date.isoformat()}/{self.contract_id}"

    @property
    def session_day(self) -> int:
        return date_to_day(self.session_date)

    @property
    def group(self) -> tuple[date, str, str]:
        """The table partition it lies in: one scan reads every slice of a group."""
        return self.session_date, self.underlier, self.instrument_type

    @property
    def book_keys(self) -> tuple[str, ...]:
        """The ``instrument_id:session_day`` books the slice feeds (``flows.items.book_key``)."""
        return tuple(f"{iid}:{self.session_day}" for iid in self.instrument_ids)

    def fed_keys(self, instruments: Mapping[int, InstrumentInfo]) -> tuple[str, ...]:
        """What the slice feeds, given its instruments: an option with an underlying feeds its
        chain (``operators.options.chain.chain_key``), anything else of ``bronze.mbo`` its own
        book (consolidated quotes feed chains only)."""
        keys = set()
        for iid in self.instrument_ids:
            info = instruments.get(iid)
            if info is not None and info.instrument_type == "OPT" and info.underlying_id:
                keys.add(chain_key(info.underlying_id, self.session_day))
            elif self.schema != QUOTES:
                keys.add(f"{iid}:{self.session_day}")
        return tuple(sorted(keys))


def _pinned(lake: Lake, spec: TableSpec) -> BronzeTable | None:
    """``spec`` of ``lake`` at its current version; None when the lake has no such table."""
    try:
        table = DeltaTable(lake.uri(spec), storage_options=lake.storage_options or None)
    except TableNotFoundError:
        return None
    return BronzeTable(lake, table.version(), spec)


def pinned_bronze(lake: Lake) -> BronzeTable:
    """``bronze.mbo`` of ``lake`` at its current version; a one-sentence error if there is none."""
    table = _pinned(lake, BRONZE_MBO)
    if table is None:
        raise SourceError(f"The lake {lake.root} has no bronze.mbo table to replay; ingest files or a topic "
                          "into it first.")
    return table


def pinned_quotes(lake: Lake) -> BronzeTable | None:
    """``bronze.cmbp_1`` of ``lake`` at its current version; None when the lake has none."""
    return _pinned(lake, BRONZE_CMBP_1)


def _between(first: date | None, last: date | None) -> str:
    """The SQL filter on sessions ``first``…``last`` (inclusive); empty when either is None."""
    if first is None or last is None:
        return ""
    return f' where "session_date" between {sql_text(first.isoformat())} and {sql_text(last.isoformat())}'


_FACTS = ('select distinct "session_date", "contract_id", "underlier", "instrument_type", "instrument_id", "source", '
          '"dataset" from t{}')


def bronze_slices(table: BronzeTable, first: date | None = None, last: date | None = None) -> list[BronzeSlice]:
    """Every (session, contract) with rows in sessions ``first``…``last`` (inclusive; None: all),
    sorted by session then contract. One query over the table's partition columns and a few
    dictionary-encoded ones; no record is read."""
    where = _between(first, last)
    facts = pa.table(QueryBuilder().register("t", table.open()).execute(_FACTS.format(where)).read_all()).to_pylist()
    if not facts:
        span = "" if not where else f" in sessions {first} to {last}"
        raise SourceError(f"bronze.mbo of {table.lake.root} has no rows{span} to replay.")
    groups: dict[tuple[date, str], list[dict]] = defaultdict(list)
    for row in facts:
        groups[(row["session_date"], row["contract_id"])].append(row)
    _refuse_ambiguous(groups)
    return [_slice(day, contract, rows) for (day, contract), rows in sorted(groups.items())]


_QUOTE_FACTS = 'select distinct "session_date", "instrument_id", "source", "dataset" from t{}'


def quote_slices(table: BronzeTable, first: date | None = None, last: date | None = None) -> list[BronzeSlice]:
    """One slice per session and original source with rows in ``bronze.cmbp_1`` (``first``…``last``
    inclusive; None: all), ``bronze:<session>/cmbp-1/<source>``: a day's ``cmbp-1`` file, or one
    partition of a topic, replays as the source it was, and a chain fed by several takes the
    least of their clocks, as a file replay of several quote files does."""
    where = _between(first, last)
    facts = pa.table(QueryBuilder().register("t", table.open()).execute(_QUOTE_FACTS.format(where)).read_all())
    by_source: dict[tuple[date, str], list[dict]] = defaultdict(list)
    for row in facts.to_pylist():
        by_source[(row["session_date"], row["source"])].append(row)
    return [BronzeSlice(day, f"{QUOTES}/{source}", "", "", tuple(sorted({int(r["instrument_id"]) for r in rows})),
                        (source,), min(r["dataset"] for r in rows), QUOTES)
            for (day, source), rows in sorted(by_source.items())]


def _slice(day: date, contract: str, rows: list[dict]) -> BronzeSlice:
    return BronzeSlice(
        session_date=day,
        contract_id=contract,
        underlier=rows[0]["underlier"],
        instrument_type=rows[0]["instrument_type"],
        instrument_ids=tuple(sorted({int(r["instrument_id"]) for r in rows})),
        sources=tuple(sorted({r["source"] for r in rows})),
        dataset=min(r["dataset"] for r in rows),
    )


def _refuse_ambiguous(groups: dict[tuple[date, str], list[dict]]) -> None:
    """An instrument id is one contract within a session, and a contract one table partition:
    otherwise two partitions would read an instrument, or a read would miss some of its rows."""
    owner: dict[tuple[date, int], str] = {}
    for (day, contract), rows in sorted(groups.items()):
        kinds = sorted({f"{r['underlier']} {r['instrument_type']}" for r in rows})
        if len(kinds) > 1:
            raise SourceError(f"bronze.mbo files {contract} on {day} both as {kinds[0]} and as {kinds[1]}, so its "
                              "records cannot be replayed as one contract.")
        for r in rows:
            seen = owner.setdefault((day, int(r["instrument_id"])), contract)
            if seen != contract:
                raise SourceError(f"bronze.mbo names instrument {r['instrument_id']} both {seen} and {contract} "
                                  f"on {day}, so its records cannot be replayed as one contract.")


def instruments_for(lake: Lake, slices: list[BronzeSlice]) -> dict[str, dict[int, InstrumentInfo]]:
    """Each slice's instrument facts, by partition id: the definition in force at its session.

    That is the latest ``bronze.instrument_definitions`` row of the instrument whose trade date is
    the session or earlier (else its earliest row); an instrument never defined gets what its
    Bronze rows say (symbol, underlier, type; no tick), exactly what a file replay without
    definitions took from the file's symbology.
    """
    defs = lake.read(BRONZE_DEFINITIONS).sort_by([("ts_recv", "ascending"), ("source", "ascending"),
                                                   ("source_offset", "ascending")])
    days = (trade_dates_by_feed(defs["ts_recv"].to_numpy(), defs["dataset"].to_pylist()) if defs.num_rows
            else np.zeros(0, np.int32))
    by_id: dict[int, list[tuple[int, InstrumentInfo]]] = defaultdict(list)
    for day, row in zip(days.tolist(), defs.to_pylist(), strict=True):
        by_id[int(row["instrument_id"])].append((day, _defined(row)))
    out: dict[str, dict[int, InstrumentInfo]] = {}
    for part in slices:
        out[part.source_id] = {iid: _in_force(by_id.get(iid, []), part.session_day) or _undefined(iid, part)
                               for iid in part.instrument_ids}
    return out


def _in_force(defined: list[tuple[int, InstrumentInfo]], session_day: int) -> InstrumentInfo | None:
    before = [info for day, info in defined if day <= session_day]
    if before:
        return before[-1]
    return defined[0][1] if defined else None


def _defined(row: dict) -> InstrumentInfo:
    return InstrumentInfo(
        instrument_id=int(row["instrument_id"]),
        raw_symbol=row["raw_symbol"],
        underlier=row["underlier"],
        instrument_type=cast(InstrumentType, row["instrument_type"]),
        tick=int(row["tick_size"]),
        multiplier=float(row["multiplier"]),
        expiration_ns=int(row["expiration"]),
        strike_price=int(row["strike_price"]),
        source="definition",
        underlying_id=int(row["underlying_id"] or 0),  # null: a row written before the column existed
        option_right=_RIGHTS.get(row["instrument_class"] or "", ""),
        venue=venue_of(row["dataset"] or ""),
    )


_RIGHTS: dict[str, Literal["C", "P", ""]] = {"C": "C", "P": "P"}
"""Databento's ``instrument_class`` of a call and of a put is the right itself."""


def _undefined(instrument_id: int, part: BronzeSlice) -> InstrumentInfo:
    if part.schema == QUOTES:  # a quote row names no contract: an instrument never defined is unknown (no chain)
        return InstrumentInfo(instrument_id, str(instrument_id), "", "UNKNOWN", source="symbology",
                              venue=venue_of(part.dataset))
    return InstrumentInfo(instrument_id, part.contract_id, part.underlier,
                          cast(InstrumentType, part.instrument_type), source="symbology", venue=venue_of(part.dataset))
