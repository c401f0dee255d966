"""Compute the setup vectors of a session's episodes (layout in ``operators.vectors.layout``)."""

from __future__ import annotations

import numpy as np

from operators.bars.dtypes import BAR_DTYPE
from operators.vectors.layout import (
    ACCEL_WINDOWS_S,
    BAR_FEATURES,
    BAR_WINDOWS_S,
    LEVEL_TYPES,
    OPTIONS_BLOCK,
    VECTOR_SIZE,
    VELOCITY_WINDOWS_S,
)

NS = 1_000_000_000

_ORIENTED_SOURCE = ("flow_net_aggressor_volume", "flow_ofi", "ladder_ask_depth_10", "ladder_bid_depth_10")
VECTOR_BAR_FIELDS = ("ts", *BAR_FEATURES)
"""The columns of a 5-second bar that ``setup_vectors`` reads (the oriented block's sources are
among ``BAR_FEATURES``)."""
if not set(_ORIENTED_SOURCE) <= set(BAR_FEATURES):  # pragma: no cover - a layout edit would trip it
    msg = "the oriented block reads bar columns that VECTOR_BAR_FIELDS leaves out"
    raise RuntimeError(msg)
VECTOR_BAR_DTYPE = np.dtype([(name, BAR_DTYPE[name]) for name in VECTOR_BAR_FIELDS])
LOOKBACK_NS = max(*VELOCITY_WINDOWS_S, *ACCEL_WINDOWS_S, *BAR_WINDOWS_S) * 1_000_000_000
"""How far before its start a vector reads: velocities read the mid at ``start - w``, an
acceleration's early half ends at ``start - w``, and bar means cover ``(start - w, start]``."""


def vector_bars(bars: np.ndarray) -> np.ndarray:
    """A packed copy of only the bar columns vectors read.

    A live session keeps every bar it has seen for the vectors still to come, and that state is
    snapshotted at every epoch: 25 of the bar's 77 columns keep it a third of the size.
    """
    out = np.empty(len(bars), VECTOR_BAR_DTYPE)
    for name in VECTOR_BAR_FIELDS:
        out[name] = bars[name]
    return out


def vector_history(ts: np.ndarray, mid: np.ndarray, bars: np.ndarray,
                   last_ts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The part of a session's rows and bars that ``setup_vectors`` can still read for an episode
    starting after ``last_ts`` (the last row fed): rows after ``last_ts - LOOKBACK_NS`` and the
    last row at or before it (a mid is the last row at or before an instant, which a gap in the
    series can put far back), and bars closing after it.

    A live session keeps only this between pieces, so its snapshot every epoch stays a few
    minutes of rows instead of growing with the session.
    """
    cutoff = last_ts - LOOKBACK_NS
    first_row = max(int(np.searchsorted(ts, cutoff, side="right")) - 1, 0)
    first_bar = int(np.searchsorted(bars["ts"], cutoff, side="right"))
    return ts[first_row:], mid[first_row:], bars[first_bar:]


def _mid_at(ts: np.ndarray, mid: np.ndarray, at: int) -> float:
    """The mid of the last row at or before ``at`` (NaN if none)."""
    i = int(np.searchsorted(ts, at, side="right")) - 1
    return float(mid[i]) if i >= 0 else float("nan")


def _velocity(ts: np.ndarray, mid: np.ndarray, end: int, seconds: int, direction: int, tick: float) -> float:
    now, then = _mid_at(ts, mid, end), _mid_at(ts, mid, end - seconds * NS)
    if not (np.isfinite(now) and np.isfinite(then)):
        return 0.0
    return direction * (now - then) / tick / seconds


def _window_means(bars: np.ndarray, end: int, seconds: int, columns: np.ndarray) -> np.ndarray:
    """Mean of each column over bars closed in (end - seconds, end]; zeros when there is none."""
    lo = int(np.searchsorted(bars["ts"], end - seconds * NS, side="right"))
    hi = int(np.searchsorted(bars["ts"], end, side="right"))
    if hi <= lo:
        return np.zeros(columns.shape[1])
    block = columns[lo:hi]
    finite = np.isfinite(block)
    count = finite.sum(axis=0)
    total = np.where(finite, block, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.zeros(columns.shape[1]), where=count > 0)


def setup_vectors(
    episodes: np.ndarray,
    level_types: tuple[str, ...],
    level_known_ts: np.ndarray,
    ts: np.ndarray,
    mid: np.ndarray,
    bars: np.ndarray,
    rth_open_ns: int,
    tick_dollars: float,
    options: np.ndarray | None = None,
) -> np.ndarray:
    """float32[n_episodes, VECTOR_SIZE]: one row per episode (``operators.approach`` rows).

    ``ts``/``mid`` are the session's 1-second rows and ``bars`` its closed 5-second bars (sorted by
    close time; ``BAR_DTYPE`` or just ``VECTOR_BAR_FIELDS``); only the parts at or before each
    episode's start are read. ``options``: each episode's options block
    (``operators.vectors.options.options_block``); zeros when None.
    """
    out = np.zeros((len(episodes), VECTOR_SIZE), np.float32)
    features = (np.column_stack([bars[f].astype(np.float64) for f in BAR_FEATURES]) if len(bars)
                else np.zeros((0, len(BAR_FEATURES))))
    oriented_src = (
        np.column_stack([bars[name] for name in _ORIENTED_SOURCE]).astype(np.float64)
        if len(bars) else np.zeros((0, 4))
    )
    for row, ep in enumerate(episodes):
        start, d = int(ep["start_ts"]), int(ep["direction"])
        vec: list[float] = [float(ep["distance_ticks"]), abs(float(ep["distance_ticks"]))]
        vec += [_velocity(ts, mid, start, w, d, tick_dollars) for w in VELOCITY_WINDOWS_S]
        for w in ACCEL_WINDOWS_S:
            half = w // 2
            late = _velocity(ts, mid, start, half, d, tick_dollars)
            early = _velocity(ts, mid, start - half * NS, w - half, d, tick_dollars)
            vec.append(late - early)
        vec += [(start - int(level_known_ts[row])) / NS, (start - rth_open_ns) / NS]
        vec += [1.0 if level_types[row] == t else 0.0 for t in LEVEL_TYPES]
        vec.append(float(d))
        for w in BAR_WINDOWS_S:
            vec += list(_window_means(bars, start, w, features))
        for w in BAR_WINDOWS_S:
            flow, ofi, ask, bid = _window_means(bars, start, w, oriented_src)
            ahead, behind = (ask, bid) if d > 0 else (bid, ask)
            vec += [d * flow, d * ofi, ahead, behind]
        vec += list(options[row]) if options is not None else [0.0] * OPTIONS_BLOCK
        out[row] = np.nan_to_num(np.asarray(vec, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return out
