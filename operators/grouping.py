"""Group a chunk's rows by a small set of keys (instruments, sessions) in one linear pass.

A chunk holds a handful of distinct instruments and session dates, so a sort (``np.unique``,
``argsort``) is far more work than needed; this finds the distinct keys in first-seen order and
gives every row its group code.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _codes(keys: np.ndarray, distinct: np.ndarray, codes: np.ndarray) -> int:
    n_distinct = 0
    last_key = keys[0]
    last_code = -1
    for i in range(keys.shape[0]):
        k = keys[i]
        if last_code >= 0 and k == last_key:
            codes[i] = last_code
            continue
        code = -1
        for j in range(n_distinct):
            if distinct[j] == k:
                code = j
                break
        if code < 0:
            if n_distinct == distinct.shape[0]:
                return -1  # more distinct keys than expected: the caller falls back to a sort
            distinct[n_distinct] = k
            code = n_distinct
            n_distinct += 1
        codes[i] = code
        last_key, last_code = k, code
    return n_distinct


def group_codes(keys: np.ndarray, max_groups: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted ascending) and each row's index into them."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if keys.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    distinct = np.empty(max_groups, np.int64)
    codes = np.empty(keys.size, np.int32)
    n = _codes(keys, distinct, codes)
    if n < 0:
        uniq, inverse = np.unique(keys, return_inverse=True)
        return uniq, inverse.astype(np.int32)
    found = distinct[:n]
    order = np.argsort(found)
    rank = np.empty(n, np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    return found[order], rank[codes]


def group_rows(keys: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """``(key, rows)`` per distinct key, ascending; rows keep their order (a slice if all rows)."""
    uniq, codes = group_codes(keys)
    if uniq.size == 1:
        return [(int(uniq[0]), slice(None))]
    if uniq.size <= 8:  # a few books a chunk: one pass per key beats a sort
        return [(int(k), np.flatnonzero(codes == c)) for c, k in enumerate(uniq)]
    order = np.argsort(codes, kind="stable")  # an option chain: hundreds of keys in one chunk
    bounds = np.searchsorted(codes[order], np.arange(1, uniq.size))
    return [(int(k), rows) for k, rows in zip(uniq, np.split(order, bounds), strict=True)]


def take_records(records: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """``records[rows]`` for a structured array, as a plain gather of fixed-size rows.

    numpy's fancy indexing on structured dtypes copies field by field; gathering the rows as
    opaque 8-byte words is several times faster and gives the same bytes.
    """
    if isinstance(rows, slice):
        return records[rows]
    itemsize = records.dtype.itemsize
    if itemsize % 8 or not records.flags.c_contiguous:
        return records[rows]
    words = records.view(np.uint64).reshape(len(records), itemsize // 8)
    return np.take(words, rows, axis=0).view(records.dtype).reshape(len(rows))


def among(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``np.isin(values, members)`` for a sorted, duplicate-free ``members`` (a chunk's option ids),
    three times per chunk of a day with a chain: a binary search per run of equal values (a
    futures chunk holds a few instruments in long runs), not a sort of both arrays (``np.isin``)."""
    out = np.zeros(values.shape[0], np.bool_)
    if members.size and values.size:
        _among(np.ascontiguousarray(values), np.ascontiguousarray(members, np.int64), out)
    return out


@numba.njit(cache=True, nogil=True)
def _among(values: np.ndarray, members: np.ndarray, out: np.ndarray) -> None:
    last = np.int64(values[0])
    k = np.searchsorted(members, last)
    hit = k < members.shape[0] and members[k] == last
    for i in range(values.shape[0]):
        v = np.int64(values[i])
        if v != last:
            k = np.searchsorted(members, v)
            last, hit = v, k < members.shape[0] and members[k] == v
        out[i] = hit
