"""Numba kernels of the per-instrument L3 (market-by-order) book.

All state of one book lives in ONE int64 array ``mem`` owned by the caller
(``operators.book.logic.L3Book``), so that helpers take one array and scalars. Kernels are
compiled with ``_nrt=False`` (they never allocate): with the runtime on, numba pairs an atomic
incref/decref with every array passed to a helper, ~25 ns per array per record. Layout:

- ``mem[0:N_ST]``: scalars (grid, best/worst indices, validity machine, 1-second carry), ``S_*``;
- ``mem[N_ST:N_ST + N_ANOM]``: cumulative anomaly counters, ``A_*``;
- from ``st[S_OOFF]``: the order table, an open-addressing hash table (linear probing,
  backward-shift deletion, kept at most a quarter full) keyed by ``order_id`` with
  ``st[S_OCAP]`` slots of 4 words:
  key (the u64 id's bits), price, size, meta = ``priority << 2 | side << 1 | used``;
- from ``st[S_LOFF]``: the price grid, 2 sides x ``st[S_NLEV]`` levels x (size, count), where level
  ``j`` is the price ``base + j * tick``.

Kernels never allocate. When a record needs more room (order table a quarter full, a price
outside the grid or off its tick) the driver stops *before* touching anything for that record and
returns a status; the caller re-lays ``mem`` out and calls again from the same record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
from numba import njit
from numba.core.dispatcher import Dispatcher

from operators.records import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_FILL,
    ACTION_MODIFY,
    ACTION_NONE,
    ACTION_TRADE,
    F_LAST,
    F_SNAPSHOT,
    SIDE_ASK,
    SIDE_BID,
)

_F = TypeVar("_F", bound=Callable[..., object])


def _kernel(inline: Literal["never", "always"] = "never") -> Callable[[_F], Dispatcher[_F]]:
    """``njit`` as every kernel here is compiled: cached, without the GIL (the chain step and the Delta
    committers run beside the worker meanwhile), and without the runtime (``_nrt=False``)."""
    # numba accepts its private _nrt flag (numba.core.options), but its stub's _JITOptions omits it
    return njit(cache=True, nogil=True, inline=inline, _nrt=False)  # type: ignore[call-overload]

# Statuses returned by the drivers.
OK = 0
GROW_ORDERS = 1
REGRID = 2
OUT_FULL = 3

# Indices of the scalar state.
S_TICK = 0  # grid tick in 1e-9 units; 0 = a one-level grid at ``base`` (tick not yet known)
S_BASE = 1
S_NLEV = 2
S_BBI = 3  # best bid index, -1 when the bid side is empty
S_BAI = 4  # best ask index, -1 when the ask side is empty
S_BLO = 5  # lowest occupied bid index
S_AHI = 6  # highest occupied ask index
S_NORD = 7  # live orders
S_PRIO = 8  # queue-priority counter: an order's priority is the value when it last got it
S_SYNCED = 9
S_IN_SNAP = 10
S_CLEAR_PENDING = 11
S_EVENT_START = 12  # 1 when the next record starts an event (the previous one had F_LAST)
S_NEED_PX = 13  # the price that made a driver return REGRID
S_USER_TICK = 14  # the caller's tick, for spread_ticks (falls back to the grid tick)
S_GRID = 15  # 1 once the grid has been laid out
S_OSHIFT = 16  # 64 - log2(order table capacity)
S_STARTED = 17  # 1-second rows: 1 once the book has been valid at an F_LAST
S_HAS_OPEN = 18
S_OPEN_SEC = 19
S_LT_PX = 20
S_LT_SZ = 21
S_VOL = 22
S_BUYV = 23
S_SELLV = 24
S_TRADES = 25
S_ADDS = 26
S_CANCELS = 27
S_MODS = 28
S_EVENTS = 29
S_IID = 30
S_OOFF = 31
S_OCAP = 32
S_LOFF = 33
# Per-record scratch of the 1-second driver: the resting-size change of the record just applied.
S_DQ = 34  # signed lots (+ added, - removed) by the last A/C/M record; 0 when nothing rested/left
S_DSIDE = 35  # its side, 0 bid 1 ask
S_DPX = 36  # its price (the new price for a modify)
S_IN_TRADE = 37  # 1 after an F record in the current event (its C/M remove filled size)
S_OFI_OK = 38  # 1 when the book was valid and two-sided at the previous F_LAST
S_OFI_PB = 39  # best bid price / size and best ask price / size at the previous F_LAST
S_OFI_QB = 40
S_OFI_PA = 41
S_OFI_QA = 42
# Per-second accumulators of the open second (reset by ``_reset_counts``).
S_TO = 43  # trade open / high / low / close price; S_TO == UNDEF: no trade yet
S_TH = 44
S_TL = 45
S_TC = 46
S_NOTIONAL = 47  # sum of price (1e-9 units) x size over trades: exact in int64
S_MO = 48  # bid + ask (2 x mid, 1e-9 units) at F_LAST: open / high / low; UNDEF: none yet
S_MH = 49
S_ML = 50
S_OFI = 51  # lots
S_ADD_B = 52  # lots added, bid / ask
S_ADD_A = 53
S_CAN_B = 54  # lots cancelled (not filled), bid / ask
S_CAN_A = 55
S_PULL_B = 56  # near the top: lots cancelled minus lots added, bid / ask
S_PULL_A = 57
N_ST = 64

# Anomaly counters (at ``mem[N_ST + A_*]``); names in ``ANOMALY_NAMES`` (same order).
A_CANCEL_UNKNOWN = 0
A_CANCEL_OVERSIZE = 1
A_MODIFY_UNKNOWN = 2
A_ADD_DUPLICATE = 3
A_CROSSED = 4
A_BAD_PRICE = 5
A_ZERO_SIZE = 6
A_UNKNOWN_ACTION = 7
A_BAD_SIDE = 8
A_OUT_OF_GRID = 9
N_ANOM = 10
ANOMALY_NAMES = (
    "cancel_unknown",
    "cancel_oversize",
    "modify_unknown",
    "add_duplicate",
    "crossed_book",
    "bad_price",
    "zero_size",
    "unknown_action",
    "bad_side",
    "price_out_of_grid",
)
HEADER = 128  # words before the order table (>= N_ST + N_ANOM)
NEAR_TOP_TICKS = 4
"""``near_pulled_*``: a record is near the top when its price is fewer than this many ticks behind
its side's best price after the record (at or through the best counts, as does an empty side)."""
SLOT = 4  # words per order slot

_UNDEF = np.iinfo(np.int64).max
_NS = 1_000_000_000
_F_LAST = F_LAST
_F_SNAPSHOT = F_SNAPSHOT
_ACT_A = ACTION_ADD
_ACT_C = ACTION_CANCEL
_ACT_M = ACTION_MODIFY
_ACT_R = ACTION_CLEAR
_ACT_T = ACTION_TRADE
_ACT_F = ACTION_FILL
_ACT_N = ACTION_NONE
_SIDE_B = SIDE_BID
_SIDE_A = SIDE_ASK
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def new_header(user_tick: int) -> np.ndarray:
    """The scalar state and anomaly counters of a fresh, empty, invalid book."""
    st = np.zeros(HEADER, np.int64)
    st[S_BBI] = st[S_BAI] = st[S_BLO] = st[S_AHI] = -1
    st[S_EVENT_START] = 1
    st[S_USER_TICK] = user_tick
    st[S_LT_PX] = _UNDEF
    st[S_TO] = _UNDEF
    st[S_MO] = _UNDEF
    return st


def layout(header: np.ndarray, ocap: int, nlev: int) -> np.ndarray:
    """A new, empty ``mem`` with ``header`` copied in: ``ocap`` order slots, ``nlev`` levels."""
    mem = np.zeros(HEADER + SLOT * ocap + 4 * nlev, np.int64)
    mem[:HEADER] = header[:HEADER]
    mem[S_OOFF] = HEADER
    mem[S_OCAP] = ocap
    mem[S_OSHIFT] = 64 - (ocap.bit_length() - 1)
    mem[S_LOFF] = HEADER + SLOT * ocap
    mem[S_NLEV] = nlev
    mem[S_NORD] = 0
    mem[S_BBI] = mem[S_BAI] = mem[S_BLO] = mem[S_AHI] = -1
    return mem


# ---------------------------------------------------------------------------------------- orders


@_kernel(inline="always")
def _find(mem, key):
    """Address of ``key``'s slot, or ``-address - 1`` of the empty slot where it would go."""
    mask = mem[S_OCAP] - 1
    off = mem[S_OOFF]
    i = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(mem[S_OSHIFT]))
    while True:
        a = off + i * SLOT
        if mem[a + 3] == 0:
            return -a - 1
        if mem[a] == key:
            return a
        i = (i + 1) & mask


@_kernel()
def _delete(mem, a):
    """Backward-shift deletion: keeps every probe chain unbroken without tombstones."""
    mask = mem[S_OCAP] - 1
    off = mem[S_OOFF]
    shift = np.uint64(mem[S_OSHIFT])
    i = (a - off) // SLOT
    j = i
    while True:
        j = (j + 1) & mask
        b = off + j * SLOT
        if mem[b + 3] == 0:
            break
        k = np.int64((np.uint64(mem[b]) * _GOLDEN) >> shift)
        # Leave j where it is if its home lies cyclically in (i, j].
        if i <= j:
            if i < k <= j:
                continue
        elif k <= j or k > i:
            continue
        d = off + i * SLOT
        mem[d] = mem[b]
        mem[d + 1] = mem[b + 1]
        mem[d + 2] = mem[b + 2]
        mem[d + 3] = mem[b + 3]
        i = j
    mem[off + i * SLOT + 3] = 0


@_kernel(inline="always")
def _insert(mem, key, px, sz, side, prio):
    _insert_at(mem, -_find(mem, key) - 1, key, px, sz, side, prio)


@_kernel(inline="always")
def _insert_at(mem, a, key, px, sz, side, prio):
    mem[a] = key
    mem[a + 1] = px
    mem[a + 2] = sz
    mem[a + 3] = (prio << 2) | (side << 1) | 1
    mem[S_NORD] += 1


@_kernel()
def move_orders(old, mem):
    """Insert every live order of ``old`` into the (empty) order table of ``mem``."""
    off = old[S_OOFF]
    for s in range(old[S_OCAP]):
        a = off + s * SLOT
        meta = old[a + 3]
        if meta != 0:
            _insert(mem, old[a], old[a + 1], old[a + 2], (meta >> 1) & 1, meta >> 2)


@_kernel()
def load_orders(mem, key, px, sz, side, prio):
    """Insert compacted orders (from a ``BookState``) into the empty order table of ``mem``."""
    for s in range(key.shape[0]):
        _insert(mem, np.int64(key[s]), px[s], sz[s], np.int64(side[s]), prio[s])


@_kernel()
def dump_orders(mem, key, px, sz, side, prio):
    """Copy the live orders out, compacted, in slot order. Returns how many."""
    n = 0
    off = mem[S_OOFF]
    for s in range(mem[S_OCAP]):
        a = off + s * SLOT
        meta = mem[a + 3]
        if meta != 0:
            key[n] = np.uint64(mem[a])
            px[n] = mem[a + 1]
            sz[n] = mem[a + 2]
            side[n] = (meta >> 1) & 1
            prio[n] = meta >> 2
            n += 1
    return n


# ---------------------------------------------------------------------------------------- levels


@_kernel()
def _index(mem, px, inv):
    """Grid index of ``px``, or -1 when it is not representable on the current grid.

    ``inv`` is ``1 / tick`` (computed once per driver call): a multiply instead of a division.
    """
    if mem[S_GRID] == 0:
        return -1
    tick = mem[S_TICK]
    d = px - mem[S_BASE]
    if tick == 0:
        return 0 if d == 0 else -1
    if d < 0:
        return -1
    q = d * inv
    if q >= mem[S_NLEV]:
        return -1
    i = np.int64(q + 0.5)
    if i * tick != d or i >= mem[S_NLEV]:
        return -1
    return i


@_kernel()
def _inverse(mem):
    return 1.0 / mem[S_TICK] if mem[S_TICK] > 0 else 0.0


@_kernel()
def _lvl(mem, side, j):
    return mem[S_LOFF] + (side * mem[S_NLEV] + j) * 2


@_kernel(inline="always")
def _lvl_add(mem, side, j, sz):
    a = _lvl(mem, side, j)
    mem[a] += sz
    mem[a + 1] += 1
    if side == 0:
        if mem[S_BBI] < 0:
            mem[S_BBI] = j
            mem[S_BLO] = j
        elif j > mem[S_BBI]:
            mem[S_BBI] = j
        elif j < mem[S_BLO]:
            mem[S_BLO] = j
    else:
        if mem[S_BAI] < 0:
            mem[S_BAI] = j
            mem[S_AHI] = j
        elif j < mem[S_BAI]:
            mem[S_BAI] = j
        elif j > mem[S_AHI]:
            mem[S_AHI] = j


@_kernel(inline="always")
def _lvl_sub(mem, side, j, sz, ct):
    a = _lvl(mem, side, j)
    mem[a] -= sz
    mem[a + 1] -= ct
    if mem[a + 1] != 0:
        return
    mem[a] = 0
    base = _lvl(mem, side, 0)
    if side == 0:
        if mem[S_BBI] == mem[S_BLO]:
            mem[S_BBI] = -1
            mem[S_BLO] = -1
        elif j == mem[S_BBI]:
            k = j - 1
            while mem[base + 2 * k + 1] == 0:
                k -= 1
            mem[S_BBI] = k
        elif j == mem[S_BLO]:
            k = j + 1
            while mem[base + 2 * k + 1] == 0:
                k += 1
            mem[S_BLO] = k
    else:
        if mem[S_BAI] == mem[S_AHI]:
            mem[S_BAI] = -1
            mem[S_AHI] = -1
        elif j == mem[S_BAI]:
            k = j + 1
            while mem[base + 2 * k + 1] == 0:
                k += 1
            mem[S_BAI] = k
        elif j == mem[S_AHI]:
            k = j - 1
            while mem[base + 2 * k + 1] == 0:
                k -= 1
            mem[S_AHI] = k


@_kernel()
def rebuild_levels(mem):
    """Aggregate every live order onto the (zeroed) grid described by the header."""
    inv = _inverse(mem)
    mem[S_BBI] = mem[S_BAI] = mem[S_BLO] = mem[S_AHI] = -1
    off = mem[S_OOFF]
    for s in range(mem[S_OCAP]):
        a = off + s * SLOT
        meta = mem[a + 3]
        if meta != 0:
            _lvl_add(mem, (meta >> 1) & 1, _index(mem, mem[a + 1], inv), mem[a + 2])


@_kernel()
def _clear(mem):
    off = mem[S_OOFF]
    for s in range(mem[S_OCAP]):
        mem[off + s * SLOT + 3] = 0
    if mem[S_BBI] >= 0:
        for j in range(mem[S_BLO], mem[S_BBI] + 1):
            a = _lvl(mem, 0, j)
            mem[a] = 0
            mem[a + 1] = 0
    if mem[S_BAI] >= 0:
        for j in range(mem[S_BAI], mem[S_AHI] + 1):
            a = _lvl(mem, 1, j)
            mem[a] = 0
            mem[a + 1] = 0
    mem[S_BBI] = mem[S_BAI] = mem[S_BLO] = mem[S_AHI] = -1
    mem[S_NORD] = 0


# ---------------------------------------------------------------------------------------- records


@_kernel()
def _place(mem, key, px, sz, sd, inv, dest):
    """Insert a new order at the free slot address ``dest`` (from ``_find``).

    Returns REGRID/GROW_ORDERS, before any change, when there is no room.
    """
    if sd == _SIDE_B:
        side = 0
    elif sd == _SIDE_A:
        side = 1
    else:
        mem[N_ST + A_BAD_SIDE] += 1
        return OK
    if sz == 0:
        mem[N_ST + A_ZERO_SIZE] += 1
        return OK
    j = _index(mem, px, inv)
    if j < 0:
        mem[S_NEED_PX] = px
        return REGRID
    if (mem[S_NORD] + 1) * 4 > mem[S_OCAP]:
        return GROW_ORDERS
    mem[S_PRIO] += 1
    _insert_at(mem, dest, key, px, sz, side, mem[S_PRIO])
    _lvl_add(mem, side, j, sz)
    mem[S_DQ] = sz
    mem[S_DSIDE] = side
    mem[S_DPX] = px
    return OK


@_kernel()
def _remove(mem, a, inv):
    _lvl_sub(mem, (mem[a + 3] >> 1) & 1, _index(mem, mem[a + 1], inv), mem[a + 2], 1)
    _delete(mem, a)
    mem[S_NORD] -= 1


@_kernel()
def _modify(mem, a, px, sz, inv):
    """Modify a live order to a new price and total size (Databento's priority rules)."""
    if sz == 0:
        mem[N_ST + A_ZERO_SIZE] += 1
        mem[S_DQ] = -mem[a + 2]
        mem[S_DSIDE] = (mem[a + 3] >> 1) & 1
        mem[S_DPX] = mem[a + 1]
        _remove(mem, a, inv)
        return OK
    j = _index(mem, px, inv)
    if j < 0:
        mem[S_NEED_PX] = px
        return REGRID
    meta = mem[a + 3]
    side = (meta >> 1) & 1
    old = mem[a + 2]
    if px != mem[a + 1]:
        _lvl_sub(mem, side, _index(mem, mem[a + 1], inv), old, 1)
        _lvl_add(mem, side, j, sz)
        mem[S_PRIO] += 1
        meta = (mem[S_PRIO] << 2) | (meta & 3)
    else:
        mem[_lvl(mem, side, j)] += sz - old
        if sz > old:
            mem[S_PRIO] += 1
            meta = (mem[S_PRIO] << 2) | (meta & 3)
    mem[a + 1] = px
    mem[a + 2] = sz
    mem[a + 3] = meta
    mem[S_DQ] = sz - old
    mem[S_DSIDE] = side
    mem[S_DPX] = px
    return OK


@_kernel()
def _apply_one(mem, act, key, px, sz, sd, fl, inv, skip):
    """Apply one record. Returns OK, or a status with nothing changed.

    ``skip``: the caller could not fit this record's price on any grid; count it and ignore it.
    """
    if skip:
        mem[N_ST + A_OUT_OF_GRID] += 1
        return OK
    if act == _ACT_A:
        if px == _UNDEF:
            mem[N_ST + A_BAD_PRICE] += 1
            return OK
        a = _find(mem, key)
        if a >= 0:
            mem[N_ST + A_ADD_DUPLICATE] += 1
            return _modify(mem, a, px, sz, inv)
        return _place(mem, key, px, sz, sd, inv, -a - 1)
    if act == _ACT_C:
        a = _find(mem, key)
        if a < 0:
            mem[N_ST + A_CANCEL_UNKNOWN] += 1
            return OK
        rest = mem[a + 2]
        mem[S_DSIDE] = (mem[a + 3] >> 1) & 1
        mem[S_DPX] = mem[a + 1]
        if sz >= rest:
            if sz > rest:
                mem[N_ST + A_CANCEL_OVERSIZE] += 1
            mem[S_DQ] = -rest
            _remove(mem, a, inv)
        elif sz > 0:
            mem[S_DQ] = -sz
            mem[a + 2] = rest - sz
            _lvl_sub(mem, (mem[a + 3] >> 1) & 1, _index(mem, mem[a + 1], inv), sz, 0)
        return OK
    if act == _ACT_M:
        if px == _UNDEF:
            mem[N_ST + A_BAD_PRICE] += 1
            return OK
        a = _find(mem, key)
        if a >= 0:
            return _modify(mem, a, px, sz, inv)
        # Databento's reference book treats a modify of an unknown order as an add.
        s = _place(mem, key, px, sz, sd, inv, -a - 1)
        if s == OK:
            mem[N_ST + A_MODIFY_UNKNOWN] += 1
        return s
    if act == _ACT_R:
        _clear(mem)
        mem[S_SYNCED] = 0
        if fl & _F_SNAPSHOT:
            mem[S_IN_SNAP] = 1
            mem[S_CLEAR_PENDING] = 0
        else:
            mem[S_IN_SNAP] = 0
            mem[S_CLEAR_PENDING] = 1
        return OK
    if act == _ACT_T or act == _ACT_F or act == _ACT_N:
        return OK
    mem[N_ST + A_UNKNOWN_ACTION] += 1
    return OK


@_kernel(inline="always")
def _after(mem, act, fl):
    """Validity machine and event boundary, after a record has been applied.

    Returns 1 when the record ends an event (F_LAST); counts ``crossed_book`` there.
    """
    if fl & _F_SNAPSHOT:
        if mem[S_IN_SNAP] and fl & _F_LAST:
            mem[S_IN_SNAP] = 0
            mem[S_SYNCED] = 1
    elif mem[S_CLEAR_PENDING] and act != _ACT_R:
        mem[S_CLEAR_PENDING] = 0
        mem[S_SYNCED] = 1
    if fl & _F_LAST:
        mem[S_EVENT_START] = 1
        if _crossed(mem):
            mem[N_ST + A_CROSSED] += 1
        return 1
    mem[S_EVENT_START] = 0
    return 0


@_kernel()
def _crossed(mem):
    return mem[S_BBI] >= 0 and mem[S_BAI] >= 0 and mem[S_BBI] >= mem[S_BAI]


@_kernel(inline="always")
def _valid(mem):
    return mem[S_SYNCED] == 1 and mem[S_IN_SNAP] == 0 and not _crossed(mem)


# ---------------------------------------------------------------------------------------- drivers


@_kernel()
def run_apply(mem, action, order_id, price, size, side, flags, start, skip):
    """Apply records ``start..`` without sampling. Returns ``(status, next_record)``."""
    inv = _inverse(mem)
    for i in range(start, action.shape[0]):
        act = action[i]
        fl = flags[i]
        s = _apply_one(mem, act, np.int64(order_id[i]), price[i], np.int64(size[i]), side[i], fl, inv, i == skip)
        if s != OK:
            return s, i
        _after(mem, act, fl)
    return OK, action.shape[0]


@_kernel()
def run_events(mem, action, order_id, price, size, side, flags, ts_recv, ts_event, iid, seq,
               start, skip, n, o_ts_recv, o_ts_event, o_iid, o_seq, o_valid, bpx, bsz, bct, apx, asz,
               act_):
    """Apply records ``start..`` and write one top-of-book row per F_LAST record into row ``n``..

    The output must have a row for every F_LAST record. Returns ``(status, next_record, rows)``.
    """
    inv = _inverse(mem)
    depth = bpx.shape[1]
    for i in range(start, action.shape[0]):
        act = action[i]
        fl = flags[i]
        s = _apply_one(mem, act, np.int64(order_id[i]), price[i], np.int64(size[i]), side[i], fl, inv, i == skip)
        if s != OK:
            return s, i, n
        if _after(mem, act, fl) == 0:
            continue
        o_ts_recv[n] = ts_recv[i]
        o_ts_event[n] = ts_event[i]
        o_iid[n] = iid[i]
        o_seq[n] = seq[i]
        o_valid[n] = _valid(mem)
        # Top levels, best first (written here rather than in a helper: see the module doc).
        base = mem[S_BASE]
        tick = mem[S_TICK]
        lb = _lvl(mem, 0, 0)
        lv = 0
        j = mem[S_BBI]
        lo = mem[S_BLO]
        while lv < depth and j >= lo and j >= 0:
            c = mem[lb + 2 * j + 1]
            if c > 0:
                bpx[n, lv] = base + j * tick
                bsz[n, lv] = mem[lb + 2 * j]
                bct[n, lv] = c
                lv += 1
            j -= 1
        while lv < depth:
            bpx[n, lv] = _UNDEF
            bsz[n, lv] = 0
            bct[n, lv] = 0
            lv += 1
        la = _lvl(mem, 1, 0)
        lv = 0
        j = mem[S_BAI]
        hi = mem[S_AHI]
        while lv < depth and j <= hi and j >= 0:
            c = mem[la + 2 * j + 1]
            if c > 0:
                apx[n, lv] = base + j * tick
                asz[n, lv] = mem[la + 2 * j]
                act_[n, lv] = c
                lv += 1
            j += 1
        while lv < depth:
            apx[n, lv] = _UNDEF
            asz[n, lv] = 0
            act_[n, lv] = 0
            lv += 1
        n += 1
    return OK, action.shape[0], n


@_kernel()
def _write_second(mem, n, sec, o_ts, o_iid, o_valid, bpx, bsz, bct, apx, asz, act_, o_bb, o_ba,
                  o_mid, o_spread, o_micro, o_ltp, o_lts, o_vol, o_buy, o_sell, o_trades, o_adds,
                  o_cancels, o_mods, o_events, o_to, o_th, o_tl, o_tc, o_notional, o_mo, o_mh,
                  o_ml, o_ofi, o_addb, o_adda, o_canb, o_cana, o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct,
                  o_napx, o_nasz, o_nact):
    """Write the 1-second row of second ``sec`` (ts_recv = its end) from the current book."""
    o_ts[n] = (sec + 1) * _NS
    o_iid[n] = mem[S_IID]
    o_valid[n] = _valid(mem)
    _write_side(mem, n, 0, bpx, bsz, bct)
    _write_side(mem, n, 1, apx, asz, act_)
    bb = bpx[n, 0]
    ba = apx[n, 0]
    o_bb[n] = bb
    o_ba[n] = ba
    if bb != _UNDEF and ba != _UNDEF:
        mid: float = (np.float64(bb) + np.float64(ba)) * 0.5 / _NS
        o_mid[n] = mid
        t = mem[S_USER_TICK] if mem[S_USER_TICK] > 0 else mem[S_TICK]
        o_spread[n] = (ba - bb) // t if t > 0 else -1
        qb = np.float64(bsz[n, 0])
        qa = np.float64(asz[n, 0])
        o_micro[n] = (np.float64(bb) * qa + np.float64(ba) * qb) / (qb + qa) / _NS
    else:
        mid = np.nan
        o_mid[n] = mid
        o_spread[n] = -1
        o_micro[n] = np.nan
    o_ltp[n] = mem[S_LT_PX]
    o_lts[n] = mem[S_LT_SZ]
    o_vol[n] = mem[S_VOL]
    o_buy[n] = mem[S_BUYV]
    o_sell[n] = mem[S_SELLV]
    o_trades[n] = mem[S_TRADES]
    o_adds[n] = mem[S_ADDS]
    o_cancels[n] = mem[S_CANCELS]
    o_mods[n] = mem[S_MODS]
    o_events[n] = mem[S_EVENTS]
    o_to[n] = mem[S_TO]
    if mem[S_TO] == _UNDEF:
        o_th[n] = _UNDEF
        o_tl[n] = _UNDEF
        o_tc[n] = _UNDEF
    else:
        o_th[n] = mem[S_TH]
        o_tl[n] = mem[S_TL]
        o_tc[n] = mem[S_TC]
    o_notional[n] = np.float64(mem[S_NOTIONAL]) / _NS
    if mem[S_MO] == _UNDEF:  # no two-sided F_LAST in the second: the carried mid (or NaN)
        o_mo[n] = mid
        o_mh[n] = mid
        o_ml[n] = mid
    else:
        o_mo[n] = np.float64(mem[S_MO]) * 0.5 / _NS
        o_mh[n] = np.float64(mem[S_MH]) * 0.5 / _NS
        o_ml[n] = np.float64(mem[S_ML]) * 0.5 / _NS
    o_ofi[n] = np.float64(mem[S_OFI])
    o_addb[n] = mem[S_ADD_B]
    o_adda[n] = mem[S_ADD_A]
    o_canb[n] = mem[S_CAN_B]
    o_cana[n] = mem[S_CAN_A]
    o_pullb[n] = mem[S_PULL_B]
    o_pulla[n] = mem[S_PULL_A]
    _write_side(mem, n, 0, o_nbpx, o_nbsz, o_nbct)  # the full book near spot, for the surfaces
    _write_side(mem, n, 1, o_napx, o_nasz, o_nact)


@_kernel(inline="always")
def _write_side(mem, n, side, px, sz, ct):
    """Row ``n`` of one side's levels, best first, as many as ``px`` has columns; the rest empty."""
    depth = px.shape[1]
    base = mem[S_BASE]
    tick = mem[S_TICK]
    lb = _lvl(mem, side, 0)
    lv = 0
    if side == 0:
        j, last, step = mem[S_BBI], mem[S_BLO], -1
    else:
        j, last, step = mem[S_BAI], mem[S_AHI], 1
    while lv < depth and j >= 0 and (j - last) * step <= 0:
        if mem[lb + 2 * j + 1] > 0:
            px[n, lv] = base + j * tick
            sz[n, lv] = mem[lb + 2 * j]
            ct[n, lv] = mem[lb + 2 * j + 1]
            lv += 1
        j += step
    while lv < depth:
        px[n, lv] = _UNDEF
        sz[n, lv] = 0
        ct[n, lv] = 0
        lv += 1


@_kernel(inline="always")
def _reset_counts(mem):
    for k in range(S_VOL, S_EVENTS + 1):
        mem[k] = 0
    for k in range(S_TO, S_PULL_A + 1):
        mem[k] = 0
    mem[S_TO] = _UNDEF
    mem[S_MO] = _UNDEF


@_kernel(inline="always")
def _count(mem, act, fl, px, sz, sd):
    """Per-second counters of one applied record (snapshot records are not counted)."""
    if fl & _F_SNAPSHOT:
        return
    if act == _ACT_A:
        mem[S_ADDS] += 1
    elif act == _ACT_C:
        mem[S_CANCELS] += 1
    elif act == _ACT_M:
        mem[S_MODS] += 1
    elif act == _ACT_F:
        mem[S_IN_TRADE] = 1
        return
    elif act == _ACT_T:
        mem[S_TRADES] += 1
        mem[S_VOL] += sz
        mem[S_LT_PX] = px
        mem[S_LT_SZ] = sz
        if sd == _SIDE_B:
            mem[S_BUYV] += sz
        elif sd == _SIDE_A:
            mem[S_SELLV] += sz
        if px != _UNDEF:
            if mem[S_TO] == _UNDEF:
                mem[S_TO] = px
                mem[S_TH] = px
                mem[S_TL] = px
            elif px > mem[S_TH]:
                mem[S_TH] = px
            elif px < mem[S_TL]:
                mem[S_TL] = px
            mem[S_TC] = px
            mem[S_NOTIONAL] += px * sz
        return
    else:
        return
    # A, C, M: the resting size the record added or removed.
    dq = mem[S_DQ]
    if dq == 0:
        return
    side = mem[S_DSIDE]
    if dq < 0 and mem[S_IN_TRADE]:
        return  # removes filled size, not a cancel
    t = mem[S_USER_TICK] if mem[S_USER_TICK] > 0 else mem[S_TICK]
    if side == 0:
        b = mem[S_BBI]
        near = b < 0 or mem[S_BASE] + b * mem[S_TICK] - mem[S_DPX] < NEAR_TOP_TICKS * t
    else:
        b = mem[S_BAI]
        near = b < 0 or mem[S_DPX] - (mem[S_BASE] + b * mem[S_TICK]) < NEAR_TOP_TICKS * t
    if dq > 0:
        mem[S_ADD_B + side] += dq
        if near:
            mem[S_PULL_B + side] -= dq
    else:
        mem[S_CAN_B + side] -= dq
        if near:
            mem[S_PULL_B + side] -= dq


@_kernel(inline="always")
def _on_last(mem):
    """At an F_LAST record (end of an event): mid open/high/low and order-flow imbalance."""
    bbi = mem[S_BBI]
    bai = mem[S_BAI]
    if bbi < 0 or bai < 0:
        mem[S_OFI_OK] = 0
        return
    base = mem[S_BASE]
    tick = mem[S_TICK]
    pb = base + bbi * tick
    pa = base + bai * tick
    qb = mem[_lvl(mem, 0, bbi)]
    qa = mem[_lvl(mem, 1, bai)]
    m2 = pb + pa
    if mem[S_MO] == _UNDEF:
        mem[S_MO] = m2
        mem[S_MH] = m2
        mem[S_ML] = m2
    elif m2 > mem[S_MH]:
        mem[S_MH] = m2
    elif m2 < mem[S_ML]:
        mem[S_ML] = m2
    ok = _valid(mem)
    if ok and mem[S_OFI_OK]:
        e = 0
        if pb >= mem[S_OFI_PB]:
            e += qb
        if pb <= mem[S_OFI_PB]:
            e -= mem[S_OFI_QB]
        if pa <= mem[S_OFI_PA]:
            e -= qa
        if pa >= mem[S_OFI_PA]:
            e += mem[S_OFI_QA]
        mem[S_OFI] += e
    mem[S_OFI_OK] = 1 if ok else 0
    mem[S_OFI_PB] = pb
    mem[S_OFI_QB] = qb
    mem[S_OFI_PA] = pa
    mem[S_OFI_QA] = qa


@_kernel()
def run_seconds(mem, action, order_id, price, size, side, flags, ts_recv, iid, start, skip,
                o_ts, o_iid, o_valid, bpx, bsz, bct, apx, asz, act_, o_bb, o_ba, o_mid, o_spread,
                o_micro, o_ltp, o_lts, o_vol, o_buy, o_sell, o_trades, o_adds, o_cancels, o_mods,
                o_events, o_to, o_th, o_tl, o_tc, o_notional, o_mo, o_mh, o_ml, o_ofi, o_addb,
                o_adda, o_canb, o_cana, o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct, o_napx, o_nasz, o_nact):
    """Apply records ``start..`` and write every closed 1-second row.

    An event belongs to the second of its first record's ``ts_recv``; second ``k`` closes when an
    event starts at or after ``(k + 1) * 1e9``. Returns ``(status, next_record, rows)``; OUT_FULL
    means the output is full: call again from ``next_record`` with a fresh output.
    """
    inv = _inverse(mem)
    n = 0
    cap = o_ts.shape[0]
    for i in range(start, action.shape[0]):
        act = action[i]
        fl = flags[i]
        if mem[S_EVENT_START]:
            mem[S_IN_TRADE] = 0
            sec = np.int64(ts_recv[i]) // _NS  # int64 first: u8 // i8 would be float64
            if mem[S_HAS_OPEN] == 0:
                mem[S_HAS_OPEN] = 1
                mem[S_OPEN_SEC] = sec
            elif sec > mem[S_OPEN_SEC]:
                if mem[S_STARTED]:
                    while mem[S_OPEN_SEC] < sec:
                        if n >= cap:
                            return OUT_FULL, i, n
                        _write_second(mem, n, mem[S_OPEN_SEC], o_ts, o_iid, o_valid, bpx, bsz,
                                      bct, apx, asz, act_, o_bb, o_ba, o_mid, o_spread, o_micro,
                                      o_ltp, o_lts, o_vol, o_buy, o_sell, o_trades, o_adds,
                                      o_cancels, o_mods, o_events, o_to, o_th, o_tl, o_tc,
                                      o_notional, o_mo, o_mh, o_ml, o_ofi, o_addb, o_adda, o_canb,
                                      o_cana, o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct, o_napx, o_nasz, o_nact)
                        n += 1
                        _reset_counts(mem)
                        mem[S_OPEN_SEC] += 1
                else:
                    _reset_counts(mem)
                    mem[S_OPEN_SEC] = sec
        px = price[i]
        sz = np.int64(size[i])
        sd = side[i]
        mem[S_DQ] = 0
        s = _apply_one(mem, act, np.int64(order_id[i]), px, sz, sd, fl, inv, i == skip)
        if s != OK:
            return s, i, n
        mem[S_IID] = iid[i]
        _count(mem, act, fl, px, sz, sd)
        if _after(mem, act, fl):
            mem[S_EVENTS] += 1
            _on_last(mem)
            if mem[S_STARTED] == 0 and _valid(mem):
                mem[S_STARTED] = 1
    return OK, action.shape[0], n


@_kernel()
def close_second(mem, o_ts, o_iid, o_valid, bpx, bsz, bct, apx, asz, act_, o_bb, o_ba, o_mid,
                 o_spread, o_micro, o_ltp, o_lts, o_vol, o_buy, o_sell, o_trades, o_adds,
                 o_cancels, o_mods, o_events, o_to, o_th, o_tl, o_tc, o_notional, o_mo, o_mh,
                 o_ml, o_ofi, o_addb, o_adda, o_canb, o_cana, o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct,
                 o_napx, o_nasz, o_nact):
    """End of input: write the open second (if the book has started) and forget it."""
    n = 0
    if mem[S_HAS_OPEN] and mem[S_STARTED]:
        _write_second(mem, 0, mem[S_OPEN_SEC], o_ts, o_iid, o_valid, bpx, bsz, bct, apx, asz,
                      act_, o_bb, o_ba, o_mid, o_spread, o_micro, o_ltp, o_lts, o_vol, o_buy,
                      o_sell, o_trades, o_adds, o_cancels, o_mods, o_events, o_to, o_th, o_tl,
                      o_tc, o_notional, o_mo, o_mh, o_ml, o_ofi, o_addb, o_adda, o_canb, o_cana,
                      o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct, o_napx, o_nasz, o_nact)
        n = 1
    mem[S_HAS_OPEN] = 0
    _reset_counts(mem)
    return n


@_kernel()
def carry_seconds(mem, sec, o_ts, o_iid, o_valid, bpx, bsz, bct, apx, asz, act_, o_bb, o_ba, o_mid,
                  o_spread, o_micro, o_ltp, o_lts, o_vol, o_buy, o_sell, o_trades, o_adds,
                  o_cancels, o_mods, o_events, o_to, o_th, o_tl, o_tc, o_notional, o_mo, o_mh,
                  o_ml, o_ofi, o_addb, o_adda, o_canb, o_cana, o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct,
                 o_napx, o_nasz, o_nact):
    """Close every second before ``sec``, carrying the book forward, as an event starting in
    ``sec`` would (``run_seconds``); returns the rows written (at most the output's length).

    Nothing closes inside an event (its remaining records belong to the open second) nor before
    the book has started."""
    n = 0
    if mem[S_HAS_OPEN] == 0 or mem[S_STARTED] == 0 or mem[S_EVENT_START] == 0:
        return 0
    while mem[S_OPEN_SEC] < sec and n < o_ts.shape[0]:
        _write_second(mem, n, mem[S_OPEN_SEC], o_ts, o_iid, o_valid, bpx, bsz, bct, apx, asz,
                      act_, o_bb, o_ba, o_mid, o_spread, o_micro, o_ltp, o_lts, o_vol, o_buy,
                      o_sell, o_trades, o_adds, o_cancels, o_mods, o_events, o_to, o_th, o_tl,
                      o_tc, o_notional, o_mo, o_mh, o_ml, o_ofi, o_addb, o_adda, o_canb, o_cana,
                      o_pullb, o_pulla, o_nbpx, o_nbsz, o_nbct, o_napx, o_nasz, o_nact)
        n += 1
        _reset_counts(mem)
        mem[S_OPEN_SEC] += 1
    return n
