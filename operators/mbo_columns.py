"""MBO records (``MBO_DTYPE``) rebuilt from their fields held as separate columns, in a given order.

A columnar store (Bronze) keeps each field of a record in a column of its own, widened to a signed
type (Delta has no unsigned integers). Rebuilding the 56-byte records through numpy's structured
assignment costs a strided pass and a gather per field, most of a Bronze read. Here one pass
writes each record's seven 64-bit words, and one more gathers whole records into order.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Final

import numba
import numpy as np

from operators.records import MBO_DTYPE, RTYPE_MBO, structured_fields

MBO_WORDS: Final = MBO_DTYPE.itemsize // 8
"""An MBO record is seven little-endian 64-bit words."""

MBO_FIELDS: Final = ("publisher_id", "instrument_id", "ts_event", "order_id", "price", "size", "flags",
                     "channel_id", "action", "side", "ts_recv", "ts_in_delta", "sequence")
"""Every field of a record except ``length`` and ``rtype``, which are the same for every MBO record."""

_OFFSETS: Final = {"length": 0, "rtype": 1, "publisher_id": 2, "instrument_id": 4, "ts_event": 8, "order_id": 16,
                   "price": 24, "size": 32, "flags": 36, "channel_id": 37, "action": 38, "side": 39, "ts_recv": 40,
                   "ts_in_delta": 48, "sequence": 52}
"""The byte offsets the word layout below assumes; checked against ``MBO_DTYPE`` at import."""


def _check_layout() -> None:
    actual = {name: offset for name, (_, offset) in structured_fields(MBO_DTYPE).items()}
    if actual != _OFFSETS or MBO_WORDS * 8 != MBO_DTYPE.itemsize or sys.byteorder != "little":
        raise ImportError(f"operators.mbo_columns assumes the DBN MBO layout on a little-endian host, got {actual}")


_check_layout()


@numba.njit(cache=True, nogil=True)
def _pack(words, at, publisher_id, instrument_id, ts_event, order_id, price, size, flags, channel_id, action, side,
          ts_recv, ts_in_delta, sequence) -> None:
    head = np.uint64(MBO_WORDS * 2) | (np.uint64(RTYPE_MBO) << np.uint64(8))  # length in 4-byte words: 14
    for i in range(ts_recv.shape[0]):
        k = at + i
        words[k, 0] = (head | (np.uint64(publisher_id[i] & 0xFFFF) << np.uint64(16))
                       | (np.uint64(instrument_id[i] & 0xFFFFFFFF) << np.uint64(32)))
        words[k, 1] = ts_event[i]
        words[k, 2] = order_id[i]
        words[k, 3] = price[i]
        words[k, 4] = (np.uint64(size[i] & 0xFFFFFFFF) | (np.uint64(flags[i] & 0xFF) << np.uint64(32))
                       | (np.uint64(channel_id[i] & 0xFF) << np.uint64(40))
                       | (np.uint64(action[i] & 0xFF) << np.uint64(48)) | (np.uint64(side[i] & 0xFF) << np.uint64(56)))
        words[k, 5] = ts_recv[i]
        words[k, 6] = np.uint64(ts_in_delta[i] & 0xFFFFFFFF) | (np.uint64(sequence[i] & 0xFFFFFFFF) << np.uint64(32))


def _u64(column: np.ndarray) -> np.ndarray:
    """A 64-bit column as the unsigned words it stands for (Bronze keeps u64 as the same bits in i64)."""
    return column.view(np.uint64) if column.dtype.itemsize == 8 else column.astype(np.uint64)


def pack_columns(words: np.ndarray, at: int, columns: Mapping[str, np.ndarray]) -> None:
    """Write records ``at`` … ``at + n - 1`` of ``words`` (uint64, ``(N, MBO_WORDS)``) from ``columns``.

    ``columns`` holds every name of ``MBO_FIELDS`` as an integer array (``action`` and ``side`` as
    their ASCII codes). Each value keeps its low bits: a u32 widened to i64, or a u64 stored as the
    same 64 bits in an i64, comes back exactly.
    """
    c = columns
    _pack(words, at, c["publisher_id"], c["instrument_id"], _u64(c["ts_event"]), _u64(c["order_id"]),
          _u64(c["price"]), c["size"], c["flags"], c["channel_id"], c["action"], c["side"], _u64(c["ts_recv"]),
          c["ts_in_delta"], c["sequence"])


@numba.njit(cache=True, nogil=True)
def _gather(words, order, out) -> None:
    for i in range(order.shape[0]):
        src = order[i]
        for j in range(words.shape[1]):
            out[i, j] = words[src, j]


def records_in_order(words: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The packed records, row ``order[0]`` first, as a new ``MBO_DTYPE`` array.

    A gather into a new buffer, not a permutation in place: following the permutation's cycles
    jumps across the whole buffer (the rows come in lanes), and costs far more in cache misses
    than the gather's one sequential write.
    """
    out = np.empty((len(order), MBO_WORDS), np.uint64)
    _gather(words, order.astype(np.int64, copy=False), out)
    return out.view(MBO_DTYPE).reshape(len(order))
