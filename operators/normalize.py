"""Validate MBO chunks and split them into good records and dead letters.

Validation is vectorised over the chunk: a record is good when its layout, action, side, price
and size make sense and its instrument is known. Everything else becomes a dead letter carrying
the raw 56 bytes, the reason and the source position, so nothing is lost silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numba
import numpy as np

from operators.chunks import RecordChunk, SourceFault
from operators.grouping import take_records
from operators.instruments import definition_fault
from operators.records import (
    ACTION_ADD,
    ACTION_MODIFY,
    MBO_DTYPE,
    RTYPE_MBO,
    SIDE_ASK,
    SIDE_BID,
    SIDE_NONE,
    UNDEF_PRICE,
)

MBO_LENGTH_WORDS: Final = MBO_DTYPE.itemsize // 4
"""DBN stores a record's length in 4-byte words: 14 for MBO."""

REASONS: Final = (
    "ok",
    "unknown_rtype",
    "bad_length",
    "unknown_action",
    "bad_side",
    "undef_price",
    "zero_size",
    "unknown_instrument",
    "bad_timestamp",
)
"""Dead-letter reasons, by code. The first failing rule in this order names the reason."""

PLAUSIBLE_TS: Final = (946_684_800_000_000_000, 4_102_444_800_000_000_000)
"""``[2000-01-01, 2100-01-01)`` UTC in ns: no market record we read lies outside it. A record
that does (a damaged or garbage ``ts_recv``) would invent a session date centuries away."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One input that could not be used, with where it came from and why."""

    source_id: str
    record_offset: int
    reason: str
    detail: str
    raw: bytes
    instrument_id: int = -1
    ts_recv: int = -1


@numba.njit(cache=True, nogil=True)
def _reason_kernel(rtype, length, action, side, price, size, instrument, ts_recv, known, ts_lo, ts_hi, code) -> None:
    for i in range(rtype.shape[0]):
        a = action[i]
        c = 0
        if rtype[i] != RTYPE_MBO:
            c = 1
        elif length[i] != MBO_LENGTH_WORDS:
            c = 2
        elif not (a == 65 or a == 67 or a == 77 or a == 82 or a == 84 or a == 70 or a == 78):  # ACMRTFN
            c = 3
        elif side[i] != SIDE_BID and side[i] != SIDE_ASK and side[i] != SIDE_NONE:
            c = 4
        elif (a == ACTION_ADD or a == ACTION_MODIFY) and price[i] == UNDEF_PRICE:
            c = 5
        elif a == ACTION_ADD and size[i] == 0:
            c = 6
        else:
            k = np.searchsorted(known, instrument[i])  # known is sorted: a chain lists hundreds of options
            if k == known.shape[0] or known[k] != instrument[i]:
                c = 7
            elif ts_recv[i] < ts_lo or ts_recv[i] >= ts_hi:
                c = 8
        code[i] = c


def reason_codes(records: np.ndarray, known_instruments: np.ndarray,
                 ts_bounds: tuple[int, int] | None = None) -> np.ndarray:
    """Per-record reason code (index into ``REASONS``); 0 means the record is good.

    The first failing rule, in the order of ``REASONS``, names the reason. ``ts_recv`` must lie
    in ``ts_bounds`` (when the source knows them) and always in ``PLAUSIBLE_TS``.
    """
    lo, hi = PLAUSIBLE_TS
    if ts_bounds is not None:
        lo, hi = max(lo, ts_bounds[0]), min(hi, ts_bounds[1])
    code = np.empty(len(records), np.int8)
    _reason_kernel(records["rtype"], records["length"], records["action"].view(np.uint8),
                   records["side"].view(np.uint8), records["price"], records["size"],
                   records["instrument_id"], records["ts_recv"], np.sort(known_instruments.astype(np.uint32)),
                   np.uint64(lo), np.uint64(max(hi, lo)), code)
    return code


def valid_mask(chunk: RecordChunk) -> np.ndarray:
    """Which records of an MBO chunk validation keeps (what may name books and sessions)."""
    known = np.fromiter(chunk.instruments.keys(), np.uint32, len(chunk.instruments))
    return reason_codes(chunk.records, known, chunk.ts_bounds) == 0


@dataclass(frozen=True, slots=True)
class ValidChunk:
    """The good records of a chunk with the absolute source offset of each one."""

    chunk: RecordChunk
    records: np.ndarray
    offsets: np.ndarray  # int64, strictly increasing

    @property
    def end_record(self) -> int:
        return self.chunk.end_record


def split_valid(chunk: RecordChunk) -> tuple[ValidChunk | None, list[DeadLetter]]:
    """Split an MBO chunk into its good records and dead letters for the rest.

    Good records keep their absolute offsets, so positions stay exact for idempotent sinks;
    dead letters carry theirs. Returns ``None`` for the good part when no record survives.
    """
    known = np.fromiter(chunk.instruments.keys(), np.uint32, len(chunk.instruments))
    codes = reason_codes(chunk.records, known, chunk.ts_bounds)
    bad = np.flatnonzero(codes)
    if bad.size == 0:
        return ValidChunk(chunk, chunk.records, chunk.record_positions()), []
    positions = chunk.record_positions()
    letters = [
        DeadLetter(
            source_id=chunk.source_id,
            record_offset=int(positions[i]),
            reason=REASONS[codes[i]],
            detail=_detail(chunk.records[i], REASONS[codes[i]]),
            raw=chunk.records[i : i + 1].tobytes(),
            instrument_id=int(chunk.records["instrument_id"][i]),
            ts_recv=int(chunk.records["ts_recv"][i]) if chunk.records["ts_recv"][i] < 2**63 else -1,
        )
        for i in bad
    ]
    keep = np.flatnonzero(codes == 0)
    if keep.size == 0:
        return None, letters
    return ValidChunk(chunk, take_records(chunk.records, keep), positions[keep]), letters


def split_definitions(chunk: RecordChunk) -> tuple[RecordChunk, list[DeadLetter]]:
    """A definition chunk without the definitions that cannot be used
    (``operators.instruments.definition_fault``), and a dead letter for each of those. The chunk
    returned is for its rows only: its records keep their positions, not its end."""
    faults = [definition_fault(row) for row in chunk.records]
    if not any(faults):
        return chunk, []
    positions = chunk.record_positions()
    letters = [
        DeadLetter(chunk.source_id, int(positions[i]), fault[0], fault[1], chunk.records[i: i + 1].tobytes(),
                   int(chunk.records["instrument_id"][i]), int(chunk.records["ts_recv"][i]))
        for i, fault in enumerate(faults) if fault is not None
    ]
    keep = np.array([fault is None for fault in faults])
    return replace(chunk, records=chunk.records[keep], positions=positions[keep]), letters


def fault_letter(fault: SourceFault) -> DeadLetter:
    """A source fault (truncated file, garbage on a topic) as a dead letter."""
    return DeadLetter(fault.source_id, fault.record_offset, fault.reason, fault.detail, fault.raw)


def _detail(record: np.void, reason: str) -> str:
    match reason:
        case "unknown_rtype":
            return f"rtype {int(record['rtype']):#04x} is not MBO (0xa0)"
        case "bad_length":
            return f"length {int(record['length']) * 4} bytes, expected {MBO_DTYPE.itemsize}"
        case "unknown_action":
            return f"action {bytes(record['action'])!r}"
        case "bad_side":
            return f"side {bytes(record['side'])!r}"
        case "undef_price":
            return f"{bytes(record['action']).decode(errors='replace')} without a price"
        case "zero_size":
            return "add of size 0"
        case "unknown_instrument":
            return f"instrument_id {int(record['instrument_id'])} has no definition or symbology"
        case _:
            return f"ts_recv {int(record['ts_recv'])} is outside the time range its source covers"


@numba.njit(cache=True, nogil=True)
def _mix_rows(words: np.ndarray) -> np.ndarray:
    out = np.empty(words.shape[0], np.int64)
    for i in range(words.shape[0]):
        h = np.uint64(0x9E3779B97F4A7C15)
        for j in range(words.shape[1]):
            h ^= words[i, j]
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
        h ^= h >> np.uint64(29)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(32)
        out[i] = np.int64(h)
    return out


def dedupe_keys(records: np.ndarray) -> np.ndarray:
    """Deterministic 64-bit key per record, mixed from its 56 raw bytes (seven 64-bit words).

    It depends only on the record itself, so the same record gets the same key whether it came
    from a file or a topic, at any offset.
    """
    raw = np.ascontiguousarray(records).view(np.uint64).reshape(len(records), records.dtype.itemsize // 8)
    return _mix_rows(raw)
