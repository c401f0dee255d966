"""A local Eventhouse: the Kusto REST endpoints the Python SDKs use, over one DuckDB database.

For tests (in-process :class:`LocalEventhouse`, or a process of its own from
:func:`start_local_eventhouse`, stopped by PID) and for users without Fabric
(``spymaster eventhouse local`` calls :func:`serve`). It listens on 127.0.0.1 only, has one
Kusto database (``Spymaster`` unless told otherwise) backed by a DuckDB file or ``:memory:``, and
answers KQL by translating it with duckdb-kql, whose REST server it extends.

Endpoints: ``POST /v1/rest/ingest/{db}/{table}?streamFormat=..&mappingName=..`` (streaming
ingestion: MULTIJSON/JSON objects, gzip or not, or Parquet, through a stored json or parquet
mapping; converted column by column in Arrow when every mapping path is a top-level field, else
record by record, with the same values either way);
``POST /v1/rest/mgmt`` (the schema commands of ``infra/fabric/eventhouse_schema.kql`` and the
``.show`` commands that read them back); ``POST /v2/rest/query`` and ``/v1/rest/query``;
``GET /v1/rest/auth/metadata``; and for tests and benches ``GET /spymaster/stats``,
``POST /spymaster/faults`` (faults injected into ingest requests only: 429, 500, a reset
connection, or a request held past the client's timeout, drawn by a seeded RNG) and, when
started with the acknowledgement journal on, ``GET /spymaster/acks?table=T`` (each acknowledged
row's ``stream``, ``position`` and the wall time of its request's reply, Unix ns: what Kusto's
``ingestion_time()`` would say, which the KQL here lacks).

What it does not do:

- KQL is what duckdb-kql 1.1 translates. Not ``make-series``, no ``series_*`` function
  (``series_decompose_anomalies``, ``series_fir``, ``series_stats``...), no ``evaluate`` plugin,
  no ``prev()``/``next()``/``row_number()``, no ``ingestion_time()``, no ``take_any(*)`` in a
  query. Such a query gets duckdb-kql's "unsupported KQL construct" message as a Kusto error.
- Materialized views are not materialized. ``V on table T { T | summarize take_any(*) by k }``
  (or ``arg_max(c, *)``/``arg_min(c, *)``) becomes a DuckDB view with one row per key, the
  first ingested for ``take_any``. Columns are the keys first, as Kusto gives them. Other view
  queries are refused. ``materialized_view("V")`` reads the same view.
- No queued ingestion. ``.get ingestion resources`` is answered with a transient error (503, not
  ``@permanent``): when ManagedStreamingIngestClient falls back to queued ingestion (after three
  failed streaming attempts, or for a payload over 4 MiB) it raises that error instead of landing
  the rows, and a caller that retries transient errors (the flow's sink does) streams again.
- No authentication: any Authorization header is accepted and ignored. No other host than
  127.0.0.1 may be bound.
- One node, one database. Retention, caching and streaming-ingestion policies are recorded
  (``.show table T policy retention``) and never enforced: nothing is ever deleted or evicted.
- Datetimes keep microseconds (Kusto keeps 100 ns ticks). A JSON number for a ``datetime``
  column is Unix seconds unless the mapping's ``transform`` says milliseconds, microseconds or
  nanoseconds. No update policies, no extents, no ``.ingest`` commands (``.set``/``.append``
  and kin from duckdb-kql do work).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gzip
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb
import duckdb_kql
from duckdb_kql.control import SCHEMA, is_control_command, strip_leading_comments
from duckdb_kql.errors import KqlError, KqlUnsupportedError
from duckdb_kql.server import (
    KustoRestServer,
    RestColumn,
    Result,
    check_options,
    error_response,
    v1_response,
    v2_response,
)
from duckdb_kql.stored_functions import StoredFunction, parse_functions
from duckdb_kql.types import kusto_type, net_type

from connectors.kusto.script import split_commands
from flows.services.local_process import announcing_process
from operators.errors import ConfigError, SpymasterError

DEFAULT_DATABASE: Final = "Spymaster"
DEFAULT_PORT: Final = 31_416
"""One past duckdb-kql's own 31415, so both can run side by side."""

FaultKind = Literal["429", "500", "reset", "timeout"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)

_LOOPBACK: Final = ("127.0.0.1", "localhost")
_NO_DATABASE: Final = ("", "NetDefaultDB", "default")
"""What a client sends when it names no database: all mean the one database here."""

_DUCKDB_TYPES: Final = {"string": "VARCHAR", "long": "BIGINT", "int": "INTEGER", "real": "DOUBLE", "bool": "BOOLEAN",
                        "datetime": "TIMESTAMP", "dynamic": "JSON", "timespan": "INTERVAL", "guid": "UUID",
                        "decimal": "DECIMAL(38, 18)"}
_TYPE_ALIASES: Final = {"double": "real", "float": "real", "boolean": "bool", "date": "datetime", "time": "timespan",
                        "uniqueid": "guid", "int64": "long", "int32": "int"}
_EPOCH: Final = dt.datetime(1970, 1, 1)
_UNIX_UNITS: Final = {None: 1.0, "datetimefromunixseconds": 1.0, "datetimefromunixmilliseconds": 1e-3,
                      "datetimefromunixmicroseconds": 1e-6, "datetimefromunixnanoseconds": 1e-9}
_CATALOG: Final = '"_eventhouse"."eventhouse_catalog"'
_AUTH_METADATA: Final = {"AzureAD": {
    "LoginEndpoint": "https://login.microsoftonline.com", "LoginMfaRequired": False,
    "KustoClientAppId": "db662dc1-0cfe-4e1c-a843-19a68e65be58", "KustoClientRedirectUri": "https://microsoft/kustoclient",
    "KustoServiceResourceId": "https://kusto.kusto.windows.net",
    "FirstPartyAuthorityUrl": "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a"},
    "dSTS": {}}
"""Public-cloud values, so an AAD-configured client gets past its metadata step; no token is checked."""


# ---------------------------------------------------------------------------------------------
# Faults and counters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSettings:
    """Faults injected into streaming-ingest requests (never into queries or commands)."""

    fail_share: float = 0.0
    """Share of ingest requests that fail, 0..1."""
    kinds: tuple[FaultKind, ...] = ("429", "500")
    """Drawn uniformly for a failing request: ``429`` and ``500`` are transient Kusto errors,
    ``reset`` closes the connection without a reply, ``timeout`` holds the request for
    ``timeout_s`` and then closes it."""
    seed: int = 0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_share <= 1.0:
            raise ConfigError(f"fail_share must be between 0 and 1, got {self.fail_share}")
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or (self.fail_share > 0 and not self.kinds):
            raise ConfigError(f"fault kinds must be some of {', '.join(FAULT_KINDS)}, got {list(self.kinds)}")
        if self.timeout_s < 0:
            raise ConfigError(f"timeout_s must not be negative, got {self.timeout_s}")

    def updated(self, changes: Mapping[str, Any]) -> FaultSettings:
        """These settings with the JSON fields of ``POST /spymaster/faults`` applied."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown fault setting(s) {sorted(unknown)}; known: fail_share, kinds, seed, timeout_s")
        fields = dict(changes)
        if "kinds" in fields:
            fields["kinds"] = tuple(str(k) for k in fields["kinds"])
        return dataclasses.replace(self, **fields)

    def to_json(self) -> dict[str, Any]:
        return {"fail_share": self.fail_share, "kinds": list(self.kinds), "seed": self.seed,
                "timeout_s": self.timeout_s}


class _Faults:
    """The settings, the RNG they seed, and the counters ``GET /spymaster/stats`` reports."""

    def __init__(self, settings: FaultSettings) -> None:
        self._lock = threading.Lock()
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter({k: 0 for k in FAULT_KINDS})
        self.rows_by_table: Counter[str] = Counter()

    def change(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings, self._rng = settings, random.Random(settings.seed)

    def draw(self) -> FaultKind | None:
        """Count one ingest request and decide whether it fails, and how."""
        with self._lock:
            self.counts["ingest_requests"] += 1
            s = self.settings
            if s.fail_share <= 0 or self._rng.random() >= s.fail_share:
                return None
            kind = s.kinds[self._rng.randrange(len(s.kinds))]
            self.faults[kind] += 1
            return kind

    def count(self, name: str, n: int = 1, table: str | None = None) -> None:
        with self._lock:
            self.counts[name] += n
            if table is not None:
                self.rows_by_table[table] += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            names = ("ingest_requests", "ingest_ok", "ingest_rejected", "rows_ingested", "query_requests",
                     "mgmt_requests", "queued_ingestion_refused")
            return {**{n: self.counts[n] for n in names}, "faults": dict(self.faults),
                    "rows_by_table": dict(self.rows_by_table), "fault_settings": self.settings.to_json()}


class RefusedRequest(SpymasterError):
    """A request the local Eventhouse refused: over HTTP, a Kusto error body (permanent unless said
    otherwise); in-process (``LocalEventhouse.command``, ``apply_script``), raised."""

    def __init__(self, message: str, *, status: int = 400, code: str = "General_BadRequest",
                 permanent: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.permanent = status, code, permanent

    def payload(self) -> dict[str, Any]:
        body = error_response(str(self), code=self.code)
        body["error"]["@permanent"] = self.permanent
        body["error"]["@context"] = {"service": "spymaster-local-eventhouse"}
        return body


# ---------------------------------------------------------------------------------------------
# Names, types, mappings, views
# ---------------------------------------------------------------------------------------------

_IDENT: Final = r"(?:\[\s*'[^']*'\s*\]|\[\s*\"[^\"]*\"\s*\]|[A-Za-z_][A-Za-z0-9_]*)"
_PROPS: Final = r"(?:\s+with\s*\((?P<props>(?:[^()'\"]|'[^']*'|\"[^\"]*\")*)\))?"


def _name(text: str) -> str:
    """``['My Table']`` or ``MyTable`` -> the name."""
    text = text.strip()
    return text[1:-1].strip()[1:-1] if text.startswith("[") else text


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kusto_type(text: str) -> str:
    name = text.strip().lower()
    name = _TYPE_ALIASES.get(name, name)
    if name not in _DUCKDB_TYPES:
        raise RefusedRequest(f"unknown column type {text.strip()!r}; known: {', '.join(_DUCKDB_TYPES)}")
    return name


def _parse_columns(text: str) -> list[tuple[str, str]]:
    """``a:string, ['b c']:long`` -> [(a, string), (b c, long)]."""
    columns = []
    for item in filter(str.strip, text.split(",")):
        m = re.fullmatch(rf"\s*({_IDENT})\s*:\s*(\w+)\s*", item)
        if m is None:
            raise RefusedRequest(f"cannot read the column {item.strip()!r}; expected name:type")
        columns.append((_name(m.group(1)), _kusto_type(m.group(2))))
    return columns


def _properties(text: str | None) -> dict[str, str]:
    """``folder = "x", docstring = 'y'`` -> {"folder": "x", "docstring": "y"} (names lower-cased)."""
    found = re.findall(r"(\w+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^,\s]+)", text or "")
    return {k.lower(): v[1:-1] if v[:1] in "'\"" else v for k, v in found}


_LITERAL: Final = re.compile(r"@'((?:[^']|'')*)'|@\"((?:[^\"]|\"\")*)\"|'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r"}


def _string_literals(text: str) -> str:
    """Kusto's adjacent string literals (``'a' "b" @'c'``) joined into one value."""
    out = []
    for m in _LITERAL.finditer(text):
        verbatim_single, verbatim_double, single, double = m.groups()
        if verbatim_single is not None or verbatim_double is not None:
            out.append(verbatim_single.replace("''", "'") if verbatim_single is not None
                       else verbatim_double.replace('""', '"'))
        else:
            body = single if single is not None else double
            out.append(re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), body))
    return "".join(out)


_PATH_STEP: Final = re.compile(r"\.([^.\[]+)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*\"((?:[^\"\\]|\\.)*)\"\s*\]|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class _ColumnMapping:
    column: str
    path: tuple[str | int, ...] | None
    """Steps below ``$``; None for a constant."""
    const: str | None = None
    transform: str | None = None

    def value(self, record: Any) -> Any:
        if self.path is None:
            return self.const
        for step in self.path:
            if isinstance(step, int) and isinstance(record, list) and step < len(record):
                record = record[step]
            elif isinstance(step, str) and isinstance(record, dict):
                record = record.get(step)
            else:
                return None
        return record


def _parse_path(path: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        m = _PATH_STEP.match(path, position)
        if m is None:
            raise RefusedRequest(f"cannot read the JSON path {path!r}; expected $.a.b, $['a b'] or $.a[0]")
        name, single, double, index = m.groups()
        steps.append(int(index) if index is not None else (name or single or double))
        position = m.end()
    return tuple(steps)


def _parse_mapping(text: str) -> tuple[_ColumnMapping, ...]:
    """A JSON mapping: legacy ``{"column","path","transform"}`` or ``{"Column","Properties":{"Path"}}``."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise RefusedRequest(f"the ingestion mapping is not JSON: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RefusedRequest("an ingestion mapping is a JSON list of {column, path} objects")
    out = []
    for item in items:
        flat = {k.lower(): v for k, v in item.items()}
        flat.update({k.lower(): v for k, v in (flat.pop("properties", None) or {}).items()})
        if "column" not in flat:
            raise RefusedRequest(f"an ingestion mapping entry has no column: {item}")
        path, const = flat.get("path"), flat.get("constvalue")
        transform = str(flat["transform"]).lower() if flat.get("transform") else None
        if path is not None and str(path).startswith("$"):
            out.append(_ColumnMapping(str(flat["column"]), _parse_path(str(path)), None, transform))
        else:
            out.append(_ColumnMapping(str(flat["column"]), None, None if path is None and const is None
                                      else str(const if const is not None else path), transform))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _DedupView:
    """A materialized view emulated by a DuckDB view: one row per key."""

    name: str
    table: str
    keys: tuple[str, ...]
    pick: str
    """``take_any``, ``arg_max`` or ``arg_min``."""
    by: str | None
    """The column ``arg_max``/``arg_min`` picks by."""
    query: str
    props: str

    def sql(self) -> str:
        keys = ", ".join(map(_q, self.keys))
        if self.by is None:
            first, order = keys, f"{keys}, rowid"
        else:
            direction = "DESC" if self.pick == "arg_max" else "ASC"
            first, order = f"{keys}, {_q(self.by)}", f"{keys}, {_q(self.by)} {direction} NULLS LAST, rowid"
        return (f"CREATE OR REPLACE VIEW {_q(self.name)} AS SELECT DISTINCT ON ({keys}) {first}, "
                f"* EXCLUDE ({first}) FROM {_q(self.table)} ORDER BY {order}")


_VIEW_QUERY: Final = re.compile(
    rf"\s*(?P<table>{_IDENT})\s*\|\s*summarize\s+(?:take_any\(\s*\*\s*\)|(?P<pick>arg_max|arg_min)\(\s*"
    rf"(?P<by>{_IDENT})\s*,\s*\*\s*\))\s+by\s+(?P<keys>{_IDENT}(?:\s*,\s*{_IDENT})*)\s*", re.I | re.S)


def _parse_view(name: str, table: str, query: str, props: str) -> _DedupView:
    m = _VIEW_QUERY.fullmatch(query)
    if m is None or _name(m.group("table")) != table:
        raise RefusedRequest(f"materialized view {name}: only `{table} | summarize take_any(*) by keys` and "
                             f"`arg_max(c, *)`/`arg_min(c, *) by keys` are emulated here, not {query.strip()!r}")
    keys = tuple(_name(k) for k in m.group("keys").split(","))
    by = _name(m.group("by")) if m.group("by") else None
    return _DedupView(name, table, keys, (m.group("pick") or "take_any").lower(), by, query.strip(), props)


# ---------------------------------------------------------------------------------------------
# Values: JSON (or Parquet) value -> the column's Kusto type
# ---------------------------------------------------------------------------------------------


def _to_datetime(value: Any, transform: str | None) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str):
        try:
            return _to_datetime(dt.datetime.fromisoformat(value.strip()), None)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        unit = _UNIX_UNITS.get(transform)
        if unit is None:
            return None
        if transform == "datetimefromunixnanoseconds" and isinstance(value, int):
            return _EPOCH + dt.timedelta(microseconds=value // 1000)
        return _EPOCH + dt.timedelta(seconds=value * unit)
    return None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _to_int32(value: Any) -> int | None:
    n = _to_int(value)
    return n if n is not None and -(2**31) <= n < 2**31 else None


def _to_real(value: Any) -> float | None:
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def _to_string(value: Any) -> str | None:
    if isinstance(value, str) or value is None:
        return value
    return value.isoformat() if isinstance(value, dt.datetime) else _to_json(value)


def _to_timespan(value: Any) -> dt.timedelta | None:
    if isinstance(value, dt.timedelta):
        return value
    m = re.fullmatch(r"(-)?(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", str(value).strip()) if value is not None else None
    if m is None:
        return None
    span = dt.timedelta(days=int(m.group(2) or 0), hours=int(m.group(3)), minutes=int(m.group(4)),
                        seconds=float(m.group(5)))
    return -span if m.group(1) else span


def _to_guid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if value is not None else None
    except ValueError:
        return None


def _to_decimal(value: Any) -> str | None:
    try:
        return str(Decimal(str(value))) if value is not None and not isinstance(value, bool) else None
    except InvalidOperation:
        return None


_CONVERT: Final[dict[str, Callable[[Any], Any]]] = {
    "string": _to_string, "long": _to_int, "int": _to_int32, "real": _to_real, "bool": _to_bool,
    "dynamic": _to_json, "timespan": _to_timespan, "guid": _to_guid, "decimal": _to_decimal,
}


def _convert(kind: str, value: Any, transform: str | None) -> Any:
    if value is None:
        return None
    return _to_datetime(value, transform) if kind == "datetime" else _CONVERT[kind](value)


def _json_records(text: str) -> list[Any]:
    """Concatenated JSON values (one per line, or pretty-printed); a top-level array is its elements."""
    decoder, position = json.JSONDecoder(), 0
    out: list[Any] = []
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return out
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise RefusedRequest(f"the ingested JSON does not parse: {exc}") from None
        out.extend(value if isinstance(value, list) else [value])


def _mapping_kind(fmt: str) -> str:
    """The mapping kind a stream format uses."""
    if fmt in ("multijson", "json", "singlejson"):
        return "json"
    if fmt in ("parquet", "apacheparquet"):
        return "parquet"
    raise RefusedRequest(f"stream format {fmt!r} is not supported by the local Eventhouse; "
                         "send multijson, json or parquet")


def _arrow_type(kind: str) -> Any:
    """The Arrow type a Kusto column's values are handed to DuckDB in (then cast to its DuckDB type)."""
    import pyarrow as pa

    types = {"long": pa.int64(), "int": pa.int32(), "real": pa.float64(), "bool": pa.bool_(),
             "datetime": pa.timestamp("us"), "timespan": pa.duration("us")}
    return types.get(kind, pa.string())


def _arrow_table(columns: Sequence[tuple[str, str]], values: Sequence[list[Any]]) -> Any:
    """Converted Python values, one list per mapped column, as the table ``_insert`` takes."""
    import pyarrow as pa

    return pa.table({f"c{i}": pa.array(v, type=_arrow_type(kind))
                     for i, ((_, kind), v) in enumerate(zip(columns, values, strict=True))})


# ---------------------------------------------------------------------------------------------
# Columnar ingestion: Arrow column -> the column's Kusto type, the same values as _convert gives
# ---------------------------------------------------------------------------------------------
#
# When every entry of the mapping is a top-level field (``$.name``, ``$['name']``) or a constant,
# the body is read as an Arrow table (Parquet; MULTIJSON through pyarrow.json when its values have
# the plain types below) and each column is converted whole. Source types whose conversion Arrow
# does exactly as _convert does (an integer into ``long``, a timestamp into ``datetime``, a list of
# ASCII strings into ``dynamic``...) never leave Arrow; any other column goes value by value through
# _convert, so the result is always what the row path lands.


def _top_level(m: _ColumnMapping) -> str | None:
    """The field name when the mapping entry reads one top-level field, else None."""
    if m.path is not None and len(m.path) == 1 and isinstance(m.path[0], str):
        return m.path[0]
    return None


def _columnar_mapping(mapping: Sequence[_ColumnMapping]) -> bool:
    return bool(mapping) and all(m.path is None or _top_level(m) is not None for m in mapping)


def _columnar(source: Any, mapping: Sequence[_ColumnMapping], kinds: Sequence[str]) -> Any:
    """The Arrow table ``_insert`` takes, from the mapped top-level columns of ``source``."""
    import pyarrow as pa

    rows, index = source.num_rows, {name: i for i, name in enumerate(source.column_names)}  # the last of a name wins
    out = {}
    for i, (m, kind) in enumerate(zip(mapping, kinds, strict=True)):
        target, name = _arrow_type(kind), _top_level(m)
        if name is None:
            out[f"c{i}"] = pa.array([_convert(kind, m.const, m.transform)] * rows, type=target)
        elif name not in index:
            out[f"c{i}"] = pa.nulls(rows, type=target)
        else:
            out[f"c{i}"] = _arrow_column(kind, source.column(index[name]), m.transform, target)
    return pa.table(out)


def _arrow_column(kind: str, col: Any, transform: str | None, target: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    try:
        fast = _fast_column(kind, col, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # out of range for the target: value by value
        fast = None
    if fast is not None:
        return fast
    return pa.array([_convert(kind, v, transform) for v in col.to_pylist()], type=target)


def _fast_column(kind: str, col: Any, target: Any) -> Any:
    """``col`` converted by Arrow when that gives exactly _convert's values, else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_null(t):
        return pa.nulls(len(col), type=target)
    integral = pa.types.is_integer(t) or pa.types.is_boolean(t)
    if kind == "string":
        return col.cast(target) if _is_text(t) else None
    if kind in ("long", "int") and integral:
        wide = col.cast(pa.int64())
        if kind == "int":
            fits = pc.and_(pc.greater_equal(wide, -(2**31)), pc.less(wide, 2**31))
            wide = pc.if_else(fits, wide, pa.scalar(None, pa.int64()))
        return wide.cast(target)
    if kind == "real" and (integral or pa.types.is_floating(t)):
        return col.cast(target, safe=False)  # int -> float rounds to nearest, as float() does
    if kind == "bool" and pa.types.is_boolean(t):
        return col
    if kind == "datetime" and pa.types.is_timestamp(t):
        if t.unit == "ns" and (pc.min(col.cast(pa.int64())).as_py() or 0) < 0:
            return None  # Arrow truncates toward zero, the row path floors
        return col.cast(pa.timestamp(t.unit)).cast(target, safe=t.unit != "ns")  # UTC wall time, naive
    if kind == "datetime" and _is_text(t):
        return _iso_datetimes(col)
    if kind == "dynamic":
        return _json_texts(col)
    return None


_ISO_DATETIME: Final = (r"^(19|20|21)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
                        r"(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$")
"""The ISO-8601 datetimes Arrow parses as fromisoformat does: years 1900-2199 (within Arrow's
nanosecond range), real dates (Arrow refuses the 30th of February as fromisoformat does)."""


def _iso_datetimes(col: Any) -> Any:
    """ISO-8601 strings -> naive UTC microseconds, digits past the microsecond dropped (as
    ``fromisoformat`` does); None unless every string has the form of ``_ISO_DATETIME``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = col.cast(pa.string())
    if not pc.all(pc.match_substring_regex(text, _ISO_DATETIME)).as_py():
        return None if pc.count(text).as_py() else pa.nulls(len(text), type=pa.timestamp("us"))
    zoned = pc.match_substring_regex(text, r"(Z|[+-]\d\d:\d\d)$")
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))  # naive is kept as it is: as UTC
    ns = text.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    us = pc.divide(ns, 1000)  # toward zero; a time before 1970 with digits past the microsecond floors
    us = pc.if_else(pc.greater(pc.multiply(us, 1000), ns), pc.subtract(us, 1), us)
    return us.cast(pa.timestamp("us"))


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _json_texts(col: Any) -> Any:
    """JSON text of each value, as ``json.dumps(v, separators=(",", ":"))`` writes it, or None when
    that takes Python: strings of printable ASCII, integers, bools and lists of them go by Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        return _json_scalars(col)
    lists = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    items = _json_scalars(pc.list_flatten(lists))  # the items of the lists that are not null, in order
    if items is None:
        return None
    lengths = pc.list_value_length(lists).fill_null(0).cast(pa.int64())
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(lengths)])
    joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, items.fill_null("null"), mask=lists.is_null()),
                            ",")
    return pc.binary_join_element_wise("[", joined, "]", "")


def _json_scalars(col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):  # str(int), and true/false
        return col.cast(pa.string())
    if not _is_text(t):
        return None
    text = col.cast(pa.string())
    if pc.any(pc.match_substring_regex(text, r"[^\x20-\x7e]")).as_py():  # json.dumps escapes these its own way
        return None
    text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', text, '"', "")


_JSON_FIELD_TYPES: Final = {"long": "int64", "int": "int64", "real": "float64", "bool": "bool", "string": "string",
                            "dynamic": "list<string>"}
"""What pyarrow.json is told each mapped field holds; a value of another JSON type makes it fail,
and the body goes the row path. Datetimes, guids, timespans and decimals are read as strings."""


def _read_parquet(body: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Arrow's own buffer, not a Python file object: Arrow's I/O threads would call back into
    # Python, and one still doing so when the interpreter exits aborts it
    return pq.read_table(pa.BufferReader(body))


def _columnar_batch(kind: str, body: bytes, source: Any, mapping: Sequence[_ColumnMapping],
                    kinds: Sequence[str]) -> Any:
    """The batch ``_insert`` takes, converted column by column; None when the row path must do it
    (a mapping with nested paths, or JSON that pyarrow.json does not read with plain types)."""
    if not _columnar_mapping(mapping):
        return None
    if kind == "json":
        source = _json_table(body, mapping, kinds)
    return None if source is None else _columnar(source, mapping, kinds)


def _json_table(body: bytes, mapping: Sequence[_ColumnMapping], kinds: Sequence[str]) -> Any:
    """The body's records as an Arrow table of the mapped fields, or None when pyarrow.json cannot
    read them with the plain types of ``_JSON_FIELD_TYPES`` (then the row path reads them)."""
    import pyarrow as pa
    import pyarrow.json as pj

    fields: dict[str, Any] = {}
    for m, kind in zip(mapping, kinds, strict=True):
        name = _top_level(m)
        if name is None:
            continue
        wanted = _JSON_FIELD_TYPES.get(kind, "string")
        arrow = pa.list_(pa.string()) if wanted == "list<string>" else pa.type_for_alias(wanted)
        if fields.setdefault(name, arrow) != arrow:
            return None
    options = pj.ParseOptions(explicit_schema=pa.schema(list(fields.items())), unexpected_field_behavior="ignore")
    try:
        return pj.read_json(pa.BufferReader(body.removeprefix(b"\xef\xbb\xbf")), parse_options=options)
    except (pa.ArrowException, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


def _connect(db_path: str | Path, database: str) -> duckdb.DuckDBPyConnection:
    """A connection whose current (and only) database is named ``database``."""
    con = duckdb_kql.connect(":memory:")
    # one thread: DuckDB's own workers would take the GIL to scan Arrow data registered from
    # Python, from threads the interpreter does not know (the stand-in's tables are small)
    con.execute("SET threads TO 1")
    path = str(db_path) if str(db_path) == ":memory:" else str(Path(db_path).expanduser())
    con.execute(f"ATTACH {_lit(path)} AS {_q(database)}")
    con.execute(f"USE {_q(database)}")
    con.execute("DETACH memory")
    con.execute('CREATE SCHEMA IF NOT EXISTS "_eventhouse"')
    con.execute(f"CREATE TABLE IF NOT EXISTS {_CATALOG} (kind VARCHAR, name VARCHAR, definition VARCHAR, "
                "PRIMARY KEY (kind, name))")
    return con


class AckJournal:
    """When each row was acknowledged, by its identity: for measuring, never for delivery.

    Kept per request as the ingested batch's ``stream`` and ``position`` columns, so recording
    costs one reference, not a conversion; tables without those columns are not recorded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_table: dict[str, list[tuple[Any, Any, int]]] = {}

    def add(self, table: str, columns: Sequence[str], batch: Any) -> None:
        if "stream" not in columns or "position" not in columns:
            return
        acked_ns = time.time_ns()
        stream, position = batch.column(columns.index("stream")), batch.column(columns.index("position"))
        with self._lock:
            self._by_table.setdefault(table, []).append((stream, position, acked_ns))

    def rows(self, table: str) -> dict[str, list[Any]]:
        """``{"stream": [...], "position": [...], "acked_ns": [...]}`` in acknowledgement order."""
        with self._lock:
            parts = list(self._by_table.get(table, ()))
        out: dict[str, list[Any]] = {"stream": [], "position": [], "acked_ns": []}
        for stream, position, acked_ns in parts:
            out["stream"] += stream.to_pylist()
            out["position"] += [None if p is None else int(p) for p in position.to_pylist()]
            out["acked_ns"] += [acked_ns] * len(stream)
        return out


class EventhouseServer(KustoRestServer):
    """duckdb-kql's Kusto REST server with ingestion, schema commands and fault injection.

    Every use of the DuckDB connection goes through one lock: a connection is not safe to use
    from several request threads at once.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, db_path: str | Path = ":memory:",
                 database: str = DEFAULT_DATABASE, faults: FaultSettings | None = None, quiet: bool = True,
                 journal: bool = False) -> None:
        if host not in _LOOPBACK:
            raise ConfigError(f"the local Eventhouse listens on 127.0.0.1 only (it has no authentication), not {host}")
        self._gate = threading.RLock()
        con = _connect(db_path, database)
        super().__init__(con, port=port, host="127.0.0.1", source=str(db_path), quiet=quiet, allow_write=True)
        self.RequestHandlerClass = _EventhouseHandler
        self.kusto_database = database
        self.stopping = threading.Event()
        self.fault_state = _Faults(faults or FaultSettings())
        self.mappings: dict[tuple[str, str, str], tuple[_ColumnMapping, ...]] = {}
        self.views: dict[str, _DedupView] = {}
        self.functions = {None: {}}
        self.acks: AckJournal | None = AckJournal() if journal else None
        self._busy = 0
        self._idle = threading.Condition()
        self._load_catalog()

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request while it is served, so that stopping can wait for it (``drain``)."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until no request is being served (True), or ``timeout_s`` passed (False).

        Request threads are daemons: one still inside DuckDB when the interpreter exits would take
        the GIL back during finalization, which aborts the process."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout_s)

    # -- connection, under the lock ------------------------------------------------------------

    def sql(self, statement: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._gate:
            return self._con.execute(statement, list(parameters)).fetchall()

    def run(self, csl: str, parameters: dict[str, Any] | None = None, database: str | None = None,
            options: dict[str, Any] | None = None) -> Result:
        with self._gate:
            return super().run(csl, parameters, database, options)

    def databases(self) -> list[str]:
        with self._gate:
            return super().databases()

    def columns(self, table: str) -> list[tuple[str, str]] | None:
        """(column, Kusto type) of a table (not a view), or None when there is no such table."""
        rows = self.sql("SELECT c.column_name, c.data_type, t.table_type FROM information_schema.tables t "
                        "LEFT JOIN information_schema.columns c USING (table_catalog, table_schema, table_name) "
                        "WHERE t.table_catalog = current_database() AND t.table_schema = 'main' "
                        "AND t.table_name = ? ORDER BY c.ordinal_position", [table])
        if not rows or rows[0][2] != "BASE TABLE":
            return None
        return [(str(name), kusto_type(kind)) for name, kind, _ in rows]

    def require_table(self, table: str) -> list[tuple[str, str]]:
        found = self.columns(table)
        if found is None:
            raise RefusedRequest(f"table {table!r} does not exist in database {self.kusto_database!r}",
                                 code="BadRequest_EntityNotFound")
        return found

    # -- the catalog: mappings, functions, views, policies, table properties ---------------------

    def save(self, kind: str, name: str, definition: str | None) -> None:
        with self._gate:
            self._con.execute(f"DELETE FROM {_CATALOG} WHERE kind = ? AND name = ?", [kind, name])
            if definition is not None:
                self._con.execute(f"INSERT INTO {_CATALOG} VALUES (?, ?, ?)", [kind, name, definition])

    def recorded(self, kind: str) -> dict[str, str]:
        return dict(self.sql(f"SELECT name, definition FROM {_CATALOG} WHERE kind = ? ORDER BY name", [kind]))

    def _load_catalog(self) -> None:
        for key, text in self.recorded("mapping").items():
            table, kind, name = json.loads(key)
            self.mappings[(table, kind, name)] = _parse_mapping(text)
        for text in self.recorded("function").values():
            self.register_function(text)
        for name, text in self.recorded("view").items():
            spec = json.loads(text)
            self.views[name] = _parse_view(name, spec["table"], spec["query"], spec["props"])

    def register_function(self, command: str) -> StoredFunction:
        function = _parse_function(command)
        with self._gate:
            self.functions = {None: {**(self.functions or {}).get(None, {}), function.name: function}}
        return function

    def drop_function(self, name: str) -> None:
        with self._gate:
            self.functions = {None: {k: v for k, v in (self.functions or {}).get(None, {}).items() if k != name}}

    def stored_functions(self) -> dict[str, StoredFunction]:
        return dict((self.functions or {}).get(None, {}))

    def forget_policies(self, kind: str, name: str) -> None:
        for key in self.recorded("policy"):
            if json.loads(key)[:2] == [kind, name]:
                self.save("policy", key, None)

    # -- requests -------------------------------------------------------------------------------

    def ingest(self, database: str, table: str, fmt: str, mapping_name: str | None, body: bytes) -> Result:
        """Land the records of one streaming-ingest request; raises RefusedRequest for a permanent error."""
        if database != self.kusto_database:
            raise RefusedRequest(f"database {database!r} does not exist; this Eventhouse has {self.kusto_database!r}",
                                 code="BadRequest_EntityNotFound")
        columns = dict(self.require_table(table))
        if body[:2] == b"\x1f\x8b":  # the SDK says gzip even for Parquet, which it does not compress
            body = gzip.decompress(body)
        kind = _mapping_kind(fmt.lower())
        source = _read_parquet(body) if kind == "parquet" else None
        try:
            mapping = self._mapping(table, kind, mapping_name, columns)
        except RefusedRequest:
            if kind == "json":  # a body that does not parse is the error reported, as it was before
                _json_records(body.decode("utf-8-sig"))
            raise
        mapped = [(m.column, columns[m.column]) for m in mapping]
        kinds = [kusto for _, kusto in mapped]
        batch = _columnar_batch(kind, body, source, mapping, kinds)
        if batch is None:  # the row path: every record as Python values, converted one by one
            records = source.to_pylist() if source is not None else _json_records(body.decode("utf-8-sig"))
            batch = _arrow_table(mapped, [[_convert(kusto, m.value(r), m.transform) for r in records]
                                          for m, kusto in zip(mapping, kinds, strict=True)])
            count = len(records)
        else:
            count = batch.num_rows
        if count:
            self._insert(table, mapped, batch)
            if self.acks is not None:
                self.acks.add(table, [c for c, _ in mapped], batch)
        self.fault_state.count("rows_ingested", count, table)
        return Result([RestColumn("ConsumedRecordsCount", "long", "Int64", "long"),
                       RestColumn("UpdatePolicyStatus", "string", "String", "string"),
                       RestColumn("UpdatePolicyFailureCode", "string", "String", "string"),
                       RestColumn("UpdatePolicyFailureReason", "string", "String", "string")],
                      [[count, "Inactive", "Unknown", None]])

    def _mapping(self, table: str, kind: str, name: str | None,
                 columns: Mapping[str, str]) -> tuple[_ColumnMapping, ...]:
        if name is None:  # identity: each column from the field of the same name
            return tuple(_ColumnMapping(c, (c,)) for c in columns)
        found = self.mappings.get((table, kind, name))
        if found is None:
            raise RefusedRequest(f"ingestion mapping {name!r} of kind {kind} does not exist for table {table!r}",
                                 code="BadRequest_MappingReferenceWasNotFound")
        missing = [m.column for m in found if m.column not in columns]
        if missing:
            raise RefusedRequest(f"ingestion mapping {name!r} names columns {missing} that table {table!r} "
                                 "does not have")
        return found

    def _insert(self, table: str, mapped: Sequence[tuple[str, str]], batch: Any) -> None:
        """One INSERT of ``batch`` (columns c0.. in the Arrow types of ``_arrow_type``) into the mapped columns."""
        alias = f"_ingest_{uuid.uuid4().hex}"
        targets = ", ".join(_q(c) for c, _ in mapped)
        sources = ", ".join(f"CAST(c{i} AS {_DUCKDB_TYPES[kind]})" for i, (_, kind) in enumerate(mapped))
        with self._gate:
            self._con.register(alias, batch)
            try:
                self._con.execute(f"INSERT INTO {_q(table)} ({targets}) SELECT {sources} FROM {_q(alias)}")
            finally:
                self._con.unregister(alias)

    def command(self, csl: str) -> Result:
        """One management command: ours first, then duckdb-kql's own (.show version, .set...).

        Commands run one at a time, so a check and the change it guards see the same catalog.
        """
        text = strip_leading_comments(csl).strip().rstrip(";").strip()
        if re.match(r"\.get\s+(ingestion\s+resources|kusto\s+identity\s+token)", text, re.I):
            self.fault_state.count("queued_ingestion_refused")
            raise RefusedRequest("queued ingestion is not available on the local Eventhouse: only streaming ingestion "
                                 "(POST /v1/rest/ingest) lands rows here", status=503,
                                 code="ServiceUnavailable_QueuedIngestion", permanent=False)
        with self._gate:
            for pattern, action in _COMMANDS:
                m = pattern.fullmatch(text)
                if m is not None:
                    return action(self, m)
            try:
                return self.run(text)
            except KqlUnsupportedError:
                if not is_control_command(text):
                    raise
                head = " ".join(text.split()[:3])
                raise RefusedRequest(f"the local Eventhouse does not implement the command {head!r}; it knows "
                                     f"{', '.join(_KNOWN_COMMANDS)}") from None

    def query(self, csl: str, parameters: dict[str, Any] | None = None,
              options: dict[str, Any] | None = None) -> Result:
        refusals = check_options(options or {})
        if refusals:
            raise RefusedRequest("; ".join(refusals))
        csl = _MATERIALIZED_VIEW.sub(lambda m: m.group(2) if m.group(2).isidentifier() else f"['{m.group(2)}']", csl)
        return self.run(csl, parameters, None, options)

    def execute(self, route: str, body: bytes, request_id: str) -> Any:
        """A query or command request body -> the v1 or v2 reply."""
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            raise RefusedRequest(f"the request body is not JSON: {exc}") from None
        if not isinstance(request, dict):
            raise RefusedRequest("the request body must be a JSON object with 'db' and 'csl'")
        csl, db = request.get("csl"), request.get("db") or ""
        if not isinstance(csl, str) or not csl.strip():
            raise RefusedRequest("the request has no 'csl' to run")
        if db not in _NO_DATABASE and db != self.kusto_database:
            raise RefusedRequest(f"database {db!r} does not exist; this Eventhouse has {self.kusto_database!r}",
                                 code="BadRequest_EntityNotFound")
        properties = request.get("properties") or {}
        properties = json.loads(properties) if isinstance(properties, str) else properties
        if route.endswith("/mgmt") or is_control_command(csl):
            self.fault_state.count("mgmt_requests")
            result = self.command(csl)
        else:
            self.fault_state.count("query_requests")
            options = {str(k).lower(): v for k, v in (properties.get("Options") or {}).items()}
            result = self.query(csl, properties.get("Parameters") or None, options)
        return v2_response(result, request_id) if route.startswith("/v2/") else v1_response(result)

    def apply_script(self, text: str) -> int:
        """Run every command of a schema script; returns how many ran."""
        commands = split_commands(text)
        for command in commands:
            self.command(command)
        return len(commands)

    def stats(self) -> dict[str, Any]:
        return self.fault_state.snapshot()

    def close(self) -> None:
        self.stopping.set()
        self.server_close()
        with self._gate:
            self._con.close()


_MATERIALIZED_VIEW: Final = re.compile(r"materialized_view\(\s*(['\"])([^'\"]+)\1\s*\)")
"""``materialized_view("V")`` reads the same emulated view as ``V``."""


def _parse_function(command: str) -> StoredFunction:
    try:
        parsed = parse_functions([command])
    except (ValueError, TypeError, KqlError) as exc:
        raise RefusedRequest(str(exc)) from None
    assert parsed is not None
    return next(iter(parsed[None].values()))


# ---------------------------------------------------------------------------------------------
# Management commands
# ---------------------------------------------------------------------------------------------


def _result(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> Result:
    return Result([RestColumn.derived(name, kind) for name, kind in columns], [list(r) for r in rows])


_SCHEMA_COLUMNS: Final = (("TableName", "string"), ("Schema", "string"), ("DatabaseName", "string"),
                          ("Folder", "string"), ("DocString", "string"))


def _table_props(eh: EventhouseServer, table: str) -> dict[str, str]:
    text = eh.recorded("table").get(table)
    return json.loads(text) if text else {}


def _schema_row(eh: EventhouseServer, table: str, as_json: bool) -> list[Any]:
    columns, props = eh.require_table(table), _table_props(eh, table)
    if as_json:
        schema = json.dumps({"Name": table, "OrderedColumns": [{"Name": c, "Type": net_type(t), "CslType": t}
                                                               for c, t in columns]})
    else:
        schema = ",".join(f"{c}:{t}" for c, t in columns)
    return [table, schema, eh.kusto_database, props.get("folder", ""), props.get("docstring", "")]


def _create_table(eh: EventhouseServer, m: re.Match[str]) -> Result:
    verb, table, wanted = m.group("verb").lower(), _name(m.group("name")), _parse_columns(m.group("cols"))
    existing = eh.columns(table)
    if existing is None and verb == ".alter-merge":
        raise RefusedRequest(f"table {table!r} does not exist", code="BadRequest_EntityNotFound")
    if existing is None:
        eh.sql(f"CREATE TABLE {_q(table)} ({', '.join(f'{_q(c)} {_DUCKDB_TYPES[t]}' for c, t in wanted)})")
    elif verb == ".create" and existing != wanted:
        raise RefusedRequest(f"table {table!r} already exists with the schema {existing}, not {wanted}")
    else:
        _merge_columns(eh, table, dict(existing), wanted)
    props = _properties(m.group("props"))
    if props:
        eh.save("table", table, json.dumps({k: props[k] for k in ("folder", "docstring") if k in props}))
    return _result(_SCHEMA_COLUMNS, [_schema_row(eh, table, as_json=True)])


def _merge_columns(eh: EventhouseServer, table: str, have: dict[str, str], wanted: list[tuple[str, str]]) -> None:
    clashes = [c for c, t in wanted if c in have and have[c] != t]
    if clashes:
        raise RefusedRequest(f"table {table!r}: column(s) {clashes} exist with another type; a merge only adds columns")
    added = [(c, t) for c, t in wanted if c not in have]
    for column, kind in added:
        eh.sql(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(column)} {_DUCKDB_TYPES[kind]}")
    for view in eh.views.values() if added else ():  # a DuckDB view keeps the columns it was made with
        if view.table == table:
            eh.sql(view.sql())


def _drop_table(eh: EventhouseServer, m: re.Match[str]) -> Result:
    table = _name(m.group("name"))
    if eh.columns(table) is None:
        if m.group("ifexists"):
            return _result((("TableName", "string"), ("DatabaseName", "string")), [])
        raise RefusedRequest(f"table {table!r} does not exist", code="BadRequest_EntityNotFound")
    dependents = sorted(v.name for v in eh.views.values() if v.table == table)
    if dependents:
        raise RefusedRequest(f"table {table!r} is the source of materialized view(s) {dependents}; drop them first")
    eh.sql(f"DROP TABLE {_q(table)}")
    for key in [k for k in eh.mappings if k[0] == table]:
        del eh.mappings[key]
        eh.save("mapping", json.dumps(list(key)), None)
    eh.save("table", table, None)
    eh.forget_policies("table", table)
    return _result((("TableName", "string"), ("DatabaseName", "string")), [[table, eh.kusto_database]])


def _clear_table(eh: EventhouseServer, m: re.Match[str]) -> Result:
    table = _name(m.group("name"))
    eh.require_table(table)
    eh.sql(f"DELETE FROM {_q(table)}")
    return _result((("Status", "string"),), [["Succeeded"]])


_MAPPING_COLUMNS: Final = (("Name", "string"), ("Kind", "string"), ("Mapping", "string"),
                           ("LastUpdatedOn", "datetime"), ("Database", "string"), ("Table", "string"))


def _mapping_rows(eh: EventhouseServer, table: str, kind: str | None) -> list[list[Any]]:
    recorded = eh.recorded("mapping")
    rows = []
    for key, text in recorded.items():
        t, k, name = json.loads(key)
        if t == table and kind in (None, k):
            rows.append([name, k.capitalize(), text, None, eh.kusto_database, t])
    return rows


def _create_mapping(eh: EventhouseServer, m: re.Match[str]) -> Result:
    verb, table, kind = m.group("verb").lower(), _name(m.group("table")), m.group("kind").lower()
    name = _string_literals(m.group("mname")) if m.group("mname")[:1] in "'\"" else m.group("mname")
    if kind not in ("json", "parquet"):
        raise RefusedRequest(f"ingestion mapping kind {kind!r} is not supported here; json and parquet are")
    columns = dict(eh.require_table(table))
    text = _string_literals(m.group("body"))
    mapping = _parse_mapping(text)
    missing = [c.column for c in mapping if c.column not in columns]
    if missing:
        raise RefusedRequest(f"ingestion mapping {name!r} names columns {missing} that table {table!r} does not have")
    key = (table, kind, name)
    if verb == ".create" and key in eh.mappings and eh.mappings[key] != mapping:
        raise RefusedRequest(f"ingestion mapping {name!r} already exists for table {table!r} with another definition")
    if verb == ".alter" and key not in eh.mappings:
        raise RefusedRequest(f"ingestion mapping {name!r} does not exist for table {table!r}")
    eh.mappings[key] = mapping
    eh.save("mapping", json.dumps(list(key)), json.dumps(json.loads(text), separators=(",", ":")))
    return _result(_MAPPING_COLUMNS, [r for r in _mapping_rows(eh, table, kind) if r[0] == name])


def _show_mappings(eh: EventhouseServer, m: re.Match[str]) -> Result:
    table = _name(m.group("table"))
    eh.require_table(table)
    return _result(_MAPPING_COLUMNS, _mapping_rows(eh, table, m.group("kind").lower()))


_FUNCTION_COLUMNS: Final = (("Name", "string"), ("Parameters", "string"), ("Body", "string"),
                            ("Folder", "string"), ("DocString", "string"))


def _create_function(eh: EventhouseServer, m: re.Match[str]) -> Result:
    verb, text = m.group("verb").lower(), m.group(0)
    existing, name = eh.stored_functions(), _parse_function(text).name
    if name in existing and (m.group("ifnot") or (verb == ".create" and existing[name].command == text.strip())):
        function = existing[name]
    elif name in existing and verb == ".create":
        raise RefusedRequest(f"function {name!r} already exists with another definition; use .create-or-alter")
    elif name not in existing and verb == ".alter":
        raise RefusedRequest(f"function {name!r} does not exist", code="BadRequest_EntityNotFound")
    else:
        function = eh.register_function(text)
        eh.save("function", name, text.strip())
    return _result(_FUNCTION_COLUMNS, [[function.name, function.parameters, function.body, function.folder,
                                        function.docstring]])


def _drop_function(eh: EventhouseServer, m: re.Match[str]) -> Result:
    name = _name(m.group("name"))
    if name not in eh.stored_functions() and not m.group("ifexists"):
        raise RefusedRequest(f"function {name!r} does not exist", code="BadRequest_EntityNotFound")
    eh.drop_function(name)
    eh.save("function", name, None)
    return _result((("Name", "string"),), [[name]])


def _view_row(eh: EventhouseServer, view: _DedupView) -> list[Any]:
    props = _properties(view.props)
    return [view.name, view.table, view.query, None, None, "Completed", True, True, "Enabled",
            props.get("folder", ""), props.get("docstring", ""), False, None, None, None, None]


_VIEW_SCHEMA: Final = SCHEMA[".show materialized-views"]


def _view_result(rows: list[list[Any]]) -> Result:
    kinds = {"String": "string", "DateTime": "datetime", "Boolean": "bool", "TimeSpan": "timespan"}
    return Result([RestColumn(c.name, kinds[c.data_type], c.data_type, c.column_type) for c in _VIEW_SCHEMA], rows)


def _create_view(eh: EventhouseServer, m: re.Match[str]) -> Result:
    verb, name, table = m.group("verb").lower(), _name(m.group("name")), _name(m.group("table"))
    columns = dict(eh.require_table(table))
    view = _parse_view(name, table, m.group("query"), m.group("props") or "")
    unknown = [c for c in (*view.keys, *([view.by] if view.by else [])) if c not in columns]
    if unknown:
        raise RefusedRequest(f"materialized view {name}: table {table!r} has no column(s) {unknown}")
    if eh.columns(name) is not None:
        raise RefusedRequest(f"materialized view {name}: a table of that name exists")
    old = eh.views.get(name)
    if old is not None and (m.group("ifnot") or old == view):
        return _view_result([_view_row(eh, old)])
    if old is not None and verb == ".create":
        raise RefusedRequest(f"materialized view {name!r} already exists with another definition; use .create-or-alter")
    eh.sql(view.sql())
    eh.views[name] = view
    eh.save("view", name, json.dumps({"table": table, "query": view.query, "props": view.props}))
    return _view_result([_view_row(eh, view)])


def _drop_view(eh: EventhouseServer, m: re.Match[str]) -> Result:
    name = _name(m.group("name"))
    if name not in eh.views:
        if m.group("ifexists"):
            return _view_result([])
        raise RefusedRequest(f"materialized view {name!r} does not exist", code="BadRequest_EntityNotFound")
    eh.sql(f"DROP VIEW IF EXISTS {_q(name)}")
    row = _view_row(eh, eh.views.pop(name))
    eh.save("view", name, None)
    return _view_result([row])


def _show_views(eh: EventhouseServer, m: re.Match[str]) -> Result:
    wanted = _name(m.group("name")) if m.group("name") else None
    if wanted is not None and wanted not in eh.views:
        raise RefusedRequest(f"materialized view {wanted!r} does not exist", code="BadRequest_EntityNotFound")
    return _view_result([_view_row(eh, v) for n, v in sorted(eh.views.items()) if wanted in (None, n)])


def _show_tables(eh: EventhouseServer, m: re.Match[str]) -> Result:
    names = [str(r[0]) for r in eh.sql("SELECT table_name FROM information_schema.tables WHERE table_catalog = "
                                       "current_database() AND table_schema = 'main' AND table_type = 'BASE TABLE' "
                                       "ORDER BY table_name")]
    rows = []
    for table in names:
        props = _table_props(eh, table)
        rows.append([table, eh.kusto_database, props.get("folder", ""), props.get("docstring", "")])
    return _result((("TableName", "string"), ("DatabaseName", "string"), ("Folder", "string"),
                    ("DocString", "string")), rows)


def _show_schema(eh: EventhouseServer, m: re.Match[str]) -> Result:
    as_json = m.group("form").lower().replace(" ", "") != "cslschema"
    return _result(_SCHEMA_COLUMNS, [_schema_row(eh, _name(m.group("name")), as_json)])


_POLICY_COLUMNS: Final = (("PolicyName", "string"), ("EntityName", "string"), ("Policy", "string"),
                          ("ChildEntities", "string"), ("EntityType", "string"))


def _entity(eh: EventhouseServer, kind: str, name: str) -> None:
    if kind == "table":
        eh.require_table(name)
    elif kind == "materialized-view" and name not in eh.views:
        raise RefusedRequest(f"materialized view {name!r} does not exist", code="BadRequest_EntityNotFound")
    elif kind == "database" and name != eh.kusto_database:
        raise RefusedRequest(f"database {name!r} does not exist", code="BadRequest_EntityNotFound")


def _policy_row(eh: EventhouseServer, kind: str, name: str, policy: str) -> list[Any]:
    text = eh.recorded("policy").get(json.dumps([kind, name, policy]))
    return [f"{policy.capitalize()}Policy", f"[{eh.kusto_database}].[{name}]", text, None, kind.capitalize()]


def _alter_policy(eh: EventhouseServer, m: re.Match[str]) -> Result:
    kind, name, policy = m.group("entity").lower(), _name(m.group("name")), m.group("policy").lower()
    _entity(eh, kind, name)
    eh.save("policy", json.dumps([kind, name, policy]), " ".join(m.group("rest").split()))
    return _result(_POLICY_COLUMNS, [_policy_row(eh, kind, name, policy)])


def _show_policy(eh: EventhouseServer, m: re.Match[str]) -> Result:
    kind, name, policy = m.group("entity").lower(), _name(m.group("name")), m.group("policy").lower()
    _entity(eh, kind, name)
    return _result(_POLICY_COLUMNS, [_policy_row(eh, kind, name, policy)])


_KNOWN_COMMANDS: Final = (
    ".create[-merge] table", ".alter-merge table", ".drop table", ".clear table T data",
    ".create[-or-alter] table T ingestion json|parquet mapping", ".show table T ingestion json mappings",
    ".create[-or-alter] function", ".drop function", ".create[-or-alter] materialized-view",
    ".drop materialized-view", ".alter[-merge] table|database|materialized-view X policy P", ".show ... policy P",
    ".show tables", ".show table T schema as json|cslschema", ".show materialized-views", ".show functions",
    ".show function F", ".show version", ".show databases", ".show databases entities",
    ".set/.append/.set-or-append/.set-or-replace")

_Action = Callable[[EventhouseServer, re.Match[str]], Result]


def _command(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


_COMMANDS: Final[tuple[tuple[re.Pattern[str], _Action], ...]] = (
    (_command(rf"(?P<verb>\.create-merge|\.create|\.alter-merge)\s+table\s+(?P<name>{_IDENT})\s*"
              rf"\((?P<cols>[^)]*)\){_PROPS}"), _create_table),
    (_command(rf"\.drop\s+table\s+(?P<name>{_IDENT})(?:\s+(?P<ifexists>ifexists))?"), _drop_table),
    (_command(rf"\.clear\s+table\s+(?P<name>{_IDENT})\s+data"), _clear_table),
    (_command(rf"(?P<verb>\.create-or-alter|\.create|\.alter)\s+table\s+(?P<table>{_IDENT})\s+ingestion\s+"
              rf"(?P<kind>\w+)\s+mapping\s+(?P<mname>\"[^\"]*\"|'[^']*'|{_IDENT})\s+(?P<body>.+?)"
              rf"(?:\s+with\s*\([^)]*\))?"), _create_mapping),
    (_command(rf"\.show\s+table\s+(?P<table>{_IDENT})\s+ingestion\s+(?P<kind>\w+)\s+mappings?"), _show_mappings),
    (_command(r"(?P<verb>\.create-or-alter|\.create|\.alter)\s+function\s+(?P<ifnot>ifnotexists\s+)?.*"),
     _create_function),
    (_command(rf"\.drop\s+function\s+(?P<name>{_IDENT})(?:\s+(?P<ifexists>ifexists))?"), _drop_function),
    (_command(rf"(?P<verb>\.create-or-alter|\.create|\.alter)(?:\s+async)?(?:\s+(?P<ifnot>ifnotexists))?\s+"
              rf"materialized-view{_PROPS}\s+(?P<name>{_IDENT})\s+on\s+table\s+(?P<table>{_IDENT})\s*"
              r"\{(?P<query>.*)\}"), _create_view),
    (_command(rf"\.drop\s+materialized-view\s+(?P<name>{_IDENT})(?:\s+(?P<ifexists>ifexists))?"), _drop_view),
    (_command(rf"\.show\s+materialized-views?(?:\s+(?P<name>{_IDENT}))?"), _show_views),
    (_command(r"\.show\s+tables"), _show_tables),
    (_command(rf"\.show\s+table\s+(?P<name>{_IDENT})\s+(?P<form>schema\s+as\s+json|cslschema)"), _show_schema),
    (_command(rf"\.(?:alter|alter-merge)\s+(?P<entity>table|database|materialized-view)\s+(?P<name>{_IDENT})\s+"
              r"policy\s+(?P<policy>\w+)(?P<rest>.*)"), _alter_policy),
    (_command(rf"\.show\s+(?P<entity>table|database|materialized-view)\s+(?P<name>{_IDENT})\s+policy\s+"
              r"(?P<policy>\w+)"), _show_policy),
)


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class _EventhouseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "spymaster-local-eventhouse"

    @property
    def eh(self) -> EventhouseServer:
        return cast(EventhouseServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.eh.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _local(self) -> bool:
        if self.client_address[0] in ("127.0.0.1", "::1"):
            return True
        self._send(403, RefusedRequest("local connections only", status=403).payload())
        return False

    def _body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's interface
        with self.eh.in_flight():
            self._get()

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's interface
        with self.eh.in_flight():
            self._post()

    def _get(self) -> None:
        if not self._local():
            return
        route = urlsplit(self.path).path.rstrip("/")
        if route == "/v1/rest/auth/metadata":
            self._send(200, _AUTH_METADATA)
        elif route == "/spymaster/stats":
            self._send(200, self.eh.stats())
        elif route == "/spymaster/acks":
            table = parse_qs(urlsplit(self.path).query).get("table", [""])[-1]
            if self.eh.acks is None:
                self._send(404, RefusedRequest("the acknowledgement journal is off (start with --journal)",
                                               status=404).payload())
            else:
                self._send(200, self.eh.acks.rows(table))
        elif route == "":
            self._send(200, {"name": "spymaster local eventhouse", "database": self.eh.kusto_database,
                             "endpoints": ["/v1/rest/ingest/{db}/{table}", "/v1/rest/mgmt", "/v2/rest/query",
                                           "/v1/rest/query", "/spymaster/stats", "/spymaster/faults",
                                           "/spymaster/acks?table=T"]})
        else:
            self._send(404, RefusedRequest(f"no route for GET {self.path}", status=404).payload())

    def _post(self) -> None:
        if not self._local():
            return
        parts = urlsplit(self.path)
        route = parts.path.rstrip("/")
        body = self._body()
        try:
            if route.startswith("/v1/rest/ingest/"):
                self._ingest(route, parts.query, body)
            elif route in ("/v1/rest/mgmt", "/v2/rest/mgmt", "/v1/rest/query", "/v2/rest/query"):
                request_id = self.headers.get("x-ms-client-request-id", str(uuid.uuid4()))
                self._send(200, self.eh.execute(route, body, request_id))
            elif route == "/spymaster/faults":
                self._faults(body)
            else:
                raise RefusedRequest(f"no route for POST {self.path}", status=404)
        except RefusedRequest as exc:
            self._send(exc.status, exc.payload())
        except (KqlError, duckdb.Error, ValueError) as exc:
            self._send(400, RefusedRequest(str(exc)).payload())
        except Exception as exc:  # a bug here: answer it, permanent, rather than drop the connection
            self._send(500, RefusedRequest(f"the local Eventhouse failed: {exc!r}", status=500).payload())

    def _ingest(self, route: str, query: str, body: bytes) -> None:
        fault = self.eh.fault_state.draw()
        if fault in ("429", "500"):
            status = int(cast(str, fault))
            message = "throttled (injected fault)" if status == 429 else "internal error (injected fault)"
            code = "General_ThrottledRequest" if status == 429 else "General_InternalServerError"
            self._send(status, RefusedRequest(message, status=status, code=code, permanent=False).payload())
            return
        if fault is not None:
            if fault == "timeout":
                self.eh.stopping.wait(self.eh.fault_state.settings.timeout_s)
            self._drop_connection()
            return
        parts = [unquote(p) for p in route.removeprefix("/v1/rest/ingest/").split("/")]
        params = {k.lower(): v[-1] for k, v in parse_qs(query).items()}
        try:
            if len(parts) != 2:
                raise RefusedRequest(f"expected /v1/rest/ingest/{{database}}/{{table}}, got {route}", status=404)
            result = self.eh.ingest(parts[0], parts[1], params.get("streamformat", "multijson"),
                                    params.get("mappingname"), body)
        except RefusedRequest:
            self.eh.fault_state.count("ingest_rejected")
            raise
        except (duckdb.Error, OSError, EOFError, ValueError) as exc:
            self.eh.fault_state.count("ingest_rejected")
            raise RefusedRequest(f"ingestion into {parts[-1]!r} failed: {exc}") from None
        self.eh.fault_state.count("ingest_ok")
        self._send(200, v1_response(result))

    def _drop_connection(self) -> None:
        """Close without a reply: linger 0 makes the close a reset."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _faults(self, body: bytes) -> None:
        try:
            changes = json.loads(body or b"{}")
            settings = self.eh.fault_state.settings.updated(changes if isinstance(changes, dict) else {})
        except (ValueError, TypeError, ConfigError) as exc:
            raise RefusedRequest(f"bad fault settings: {exc}") from None
        self.eh.fault_state.change(settings)
        self._send(200, settings.to_json())


# ---------------------------------------------------------------------------------------------
# Running it: in-process, as a process, or in the foreground for the CLI
# ---------------------------------------------------------------------------------------------


class LocalEventhouse:
    """The Eventhouse in a background thread of this process.

    ``with LocalEventhouse() as eh: KustoClient(KustoConnectionStringBuilder.with_no_authentication(eh.url))``
    """

    def __init__(self, *, db_path: str | Path = ":memory:", database: str = DEFAULT_DATABASE, port: int = 0,
                 faults: FaultSettings | None = None, quiet: bool = True, journal: bool = False) -> None:
        self._server = EventhouseServer(port=port, db_path=db_path, database=database, faults=faults, quiet=quiet,
                                        journal=journal)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-eventhouse", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def database(self) -> str:
        return self._server.kusto_database

    def query(self, kql: str) -> list[dict[str, Any]]:
        """Rows of a KQL query run on the DuckDB connection: dynamic parsed, datetimes in UTC."""
        result = self._server.query(kql)
        return [{c.name: _python(v, c.kql) for c, v in zip(result.columns, row, strict=True)} for row in result.rows]

    def command(self, text: str) -> list[dict[str, Any]]:
        """One management command, as ``/v1/rest/mgmt`` would run it."""
        result = self._server.command(text)
        return [{c.name: _python(v, c.kql) for c, v in zip(result.columns, row, strict=True)} for row in result.rows]

    def apply_script(self, text: str) -> int:
        return self._server.apply_script(text)

    def stats(self) -> dict[str, Any]:
        return self._server.stats()

    def set_faults(self, settings: FaultSettings) -> None:
        self._server.fault_state.change(settings)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.stopping.set()
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server.drain(timeout_s=30)
            self._server.close()

    def __enter__(self) -> LocalEventhouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _python(value: Any, kind: str) -> Any:
    if kind == "dynamic" and isinstance(value, str):
        return json.loads(value)
    if kind == "datetime" and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@dataclass(frozen=True, slots=True)
class EventhouseProcess:
    url: str
    pid: int
    database: str


def _arguments(db_path: str | Path, database: str, port: int, faults: FaultSettings | None,
               schema: Path | None, journal: bool) -> list[str]:
    args = ["--port", str(port), "--db", str(db_path), "--database", database, *(["--journal"] if journal else [])]
    if faults is not None:
        args += ["--fail-share", str(faults.fail_share), "--fault-kinds", ",".join(faults.kinds),
                 "--fault-seed", str(faults.seed), "--fault-timeout", str(faults.timeout_s)]
    return args + (["--schema", str(schema)] if schema is not None else [])


@contextmanager
def start_local_eventhouse(*, log_path: Path, db_path: str | Path = ":memory:", database: str = DEFAULT_DATABASE,
                           port: int = 0, faults: FaultSettings | None = None, schema: Path | None = None,
                           timeout_s: float = 30.0, journal: bool = False) -> Iterator[EventhouseProcess]:
    """``python -m flows.services.eventhouse`` in a session of its own; stopped by PID on exit."""
    cmd = [sys.executable, "-m", "flows.services.eventhouse",
           *_arguments(db_path, database, port, faults, schema, journal)]
    with announcing_process(cmd, log_path, "the local Eventhouse", timeout_s=timeout_s) as (pid, url):
        yield EventhouseProcess(url, pid, database)


_SERVE_NOTES: Final = """\
  local Eventhouse: database {database!r} in {db_path}; no authentication, loopback only
  connect: KustoConnectionStringBuilder.with_no_authentication("{url}"); streaming ingestion uses the same URL
  not here: queued ingestion (.get ingestion resources fails), make-series and series_* functions,
  real materialized views (dedup views instead), ingestion_time(), policies beyond recording them
  Ctrl-C to stop"""


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, db_path: str | Path = ":memory:",
          database: str = DEFAULT_DATABASE, *, faults: FaultSettings | None = None, schema: Path | None = None,
          quiet: bool = False, journal: bool = False) -> None:
    """Run in the foreground until Ctrl-C or SIGTERM. The first line printed is the URL."""
    server = EventhouseServer(host=host, port=port, db_path=db_path, database=database, faults=faults, quiet=quiet,
                              journal=journal)
    try:
        if schema is not None:
            server.apply_script(schema.read_text())
        print(server.url, flush=True)
        print(_SERVE_NOTES.format(database=database, db_path=db_path, url=server.url), flush=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.services.eventhouse", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--db", default=":memory:", help="DuckDB file, or :memory:")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--schema", type=Path, help="a .kql script of management commands to apply first")
    parser.add_argument("--fail-share", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default="429,500")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--fault-timeout", type=float, default=60.0)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--journal", action="store_true",
                        help="record when each row was acknowledged (GET /spymaster/acks?table=T), for benches")
    args = parser.parse_args(argv)
    kinds = tuple(cast(FaultKind, k.strip()) for k in args.fault_kinds.split(",") if k.strip())
    faults = FaultSettings(fail_share=args.fail_share, kinds=kinds, seed=args.fault_seed, timeout_s=args.fault_timeout)
    serve(args.host, args.port, args.db, args.database, faults=faults, schema=args.schema, quiet=args.quiet,
          journal=args.journal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
