"""Per-session extremes of one contract (``SessionSummary``) and the key levels derived from them.

Input is the 1-second series of one contract-session (``silver.book_snapshot_1s``): the row at
``ts = T`` covers events in ``[T - 1 s, T)``, so a row belongs to a window ``[start, end)`` when
``start <= T - 1 s`` and ``T <= end``. A window's high/low are the max ``trade_high`` / min
``trade_low`` over its rows; a window with no trade at all falls back to the max/min of ``mid``
(rounded to 1e-9 units) and records that in ``SessionSummary.mid_fallback``.

Levels (``Level``), each with the instant it becomes known:

- ``PDH``/``PDL``: the prior session's RTH high/low, known at this session's start;
- ``PMH``/``PML``: high/low of the pre-market window, known at its end (09:30 ET by default);
- ``ORH``/``ORL``: high/low of the opening range, known at its end (09:45 ET by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

import numpy as np

from operators.calendar import SessionClock
from operators.levels import kernels as k
from operators.sessions import NS_PER_SECOND

LevelType = Literal["PDH", "PDL", "PMH", "PML", "ORH", "ORL"]
LEVEL_TYPES: Final[tuple[LevelType, ...]] = ("PDH", "PDL", "PMH", "PML", "ORH", "ORL")
"""The six level types, in the fixed order ``levels_for`` returns them."""
PRICE_SCALE: Final = 1_000_000_000
"""Prices are int64 in units of 1e-9 (Databento's fixed-point)."""
ROW_NS: Final = NS_PER_SECOND
"""Each row of the 1-second series covers ``[ts - ROW_NS, ts)``."""

_WINDOWS: Final = ("rth", "pm", "or")


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """Window extremes of one (contract, session); prices int64 in 1e-9 units, None when no data."""

    contract_id: str
    session_date: date
    rth_high: int | None = None
    rth_low: int | None = None
    pm_high: int | None = None
    pm_low: int | None = None
    or_high: int | None = None
    or_low: int | None = None
    complete: bool = False
    """RTH fully covered: a row covers RTH's first second and the series reached ``rth_end``."""
    mid_fallback: tuple[str, ...] = ()
    """Windows (of ``"rth"``, ``"pm"``, ``"or"``) priced from ``mid`` because they had no trade."""


@dataclass(frozen=True, slots=True)
class Level:
    level_type: str
    """One of ``LEVEL_TYPES``."""
    price: int
    """int64 price in 1e-9 units."""
    known_ts: int
    """UTC ns instant from which the level is known."""


def _as(values: np.ndarray, dtype: type, name: str, n: int) -> np.ndarray:
    arr: np.ndarray = np.ascontiguousarray(np.asarray(values).astype(dtype, copy=False))
    if arr.ndim != 1 or arr.shape[0] != n:
        msg = f"{name} must be a 1-d array of {n} rows like ts, got shape {arr.shape}"
        raise ValueError(msg)
    return arr


def summarize_session(
    ts: np.ndarray,
    trade_high: np.ndarray,
    trade_low: np.ndarray,
    mid: np.ndarray,
    clock: SessionClock,
    *,
    contract_id: str,
) -> SessionSummary:
    """Summarize the 1-second series of one contract-session (rows in any order)."""
    extremes = SessionExtremes(clock, contract_id=contract_id)
    extremes.feed(ts, trade_high, trade_low, mid)
    return extremes.summary()


class SessionExtremes:
    """``summarize_session`` folded piece by piece, for a series that arrives a second at a time.

    Every accumulator is a max, a min or a count, so ``summary()`` after feeding the rows in any
    pieces equals ``summarize_session`` over all of them; and the state stays a few numbers
    instead of the whole session's rows (a live flow snapshots it every epoch).
    """

    __slots__ = ("_clock", "_contract_id", "_ext", "_mid_ext", "_rows", "_ts_min", "_ts_max")

    def __init__(self, clock: SessionClock, *, contract_id: str) -> None:
        self._clock, self._contract_id = clock, contract_id
        self._ext = np.empty((len(_WINDOWS), 5), np.int64)
        self._mid_ext = np.empty((len(_WINDOWS), 2), np.float64)
        self._ext[:, k.E_TRADE_HIGH], self._ext[:, k.E_TRADE_LOW] = -k.UNDEF, k.UNDEF
        self._ext[:, [k.E_TRADES, k.E_ROWS, k.E_MIDS]] = 0
        self._mid_ext[:, k.M_HIGH], self._mid_ext[:, k.M_LOW] = -np.inf, np.inf
        self._rows, self._ts_min, self._ts_max = 0, 0, 0

    def feed(self, ts: np.ndarray, trade_high: np.ndarray, trade_low: np.ndarray, mid: np.ndarray) -> None:
        ts64 = np.ascontiguousarray(np.asarray(ts).astype(np.int64, copy=False))
        if ts64.ndim != 1:
            msg = f"ts must be a 1-d array, got shape {ts64.shape}"
            raise ValueError(msg)
        n = ts64.shape[0]
        hi = _as(trade_high, np.int64, "trade_high", n)
        lo = _as(trade_low, np.int64, "trade_low", n)
        md = _as(mid, np.float64, "mid", n)
        if n == 0:
            return
        c = self._clock
        starts = np.array([c.rth_start, c.pm_start, c.or_start], np.int64)
        ends = np.array([c.rth_end, c.pm_end, c.or_end], np.int64)
        ext = np.empty_like(self._ext)
        mid_ext = np.empty_like(self._mid_ext)
        k.window_extremes(ts64, hi, lo, md, ROW_NS, starts, ends, ext, mid_ext)
        acc, mids = self._ext, self._mid_ext
        acc[:, k.E_TRADE_HIGH] = np.maximum(acc[:, k.E_TRADE_HIGH], ext[:, k.E_TRADE_HIGH])
        acc[:, k.E_TRADE_LOW] = np.minimum(acc[:, k.E_TRADE_LOW], ext[:, k.E_TRADE_LOW])
        for col in (k.E_TRADES, k.E_ROWS, k.E_MIDS):
            acc[:, col] += ext[:, col]
        mids[:, k.M_HIGH] = np.maximum(mids[:, k.M_HIGH], mid_ext[:, k.M_HIGH])
        mids[:, k.M_LOW] = np.minimum(mids[:, k.M_LOW], mid_ext[:, k.M_LOW])
        first, last = int(ts64.min()), int(ts64.max())
        self._ts_min = first if self._rows == 0 else min(self._ts_min, first)
        self._ts_max = last if self._rows == 0 else max(self._ts_max, last)
        self._rows += n

    def summary(self) -> SessionSummary:
        ext, mid_ext = self._ext, self._mid_ext
        prices: dict[str, int | None] = {}  # {window}_high, {window}_low: SessionSummary's fields
        fallback: list[str] = []
        for w, name in enumerate(_WINDOWS):
            if ext[w, k.E_TRADES] > 0:
                high = int(ext[w, k.E_TRADE_HIGH]) if ext[w, k.E_TRADE_HIGH] != -k.UNDEF else None
                low = int(ext[w, k.E_TRADE_LOW]) if ext[w, k.E_TRADE_LOW] != k.UNDEF else None
            elif ext[w, k.E_MIDS] > 0:
                high = _mid_price(mid_ext[w, k.M_HIGH])
                low = _mid_price(mid_ext[w, k.M_LOW])
                fallback.append(name)
            else:
                high = low = None
            prices[f"{name}_high"], prices[f"{name}_low"] = high, low
        clock = self._clock
        complete = self._rows > 0 and self._ts_min - ROW_NS <= clock.rth_start and self._ts_max >= clock.rth_end
        return SessionSummary(
            self._contract_id,
            clock.session_date,
            **prices,
            complete=complete,
            mid_fallback=tuple(fallback),
        )

    def copy(self) -> SessionExtremes:
        twin = SessionExtremes.__new__(SessionExtremes)
        twin._clock, twin._contract_id = self._clock, self._contract_id
        twin._ext, twin._mid_ext = self._ext.copy(), self._mid_ext.copy()
        twin._rows, twin._ts_min, twin._ts_max = self._rows, self._ts_min, self._ts_max
        return twin


def _mid_price(dollars: float) -> int:
    return int(np.rint(dollars * PRICE_SCALE))


def _check(summary: SessionSummary, prior: SessionSummary | None, clock: SessionClock) -> None:
    if clock.session_date != summary.session_date:
        msg = (f"clock is for {clock.session_date} but the summary is for {summary.session_date}; "
               "pass the session's clock")
        raise ValueError(msg)
    if prior is None:
        return
    if prior.contract_id != summary.contract_id:
        msg = f"prior summary is for contract {prior.contract_id!r}, not {summary.contract_id!r}"
        raise ValueError(msg)
    if not prior.session_date < summary.session_date:
        msg = f"prior session {prior.session_date} is not before session {summary.session_date}"
        raise ValueError(msg)


def _candidates(
    summary: SessionSummary, prior: SessionSummary | None, clock: SessionClock
) -> tuple[tuple[str, int | None, int, str], ...]:
    """(level type, price or None, known_ts, reason when missing), in ``LEVEL_TYPES`` order."""
    if prior is None:
        pd_reason = "no prior session"
        pdh = pdl = None
    else:
        pd_reason = f"prior session {prior.session_date} has no RTH data"
        pdh, pdl = prior.rth_high, prior.rth_low
    pm_reason = "no trade or mid in the pre-market window"
    or_reason = "no trade or mid in the opening range"
    return (
        ("PDH", pdh, clock.session_start, pd_reason),
        ("PDL", pdl, clock.session_start, pd_reason),
        ("PMH", summary.pm_high, clock.pm_end, pm_reason),
        ("PML", summary.pm_low, clock.pm_end, pm_reason),
        ("ORH", summary.or_high, clock.or_end, or_reason),
        ("ORL", summary.or_low, clock.or_end, or_reason),
    )


def levels_for(summary: SessionSummary, prior: SessionSummary | None, clock: SessionClock) -> tuple[Level, ...]:
    """The session's levels in the order PDH, PDL, PMH, PML, ORH, ORL, omitting missing ones."""
    _check(summary, prior, clock)
    return tuple(
        Level(level_type, price, known_ts)
        for level_type, price, known_ts, _ in _candidates(summary, prior, clock)
        if price is not None
    )


def missing_levels(summary: SessionSummary, prior: SessionSummary | None, clock: SessionClock) -> tuple[str, ...]:
    """``"<TYPE>: <why>"`` for every level ``levels_for`` omits, in the same fixed order."""
    _check(summary, prior, clock)
    return tuple(
        f"{level_type}: {reason}"
        for level_type, price, _, reason in _candidates(summary, prior, clock)
        if price is None
    )
