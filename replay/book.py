"""The simulator's own limit order book: the ground truth the project's book is tested against.

It is deliberately independent of ``operators/book``: prices are integer ticks on a fixed grid,
every level is a FIFO doubly linked list of order slots, and all state lives in a few int64 arrays
so that numba kernels can update it and the Python side can carry it from one chunk (and one
trading day) to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

N_TICKS = 1 << 16
"""Tick grid size: ticks 0..65535, i.e. ES prices up to 16,383.75 points."""
BID = 0
ASK = 1
NIL = -1

# level fields: lv[field, instrument, side, tick]
L_HEAD, L_TAIL, L_SIZE, L_COUNT = 0, 1, 2, 3
# order fields: ords[field, slot]
O_ID, O_INSTR, O_SIDE, O_TICK, O_SIZE, O_PREV, O_NEXT, O_LIVEPOS = 0, 1, 2, 3, 4, 5, 6, 7
# per-instrument summary: top[instrument, field]
T_BEST_BID, T_BEST_ASK, T_N_LIVE, T_NLV_BID, T_NLV_ASK = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class SimBook:
    """Array state of the books of ``n_instruments`` contracts (the arrays themselves are mutable).

    ``live[i, :top[i, T_N_LIVE]]`` lists the live order slots of instrument ``i`` in no particular
    order, so a uniformly random resting order can be drawn in O(1).
    """

    lv: np.ndarray
    ords: np.ndarray
    live: np.ndarray
    free: np.ndarray
    top: np.ndarray
    nfree: np.ndarray

    @classmethod
    def empty(cls, n_instruments: int, max_orders: int) -> SimBook:
        lv = np.zeros((4, n_instruments, 2, N_TICKS), dtype=np.int64)
        lv[L_HEAD] = NIL
        lv[L_TAIL] = NIL
        top = np.zeros((n_instruments, 5), dtype=np.int64)
        top[:, T_BEST_BID] = NIL
        top[:, T_BEST_ASK] = N_TICKS
        return cls(
            lv=lv,
            ords=np.zeros((8, max_orders), dtype=np.int64),
            live=np.zeros((n_instruments, max_orders), dtype=np.int64),
            free=np.arange(max_orders - 1, -1, -1, dtype=np.int64),
            top=top,
            nfree=np.array([max_orders], dtype=np.int64),
        )


@njit(cache=True)
def _rescan_best(lv, top, i, s, t):
    """After level ``t`` of side ``s`` emptied and it was the best, walk away from the spread."""
    if top[i, T_NLV_BID + s] == 0:
        top[i, s] = NIL if s == BID else N_TICKS
        return
    step = -1 if s == BID else 1
    while lv[L_COUNT, i, s, t] == 0:
        t += step
    top[i, s] = t


@njit(cache=True)
def link_tail(lv, ords, top, slot):
    """Append an order slot at the back of its level's queue (it gets the lowest priority)."""
    i, s, t = ords[O_INSTR, slot], ords[O_SIDE, slot], ords[O_TICK, slot]
    tail = lv[L_TAIL, i, s, t]
    ords[O_PREV, slot] = tail
    ords[O_NEXT, slot] = NIL
    if tail == NIL:
        lv[L_HEAD, i, s, t] = slot
        top[i, T_NLV_BID + s] += 1
    else:
        ords[O_NEXT, tail] = slot
    lv[L_TAIL, i, s, t] = slot
    lv[L_SIZE, i, s, t] += ords[O_SIZE, slot]
    lv[L_COUNT, i, s, t] += 1
    if s == BID and t > top[i, T_BEST_BID]:
        top[i, T_BEST_BID] = t
    if s == ASK and t < top[i, T_BEST_ASK]:
        top[i, T_BEST_ASK] = t


@njit(cache=True)
def unlink(lv, ords, top, slot):
    """Take an order slot out of its level's queue (it stays allocated and live)."""
    i, s, t = ords[O_INSTR, slot], ords[O_SIDE, slot], ords[O_TICK, slot]
    prev, nxt = ords[O_PREV, slot], ords[O_NEXT, slot]
    if prev == NIL:
        lv[L_HEAD, i, s, t] = nxt
    else:
        ords[O_NEXT, prev] = nxt
    if nxt == NIL:
        lv[L_TAIL, i, s, t] = prev
    else:
        ords[O_PREV, nxt] = prev
    lv[L_SIZE, i, s, t] -= ords[O_SIZE, slot]
    lv[L_COUNT, i, s, t] -= 1
    if lv[L_COUNT, i, s, t] == 0:
        top[i, T_NLV_BID + s] -= 1
        if t == top[i, s]:
            _rescan_best(lv, top, i, s, t)


@njit(cache=True)
def add_order(lv, ords, live, free, top, nfree, i, s, t, size, oid):
    """Allocate a slot for a new resting order and queue it; returns the slot."""
    nfree[0] -= 1
    slot = free[nfree[0]]
    ords[O_ID, slot] = oid
    ords[O_INSTR, slot] = i
    ords[O_SIDE, slot] = s
    ords[O_TICK, slot] = t
    ords[O_SIZE, slot] = size
    pos = top[i, T_N_LIVE]
    live[i, pos] = slot
    ords[O_LIVEPOS, slot] = pos
    top[i, T_N_LIVE] = pos + 1
    link_tail(lv, ords, top, slot)
    return slot


@njit(cache=True)
def remove_order(lv, ords, live, free, top, nfree, slot):
    """Delete a resting order entirely and free its slot."""
    unlink(lv, ords, top, slot)
    i = ords[O_INSTR, slot]
    last = top[i, T_N_LIVE] - 1
    pos = ords[O_LIVEPOS, slot]
    moved = live[i, last]
    live[i, pos] = moved
    ords[O_LIVEPOS, moved] = pos
    top[i, T_N_LIVE] = last
    ords[O_ID, slot] = 0
    free[nfree[0]] = slot
    nfree[0] += 1


@njit(cache=True)
def reduce_size(lv, ords, top, slot, new_size):
    """Shrink a resting order in place: it keeps its queue priority."""
    i, s, t = ords[O_INSTR, slot], ords[O_SIDE, slot], ords[O_TICK, slot]
    lv[L_SIZE, i, s, t] -= ords[O_SIZE, slot] - new_size
    ords[O_SIZE, slot] = new_size


@njit(cache=True)
def requeue(lv, ords, top, slot, new_tick, new_size):
    """Move an order to a new price and/or larger size: it goes to the back of the queue."""
    unlink(lv, ords, top, slot)
    ords[O_TICK, slot] = new_tick
    ords[O_SIZE, slot] = new_size
    link_tail(lv, ords, top, slot)


@njit(cache=True)
def top_levels(lv, top, i, out, k):
    """Write the best 10 levels of instrument ``i`` into ``out[k]`` (shape (6, 10) per row).

    Rows are bid_tick, ask_tick, bid_size, ask_size, bid_count, ask_count; an empty level has
    tick -1 and zero size and count.
    """
    for s in range(2):
        want = min(10, top[i, T_NLV_BID + s])
        t = top[i, s]
        step = -1 if s == BID else 1
        n = 0
        while n < want:
            if lv[L_COUNT, i, s, t] > 0:
                out[k, s, n] = t
                out[k, 2 + s, n] = lv[L_SIZE, i, s, t]
                out[k, 4 + s, n] = lv[L_COUNT, i, s, t]
                n += 1
            t += step
        for m in range(n, 10):
            out[k, s, m] = NIL
            out[k, 2 + s, m] = 0
            out[k, 4 + s, m] = 0
