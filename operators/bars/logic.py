"""5-second bars from 1-second book rows: the one-shot ``bars_from_seconds`` and ``BarBuilder``.

A bar with close instant ``ts = T`` (a multiple of ``bar_seconds`` in epoch time) covers the
1-second rows with ``ts_recv`` in ``(T - bar_seconds, T]``; it is emitted with the row at ``T``
itself (its last possible row), or else once a row with ``ts_recv > T`` arrives, or at
``close()`` / ``final=True``. Bars without rows are not emitted. Either way the bar holds the same
rows, so how rows are split between calls never changes the bars, only when they come out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from operators.bars import kernels as k
from operators.bars.dtypes import BAR_DTYPE, BASE_FIELDS, FEATURE_NAMES
from operators.book.dtypes import second_dtype

_NS = 1_000_000_000
_ROW_IN = ("ts_recv", "instrument_id", "book_valid", "bid_px", "bid_sz", "ask_px", "ask_sz",
           "mid_px", "microprice", "trade_open_px", "trade_high_px", "trade_low_px",
           "trade_close_px", "volume", "buy_volume", "sell_volume", "trade_count", "notional",
           "mid_open", "mid_high", "mid_low", "ofi", "add_bid_size", "add_ask_size",
           "cancel_bid_size", "cancel_ask_size", "near_pulled_bid_size", "near_pulled_ask_size",
           "event_count")
_BASE_OUT = tuple(name for name, _ in BASE_FIELDS)
_COLUMN = np.array([k.KERNEL_FEATURES.index(name) for name in FEATURE_NAMES], np.int64)
if sorted(k.KERNEL_FEATURES) != sorted(FEATURE_NAMES):  # pragma: no cover - caught by the tests
    msg = "operators.bars.kernels.KERNEL_FEATURES and the feature registry name different features"
    raise RuntimeError(msg)


@dataclass(frozen=True, slots=True)
class BarCarry:
    """What one call leaves for the next: the open bar's rows and the state spanning bars.

    Immutable by convention (arrays are private copies, never mutated): safe as a recovery
    snapshot.
    """

    bar_seconds: int
    tick: int
    rows: np.ndarray  # the open bar's 1-second rows (second_dtype), re-folded on the next call
    ema: np.ndarray  # f8[3]: near-depth average (bid, ask, seeded) before ``rows``
    ema_ts: int  # ts_recv of the average's last update before ``rows``
    last_ts: int  # rows must come strictly after this instant (last row, or last closed bar)
    instrument_id: int  # -1 until the first row


def empty_carry(bar_seconds: int, tick: int, depth: int = 10) -> BarCarry:
    """The carry of a builder that has seen nothing."""
    return BarCarry(bar_seconds=bar_seconds, tick=tick, rows=np.empty(0, second_dtype(depth)),
                    ema=np.zeros(3), ema_ts=0, last_ts=-1, instrument_id=-1)


def _relaid(carried: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Carried rows written before the rows grew fields (a recovery store of an older build): the
    same values in the new layout, the new fields empty (bars read none of them)."""
    out = np.zeros(carried.shape[0], dtype)
    for name in dtype.names or ():
        if name in (carried.dtype.names or ()):
            out[name] = carried[name]
        elif name.endswith("_px"):
            out[name] = np.iinfo(np.int64).max
    return out


def _check(rows: np.ndarray, carry: BarCarry) -> None:
    names = rows.dtype.names or ()
    if not set(_ROW_IN) <= set(names) or rows.dtype["bid_px"].shape[0] < k.LEVELS:
        msg = f"bar input must be operators.book.second_dtype(depth >= {k.LEVELS}) rows, got {rows.dtype}"
        raise TypeError(msg)
    if carry.rows.shape[0] and rows.dtype != carry.rows.dtype:
        msg = f"rows dtype {rows.dtype} differs from the carried rows' {carry.rows.dtype}"
        raise TypeError(msg)
    if rows.shape[0] == 0:
        return
    ts = rows["ts_recv"].astype(np.int64)
    if ts[0] <= carry.last_ts or (ts.shape[0] > 1 and not bool(np.all(ts[1:] > ts[:-1]))):
        msg = f"1-second rows must have strictly increasing ts_recv after {carry.last_ts}"
        raise ValueError(msg)
    iid = rows["instrument_id"]
    first = int(iid[0]) if carry.instrument_id < 0 else carry.instrument_id
    if not bool(np.all(iid == first)):
        msg = f"bars are per instrument: got instrument ids {np.unique(iid).tolist()} (expected {first})"
        raise ValueError(msg)


def bars_from_seconds(rows: np.ndarray, bar_seconds: int = 5, carry: BarCarry | None = None, *,
                      tick: int = 0, final: bool = False) -> tuple[np.ndarray, BarCarry]:
    """Fold one instrument's 1-second rows into closed bars (``BAR_DTYPE``) and the next carry.

    ``tick`` is the instrument's (1e-9 units), needed without a ``carry``; a ``carry`` (from the
    previous call) fixes ``bar_seconds`` and ``tick``. With ``final`` the open
    bar is emitted too (end of input); later rows must then lie after that bar's close.
    """
    if carry is None:
        if bar_seconds <= 0 or tick <= 0:
            msg = f"bar_seconds and tick must be positive, got bar_seconds={bar_seconds} tick={tick}"
            raise ValueError(msg)
        depth = rows.dtype["bid_px"].shape[0] if rows.dtype.names and "bid_px" in rows.dtype.names else 10
        carry = empty_carry(bar_seconds, tick, depth)
    elif bar_seconds != carry.bar_seconds:
        msg = f"bar_seconds={bar_seconds} differs from the carry's {carry.bar_seconds}"
        raise ValueError(msg)
    if carry.rows.shape[0] and rows.dtype != carry.rows.dtype and set(carry.rows.dtype.names or ()) <= set(
            rows.dtype.names or ()):
        carry = replace(carry, rows=_relaid(carry.rows, rows.dtype))
    _check(rows, carry)
    if carry.rows.shape[0] == 0 and rows.shape[0] == 0:
        return np.empty(0, BAR_DTYPE), carry
    allr = np.concatenate([carry.rows, rows]) if carry.rows.shape[0] else rows
    cap = allr.shape[0]
    out = np.empty(cap, BAR_DTYPE)
    feat = np.empty((cap, len(k.KERNEL_FEATURES)), np.float64)
    ema = np.empty(k.EMA_WORDS, np.float64)
    ema[:3] = carry.ema
    ema_ts = np.array([carry.ema_ts, carry.ema_ts], np.int64)
    args = (*(allr[f] for f in _ROW_IN), np.int64(carry.bar_seconds) * _NS, np.int64(carry.tick), bool(final),
            ema, ema_ts, *(out[f] for f in _BASE_OUT), feat)
    n, open_start = k.fold_bars(*args)
    bars = out[:n]
    for name, col in zip(FEATURE_NAMES, _COLUMN, strict=True):
        bars[name] = feat[:n, col]
    rest = allr[open_start:].copy()
    if rest.shape[0]:  # an open bar: the state before its first row
        ema_state, ets = ema[3:6].copy(), int(ema_ts[1])
    else:
        ema_state, ets = ema[:3].copy(), int(ema_ts[0])
    last_ts = int(allr["ts_recv"][-1]) if allr.shape[0] else carry.last_ts
    if final and n:
        last_ts = max(last_ts, int(bars["ts"][-1]))
    iid = int(allr["instrument_id"][0]) if allr.shape[0] else carry.instrument_id
    return bars, replace(carry, rows=rest, ema=ema_state, ema_ts=ets, last_ts=last_ts,
                         instrument_id=iid)


class BarBuilder:
    """Streaming bars of one instrument: ``feed`` closed 1-second rows, get the closed bars."""

    def __init__(self, bar_seconds: int = 5, *, tick: int = 0,
                 resume: BarCarry | None = None) -> None:
        if resume is not None:
            if resume.bar_seconds != bar_seconds:
                msg = f"bar_seconds={bar_seconds} differs from the snapshot's {resume.bar_seconds}"
                raise ValueError(msg)
            self._carry: BarCarry | None = resume
        else:
            if bar_seconds <= 0 or tick <= 0:
                msg = f"bar_seconds and tick must be positive, got bar_seconds={bar_seconds} tick={tick}"
                raise ValueError(msg)
            self._carry = None
        self._bar_seconds = bar_seconds
        self._tick = tick

    def feed(self, rows: np.ndarray) -> np.ndarray:
        """The bars closed by ``rows`` (1-second rows of this instrument, increasing ts_recv)."""
        bars, self._carry = bars_from_seconds(rows, self._bar_seconds, self._carry, tick=self._tick)
        return bars

    def close(self) -> np.ndarray:
        """End of input: the open bar, if any (emitted once)."""
        if self._carry is None:
            return np.empty(0, BAR_DTYPE)
        rows = self._carry.rows[:0]
        bars, self._carry = bars_from_seconds(rows, self._bar_seconds, self._carry, tick=self._tick,
                                              final=True)
        return bars

    def snapshot(self) -> BarCarry | None:
        """Compact immutable state for recovery (None before the first row); pass as ``resume``."""
        return self._carry


__all__ = ["BarBuilder", "BarCarry", "bars_from_seconds", "empty_carry"]
