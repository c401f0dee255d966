"""The ``mbo_raw`` message format: what a Kafka message carries and how it is read back.

A message carries records of ONE instrument (its key is the instrument id in ASCII, so a contract
stays on one partition), at most ``MAX_MESSAGE_BYTES`` of them. The value is one of:

- **DBN records** (the default, written by ``spymaster publish`` and ``spymaster ingest``): raw
  DBN v3 records concatenated, with no metadata header. Every record starts with its length
  (in 4-byte words) and ``rtype``, so the value is self-delimiting; definitions (rtype 0x13),
  statistics (0x18) and MBO (0xA0) travel on the same topic. Kafka headers name the format
  (``spymaster-format: dbn``), the DBN version of the records (``dbn-version``, 1-3; v1/v2
  definitions and statistics are upgraded with ``databento_dbn``), the dataset and the wall-clock
  publish time in ns (``published-ns``, for latency measurements).
- **A whole DBN stream** (value starts with ``DBN``): its metadata header names version and
  dataset, the records follow. For producers that dump DBN fragments as they come.
- **The JSON Bronze envelope** (value starts with ``{``): one JSON object, or JSON lines, with
  the ``bronze.mbo`` columns (``ts_event, ts_recv, instrument_id, action, side, price, size,
  order_id`` required; ``publisher_id, flags, sequence, channel_id, ts_in_delta, dataset``
  optional). Each object becomes one MBO record.

Decoding never raises on bad data: a message decodes to *pieces* in message order, runs of good
records (:class:`Records`) and :class:`Undecodable` spans (garbage, a truncated record, an unknown
rtype, a JSON line with a missing field), each at its index within the message, so the source
can turn them into chunks and dead letters with exact positions.
"""

from __future__ import annotations

import functools
import json
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import databento_dbn as dbn
import numpy as np

from connectors.dbn.reader import record_dtype, upgrade_to_v3
from operators.chunks import Schema
from operators.records import MBO_DTYPE, RTYPE_CMBP_1, RTYPE_DEFINITION, RTYPE_MBO, RTYPE_STATISTICS, UNDEF_PRICE

MAX_MESSAGE_BYTES: Final = 1_000_000
"""Event Hubs (Standard and up) refuses requests above 1,046,528 bytes; stay below with headers."""
FORMAT_HEADER: Final = "spymaster-format"
VERSION_HEADER: Final = "dbn-version"
DATASET_HEADER: Final = "dataset"
PUBLISHED_HEADER: Final = "published-ns"
"""Wall-clock time (ns since the epoch) at which the producer handed the message over."""

SCHEMA_OF_RTYPE: Final[dict[int, Schema]] = {
    RTYPE_MBO: "mbo",
    RTYPE_DEFINITION: "definition",
    RTYPE_STATISTICS: "statistics",
    RTYPE_CMBP_1: "cmbp-1",
}
_dtype = functools.lru_cache(maxsize=None)(record_dtype)

JSON_REQUIRED: Final = ("ts_event", "ts_recv", "instrument_id", "action", "side", "price", "size", "order_id")
JSON_OPTIONAL: Final = {"publisher_id": 0, "flags": 0, "sequence": 0, "channel_id": 0, "ts_in_delta": 0}


@dataclass(frozen=True, slots=True)
class Records:
    """A run of consecutive good records of one schema, in DBN v3 numpy layout."""

    index: int
    """Index of ``records[0]`` among the message's records (and undecodable spans)."""
    schema: Schema
    dataset: str
    records: np.ndarray


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Bytes that are not a usable record; ``raw`` holds every one of them (a message is small:
    the broker caps it), so each byte of a message is in a record or in a dead letter."""

    index: int
    reason: str
    detail: str
    raw: bytes


Piece = Records | Undecodable


Headers = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None]
"""Message headers as confluent_kafka types them: name/value pairs (what a consumer receives, and
what the AMQP path hands over) or a mapping (accepted on produce)."""


def _header(headers: Headers | None, name: str) -> str | None:
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for key, value in pairs:
        if key == name and value is not None:
            return value if isinstance(value, str) else value.decode("utf-8", errors="replace")
    return None


def encode_headers(version: int, dataset: str, published_ns: int | None = None) -> list[tuple[str, bytes]]:
    """The Kafka headers of a DBN-records message; ``published_ns`` defaults to now."""
    stamp = time.time_ns() if published_ns is None else published_ns
    return [(FORMAT_HEADER, b"dbn"), (VERSION_HEADER, str(version).encode()),
            (DATASET_HEADER, dataset.encode()), (PUBLISHED_HEADER, str(stamp).encode())]


def published_ns(headers: Headers | None) -> int | None:
    """The producer's publish time from a message's headers, if it recorded one."""
    text = _header(headers, PUBLISHED_HEADER)
    return int(text) if text and text.isdigit() else None


def encode_records(records: np.ndarray) -> bytes:
    """Records (one structured array in Databento's v3 layout) as message bytes."""
    return np.ascontiguousarray(records).tobytes()


def decode_message(value: bytes | None, headers: Headers | None = None) -> list[Piece]:
    """A message value → its pieces in order. Never raises on bad input."""
    if not value:
        return [Undecodable(0, "empty_message", "the message has no value", b"")]
    head = value[:64].lstrip()
    fmt = _header(headers, FORMAT_HEADER)
    if fmt == "json" or (head[:1] in (b"{", b"[") and value[1] not in SCHEMA_OF_RTYPE):
        # ``{``/``[`` would be a record of 123/91 words; JSON's next byte is never one of our rtypes
        return _decode_json(value, _header(headers, DATASET_HEADER) or "")
    if value[:3] == b"DBN":
        return _decode_stream(value)
    version_text = _header(headers, VERSION_HEADER) or str(dbn.DBN_VERSION)
    if not version_text.isdigit() or int(version_text) not in (1, 2, 3):
        return [Undecodable(0, "bad_dbn_version", f"header {VERSION_HEADER}={version_text!r} is not 1, 2 or 3",
                            value)]
    return _decode_records(value, int(version_text), _header(headers, DATASET_HEADER) or "")


def _decode_stream(value: bytes) -> list[Piece]:
    if len(value) < 8:
        return [Undecodable(0, "bad_header", "the DBN header is cut short", value)]
    (length,) = struct.unpack_from("<I", value, 4)
    try:
        meta = dbn.Metadata.decode(value[: 8 + length],
                                   # databento_dbn's stub declares the policy's members as `int`
                                   upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the decoder's message goes into the dead letter
        return [Undecodable(0, "bad_header", f"DBN metadata does not decode: {exc}", value)]
    if meta.version not in (1, 2, 3):
        return [Undecodable(0, "bad_dbn_version", f"unsupported DBN version {meta.version}", value)]
    return _decode_records(value[8 + length :], meta.version, meta.dataset or "")


def _decode_records(value: bytes, version: int, dataset: str) -> list[Piece]:
    """Walk runs of same-rtype records: each run is one vectorised ``frombuffer``."""
    out: list[Piece] = []
    pos, index = 0, 0
    run_size: int | None = None  # record size of the run before, to step over one damaged record
    while pos < len(value):
        rest = len(value) - pos
        if rest < 2:
            out.append(Undecodable(index, "truncated_record", f"{rest} byte(s) left, not a record header",
                                   value[pos:]))
            break
        words, rtype = value[pos], value[pos + 1]
        schema = SCHEMA_OF_RTYPE.get(rtype)
        dtype = None if schema is None else _dtype(schema, version)
        if schema is None or dtype is None or words * 4 != dtype.itemsize:
            bad = (("unknown_rtype", f"rtype 0x{rtype:02x} at byte {pos} is not MBO, definition or statistics")
                   if schema is None or dtype is None else
                   ("bad_length", f"{schema} record at byte {pos} says {words * 4} bytes; "
                                  f"DBN v{version} has {dtype.itemsize}"))
            step = _resync(value, pos, run_size, version)
            if step is None:  # nothing after it can be trusted to be aligned: the rest is one dead letter
                out.append(Undecodable(index, *bad, value[pos:]))
                break
            # one damaged record inside a run of fixed-size records: dead-letter exactly it, go on
            out.append(Undecodable(index, *bad, value[pos : pos + step]))
            pos += step
            index += 1
            continue
        size = dtype.itemsize
        whole = rest // size
        if whole == 0:
            out.append(Undecodable(index, "truncated_record",
                                   f"the message ends {rest} bytes into a {size}-byte {schema} record",
                                   value[pos:]))
            break
        run = np.frombuffer(value, dtype=dtype, count=whole, offset=pos)
        same = (run["rtype"] == rtype) & (run["length"] == words)
        n = whole if same.all() else int(np.argmin(same))
        records = run[:n]
        if version != dbn.DBN_VERSION:
            records = upgrade_to_v3(records, schema, version, False)
        out.append(Records(index, schema, dataset, records))
        pos += n * size
        index += n
        run_size = size
    return out


RESYNC_RECORDS = 64
"""How many damaged records in a row a run may hold before the rest of the message is one dead letter."""


def _resync(value: bytes, pos: int, run_size: int | None, version: int) -> int | None:
    """How far to step over a damaged record at ``pos``: the size of the run it interrupts, when,
    within ``RESYNC_RECORDS`` slots of that size, the message ends or a well-formed record header
    follows; else None.

    A producer batches one instrument's records of one schema, so a record whose rtype or length
    byte is damaged still occupies its run's fixed size; the file reader treats it the same way,
    one dead letter per damaged slot, however many follow one another."""
    if run_size is None:
        return None
    for slot in range(1, RESYNC_RECORDS + 1):
        nxt = pos + slot * run_size
        if nxt == len(value):
            return run_size
        if nxt + 2 > len(value):
            return None
        schema = SCHEMA_OF_RTYPE.get(value[nxt + 1])
        if schema is not None and value[nxt] * 4 == _dtype(schema, version).itemsize:
            return run_size
    return None


def _decode_json(value: bytes, dataset: str) -> list[Piece]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Undecodable(0, "bad_json", f"not UTF-8: {exc}", value)]
    stripped = text.strip()
    lines: list[str]
    if stripped.startswith("["):
        try:
            objs = json.loads(stripped)
        except json.JSONDecodeError as exc:
            return [Undecodable(0, "bad_json", f"not JSON: {exc}", value)]
        lines = [json.dumps(o) for o in objs] if isinstance(objs, list) else [stripped]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
    out: list[Piece] = []
    good: list[np.ndarray] = []
    first_good, ds = 0, dataset
    for i, line in enumerate(lines):
        record, problem = _json_record(line)
        if record is None:
            if good:
                out.append(Records(first_good, "mbo", ds, np.concatenate(good)))
                good = []
            reason, detail = problem
            out.append(Undecodable(i, reason, detail, line.encode()))
            continue
        rec, rec_ds = record
        if not good:
            first_good = i
            ds = rec_ds or dataset
        good.append(rec)
    if good:
        out.append(Records(first_good, "mbo", ds, np.concatenate(good)))
    return out


def _json_record(line: str) -> tuple[tuple[np.ndarray, str] | None, tuple[str, str]]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, ("bad_json", f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return None, ("bad_json", f"a JSON {type(obj).__name__}, not an object")
    missing = [k for k in JSON_REQUIRED if k not in obj]
    if missing:
        return None, ("json_missing_field", f"the JSON envelope lacks {', '.join(missing)}")
    rec = np.zeros(1, MBO_DTYPE)
    try:
        rec["length"] = MBO_DTYPE.itemsize // 4
        rec["rtype"] = RTYPE_MBO
        for name in ("ts_event", "ts_recv", "instrument_id", "size"):
            rec[name] = _unsigned(obj[name], name)
        order = int(obj["order_id"])
        rec["order_id"] = order % (1 << 64)  # bronze stores u64 ids as their int64 view
        rec["price"] = UNDEF_PRICE if obj["price"] is None else int(obj["price"])
        for field, char in (("action", obj["action"]), ("side", obj["side"])):
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"{field} must be one character, got {char!r}")
            rec[field] = char.encode("ascii")
        for name, default in JSON_OPTIONAL.items():
            raw = obj.get(name)
            rec[name] = default if raw is None else int(raw)
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError) as exc:
        return None, ("json_bad_field", str(exc))
    return (rec, str(obj.get("dataset") or "")), ("", "")


def _unsigned(raw: Any, name: str) -> int:  # a decoded JSON value: anything
    value = int(raw)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def json_envelope(records: np.ndarray, dataset: str = "") -> bytes:
    """MBO records as JSON lines of the Bronze envelope (for producers and tests)."""
    lines = []
    for r in records:
        obj = {
            "ts_event": int(r["ts_event"]), "ts_recv": int(r["ts_recv"]), "instrument_id": int(r["instrument_id"]),
            "action": r["action"].decode(), "side": r["side"].decode(),
            "price": None if int(r["price"]) == UNDEF_PRICE else int(r["price"]),
            "size": int(r["size"]), "order_id": int(r["order_id"]), "publisher_id": int(r["publisher_id"]),
            "flags": int(r["flags"]), "sequence": int(r["sequence"]), "channel_id": int(r["channel_id"]),
            "ts_in_delta": int(r["ts_in_delta"]), "dataset": dataset,
        }
        lines.append(json.dumps(obj))
    return "\n".join(lines).encode()


def instrument_key(instrument_id: int) -> bytes:
    """The message key: the instrument id in ASCII (Kafka's partitioner hashes it)."""
    return str(int(instrument_id)).encode()


def batches(
    records: np.ndarray, *, window_ns: int, max_bytes: int = MAX_MESSAGE_BYTES
) -> Iterator[tuple[int, np.ndarray]]:
    """Split ``records`` (one schema, any instruments, in publish order) into messages.

    Event time (the running maximum of ``ts_recv``) is cut into windows of ``window_ns`` from
    the first record, as a feed handler's flush timer would; inside a window each instrument's
    records, in their order, form one batch of at most ``max_bytes``. Batches come out window by
    window, instruments in order of first appearance. Yields ``(instrument_id, records)``; every
    instrument's records keep their exact order. ``window_ns <= 0`` makes every record a batch.
    """
    n = len(records)
    if n == 0:
        return
    per_message = max(1, max_bytes // records.dtype.itemsize)
    ts = np.maximum.accumulate(records["ts_recv"].astype(np.int64))
    win = (ts - ts[0]) // window_ns if window_ns > 0 else np.arange(n, dtype=np.int64)
    ids = records["instrument_id"]
    order = np.lexsort((np.arange(n), ids, win))  # by window, instrument, then position
    sw, si = win[order], ids[order]
    starts = np.flatnonzero(np.r_[True, (sw[1:] != sw[:-1]) | (si[1:] != si[:-1])])
    ends = np.r_[starts[1:], n]
    for g in np.argsort(order[starts], kind="stable"):  # groups by their first record
        index = order[starts[g] : ends[g]]
        iid = int(ids[index[0]])
        for k in range(0, len(index), per_message):
            yield iid, records[index[k : k + per_message]]
