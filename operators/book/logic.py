"""``L3Book``: the Python owner of one instrument's book arrays, and its frozen ``BookState``.

The kernels in ``operators.book.kernels`` do the per-record work; this wrapper only allocates,
grows the arrays when a kernel asks for room (then resumes from the same record), and copies
state out for recovery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from operators.book import kernels as k
from operators.book.dtypes import second_dtype, top_dtype
from operators.records import BOOK_DEPTH, MBO_DTYPE

_MIN_ORDERS = 1 << 10
_MIN_LEVELS = 1 << 12
MAX_LEVELS = 1 << 23
"""Largest price grid (8M levels, 256 MB). A price that would need more (far off every tick the
live prices share) is ignored and counted as the anomaly ``price_out_of_grid``."""


@dataclass(frozen=True, slots=True)
class BookState:
    """Compact, immutable copy of an ``L3Book``: live orders only, plus the scalar state.

    Price levels are not stored: they are re-aggregated from the orders on resume.
    """

    tick: int
    depth: int
    order_id: np.ndarray  # u8[n]
    price: np.ndarray  # i8[n]
    size: np.ndarray  # i8[n]
    side: np.ndarray  # u1[n], 0 bid 1 ask
    priority: np.ndarray  # i8[n]
    state: np.ndarray  # i8[N_ST], see ``kernels.S_*``
    anomalies: np.ndarray  # i8[N_ANOM], see ``kernels.ANOMALY_NAMES``


# action, order_id, price, size, side, flags: the record columns every driver takes first
_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _columns(records: np.ndarray) -> _Columns:
    if records.dtype != MBO_DTYPE:
        msg = f"book records must have MBO_DTYPE, got {records.dtype}"
        raise TypeError(msg)
    return (
        records["action"].view(np.uint8),
        records["order_id"],
        records["price"],
        records["size"],
        records["side"].view(np.uint8),
        records["flags"],
    )


def _fields(out: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    return tuple(out[name] for name in names)


_TOP_OUT = ("ts_recv", "ts_event", "instrument_id", "sequence", "book_valid",
            "bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz", "ask_ct")
_SEC_OUT = ("ts_recv", "instrument_id", "book_valid", "bid_px", "bid_sz", "bid_ct", "ask_px",
            "ask_sz", "ask_ct", "best_bid_px", "best_ask_px", "mid_px", "spread_ticks",
            "microprice", "last_trade_px", "last_trade_sz", "volume", "buy_volume", "sell_volume",
            "trade_count", "add_count", "cancel_count", "modify_count", "event_count",
            "trade_open_px", "trade_high_px", "trade_low_px", "trade_close_px", "notional",
            "mid_open", "mid_high", "mid_low", "ofi", "add_bid_size", "add_ask_size",
            "cancel_bid_size", "cancel_ask_size", "near_pulled_bid_size", "near_pulled_ask_size",
            "near_bid_px", "near_bid_sz", "near_bid_ct", "near_ask_px", "near_ask_sz", "near_ask_ct")


class L3Book:
    """Market-by-order book of one instrument, with Databento MBO semantics.

    ``tick`` is the minimum price increment in 1e-9 units (0 = unknown: inferred from the prices'
    gcd). Use one instance with either ``apply_events`` or ``apply_seconds``.
    """

    def __init__(self, tick: int, *, depth: int = BOOK_DEPTH, resume: BookState | None = None) -> None:
        if tick < 0 or depth <= 0:
            msg = f"tick must be >= 0 and depth > 0, got tick={tick} depth={depth}"
            raise ValueError(msg)
        self._tick = int(tick)
        self._depth = int(depth)
        self._top_dtype = top_dtype(depth)
        self._sec_dtype = second_dtype(depth)
        if resume is None:
            self._mem = k.layout(k.new_header(self._tick), _MIN_ORDERS, 1)
            return
        header = np.zeros(k.HEADER, np.int64)
        header[: k.N_ST] = resume.state
        header[k.N_ST : k.N_ST + k.N_ANOM] = resume.anomalies
        n = resume.order_id.shape[0]
        ocap = max(_MIN_ORDERS, 1 << max(0, (4 * n - 1).bit_length()))
        self._mem = k.layout(header, ocap, int(header[k.S_NLEV]))
        k.load_orders(self._mem, resume.order_id, resume.price, resume.size,
                      resume.side.astype(np.int64), resume.priority)
        if self._mem[k.S_GRID]:
            k.rebuild_levels(self._mem)

    # ------------------------------------------------------------------------------ public API

    @property
    def anomalies(self) -> dict[str, int]:
        """Cumulative anomaly counts by name (see ``kernels.ANOMALY_NAMES``)."""
        counts = self._mem[k.N_ST : k.N_ST + k.N_ANOM]
        return {name: int(v) for name, v in zip(k.ANOMALY_NAMES, counts, strict=True)}

    @property
    def valid(self) -> bool:
        """Synchronized (snapshot done, or clear + incremental data) and not crossed."""
        return bool(k._valid(self._mem))

    @property
    def best_bid(self) -> int | None:
        return self._price_at(int(self._mem[k.S_BBI]))

    @property
    def best_ask(self) -> int | None:
        return self._price_at(int(self._mem[k.S_BAI]))

    @property
    def order_count(self) -> int:
        return int(self._mem[k.S_NORD])

    def apply_only(self, records: np.ndarray) -> None:
        """Apply records without sampling (the kernel alone; for benchmarks and warm-up)."""
        cols = _columns(records)
        i, skip = 0, -1
        while True:
            status, i = k.run_apply(self._mem, *cols, i, skip)
            if status == k.OK:
                return
            skip = self._make_room(status, i)

    def apply_events(self, records: np.ndarray) -> np.ndarray:
        """Apply one instrument's records; one ``TOP_DTYPE`` row per F_LAST record."""
        cols = _columns(records)
        out = np.empty(int(np.count_nonzero(records["flags"] & k._F_LAST)), self._top_dtype)
        outs = _fields(out, _TOP_OUT)
        extra = (records["ts_recv"], records["ts_event"], records["instrument_id"],
                 records["sequence"])
        i = n = 0
        skip = -1
        while True:
            status, i, n = k.run_events(self._mem, *cols, *extra, i, skip, n, *outs)
            if status == k.OK:
                return out
            skip = self._make_room(status, i)

    def apply_seconds(self, records: np.ndarray) -> np.ndarray:
        """Apply one instrument's records; the closed 1-second rows (``SECOND_DTYPE``)."""
        cols = _columns(records)
        extra = (records["ts_recv"], records["instrument_id"])
        chunks: list[np.ndarray] = []
        i = 0
        skip = -1
        cap = self._seconds_bound(records)
        while True:
            out = np.empty(cap, self._sec_dtype)
            status, i, n = k.run_seconds(self._mem, *cols, *extra, i, skip,
                                         *_fields(out, _SEC_OUT))
            if n:
                chunks.append(out[:n])
            if status == k.OK:
                break
            if status == k.OUT_FULL:
                cap = min(cap * 2, 1 << 20)
            else:
                skip = self._make_room(status, i)
        if not chunks:
            return np.empty(0, self._sec_dtype)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def advance_seconds(self, ts_ns: int) -> np.ndarray:
        """The closed 1-second rows of every second that ends at or before ``ts_ns``, the book
        carried forward (``SECOND_DTYPE``), for a caller that knows no record still to come starts
        an event before ``ts_ns`` (a live partition's tick).

        They are the rows the next event would close, only sooner, so a quiet book advances
        without changing what it writes. A record that does come later for a second already
        closed is applied to the open second (as ``apply_seconds`` treats any late record): no
        second is written twice or out of order.
        """
        sec = int(ts_ns) // 1_000_000_000
        if not self._mem[k.S_HAS_OPEN] or sec <= self._mem[k.S_OPEN_SEC]:
            return np.empty(0, self._sec_dtype)
        chunks: list[np.ndarray] = []
        while True:
            out = np.empty(max(1, min(sec - int(self._mem[k.S_OPEN_SEC]), 1 << 16)), self._sec_dtype)
            n = k.carry_seconds(self._mem, sec, *_fields(out, _SEC_OUT))
            if n:
                chunks.append(out[:n])
            if n < len(out):
                break
        if not chunks:
            return np.empty(0, self._sec_dtype)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def close_seconds(self) -> np.ndarray:
        """End of input: the open second's row (if the book has started), then no open second."""
        out = np.empty(1, self._sec_dtype)
        n = k.close_second(self._mem, *_fields(out, _SEC_OUT))
        return out[:n]

    def snapshot(self) -> BookState:
        """Compact frozen copy: live orders (slot order) and the scalar state."""
        n = int(self._mem[k.S_NORD])
        key = np.empty(n, np.uint64)
        px = np.empty(n, np.int64)
        sz = np.empty(n, np.int64)
        side = np.empty(n, np.uint8)
        prio = np.empty(n, np.int64)
        k.dump_orders(self._mem, key, px, sz, side, prio)
        return BookState(
            tick=self._tick,
            depth=self._depth,
            order_id=key,
            price=px,
            size=sz,
            side=side,
            priority=prio,
            state=self._mem[: k.N_ST].copy(),
            anomalies=self._mem[k.N_ST : k.N_ST + k.N_ANOM].copy(),
        )

    # ------------------------------------------------------------------------------ internals

    def _price_at(self, idx: int) -> int | None:
        if idx < 0:
            return None
        return int(self._mem[k.S_BASE] + idx * self._mem[k.S_TICK])

    def _seconds_bound(self, records: np.ndarray) -> int:
        if records.shape[0] == 0:
            return 1
        ts = records["ts_recv"]
        lo = int(ts.min()) // 1_000_000_000
        if self._mem[k.S_HAS_OPEN]:
            lo = min(lo, int(self._mem[k.S_OPEN_SEC]))
        span = int(ts.max()) // 1_000_000_000 - lo + 1
        return max(1, min(span, 1 << 16))

    def _make_room(self, status: int, record: int) -> int:
        """Grow or re-lay ``mem`` for the record a kernel stopped at; the record to skip or -1."""
        mem = self._mem
        if status == k.GROW_ORDERS:
            self._relayout(int(mem[k.S_OCAP]) * 2, int(mem[k.S_NLEV]))
            return -1
        if status == k.REGRID:
            return -1 if self._regrid(int(mem[k.S_NEED_PX])) else record
        else:  # pragma: no cover - a kernel status this wrapper does not know
            msg = f"unexpected book kernel status {status}"
            raise RuntimeError(msg)

    def _relayout(self, ocap: int, nlev: int) -> None:
        old = self._mem
        mem = k.layout(old, ocap, nlev)
        k.move_orders(old, mem)
        if mem[k.S_GRID]:
            k.rebuild_levels(mem)
        self._mem = mem

    def _live_prices(self) -> np.ndarray:
        mem = self._mem
        off, cap = int(mem[k.S_OOFF]), int(mem[k.S_OCAP])
        slots = mem[off : off + k.SLOT * cap].reshape(cap, k.SLOT)
        return np.unique(slots[slots[:, 3] != 0, 1])

    def _regrid(self, px: int) -> bool:
        """Lay the grid out again so that every live price and ``px`` fit on it.

        False (nothing changed) when that would take more than ``MAX_LEVELS`` levels: the record
        is then skipped and counted as ``price_out_of_grid``.
        """

        mem = self._mem
        live = self._live_prices()
        lo = min(px, int(live[0])) if live.size else px
        hi = max(px, int(live[-1])) if live.size else px
        anchor = int(mem[k.S_BASE]) if mem[k.S_GRID] else px
        tick = int(mem[k.S_TICK]) if mem[k.S_GRID] else self._tick
        tick = math.gcd(tick, abs(px - anchor), *(abs(int(p) - anchor) for p in live))
        if tick == 0:
            nlev, base = 1, px
        else:
            span = (hi - lo) // tick + 1
            nlev = max(_MIN_LEVELS, 1 << (2 * span - 1).bit_length())
            if mem[k.S_GRID] and tick == mem[k.S_TICK]:
                nlev = max(nlev, int(mem[k.S_NLEV]))
            if nlev > MAX_LEVELS:
                return False
            base = lo - ((nlev - span) // 2) * tick
        mem[k.S_TICK] = tick
        mem[k.S_BASE] = base
        mem[k.S_GRID] = 1
        self._relayout(int(mem[k.S_OCAP]), nlev)
        return True


def replay_top(records: np.ndarray, tick: int, depth: int = BOOK_DEPTH) -> np.ndarray:
    """Top-of-book rows (one per F_LAST record) for multi-instrument MBO records, in input order.

    One ``L3Book`` per ``instrument_id``, all with the same ``tick`` (0 = infer per instrument).
    """
    iids = records["instrument_id"]
    last = (records["flags"] & k._F_LAST) != 0
    parts: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    for iid in np.unique(iids):
        idx = np.flatnonzero(iids == iid)
        parts.append(L3Book(tick, depth=depth).apply_events(records[idx]))
        positions.append(idx[last[idx]])
    if not parts:
        return np.empty(0, top_dtype(depth))
    rows = np.concatenate(parts)
    return rows[np.argsort(np.concatenate(positions), kind="stable")]


__all__ = ["MAX_LEVELS", "BookState", "L3Book", "replay_top"]
