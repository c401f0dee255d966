"""Numba kernels of ``operators.levels``: window extremes of 1-second rows, trailing means.

Kernels take arrays and scalars, write into caller-owned buffers and allocate nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

UNDEF = np.iinfo(np.int64).max
"""Trade price of a second without trades."""

# Columns of the ``ext`` buffer of ``window_extremes`` (int64[n_windows, 5]).
E_TRADE_HIGH = 0  # max trade_high over the window (valid when E_TRADES > 0)
E_TRADE_LOW = 1  # min trade_low over the window (valid when E_TRADES > 0)
E_TRADES = 2  # rows in the window with at least one defined trade price
E_ROWS = 3  # rows in the window
E_MIDS = 4  # rows in the window with a defined (non-NaN) mid
# Columns of the ``mid_ext`` buffer (float64[n_windows, 2]).
M_HIGH = 0
M_LOW = 1


@njit(cache=True, nogil=True)
def window_extremes(
    ts: np.ndarray,
    trade_high: np.ndarray,
    trade_low: np.ndarray,
    mid: np.ndarray,
    row_ns: int,
    starts: np.ndarray,
    ends: np.ndarray,
    ext: np.ndarray,
    mid_ext: np.ndarray,
) -> int:
    """Trade and mid extremes of each window ``[starts[w], ends[w])`` in one pass over the rows.

    The row at ``ts[i]`` covers ``[ts[i] - row_ns, ts[i])``; it belongs to a window when that
    interval lies inside the window. ``UNDEF`` trade prices and NaN mids are missing. Returns
    the number of rows that fell in at least one window.
    """
    n_win = starts.shape[0]
    for w in range(n_win):
        ext[w, E_TRADE_HIGH] = -UNDEF
        ext[w, E_TRADE_LOW] = UNDEF
        ext[w, E_TRADES] = 0
        ext[w, E_ROWS] = 0
        ext[w, E_MIDS] = 0
        mid_ext[w, M_HIGH] = -math.inf
        mid_ext[w, M_LOW] = math.inf
    used = 0
    for i in range(ts.shape[0]):
        end = ts[i]
        start = end - row_ns
        hi = trade_high[i]
        lo = trade_low[i]
        m = mid[i]
        hit = False
        for w in range(n_win):
            if start >= starts[w] and end <= ends[w]:
                hit = True
                ext[w, E_ROWS] += 1
                traded = False
                if hi != UNDEF:
                    traded = True
                    if hi > ext[w, E_TRADE_HIGH]:
                        ext[w, E_TRADE_HIGH] = hi
                if lo != UNDEF:
                    traded = True
                    if lo < ext[w, E_TRADE_LOW]:
                        ext[w, E_TRADE_LOW] = lo
                if traded:
                    ext[w, E_TRADES] += 1
                if not math.isnan(m):
                    ext[w, E_MIDS] += 1
                    if m > mid_ext[w, M_HIGH]:
                        mid_ext[w, M_HIGH] = m
                    if m < mid_ext[w, M_LOW]:
                        mid_ext[w, M_LOW] = m
        if hit:
            used += 1
    return used


@njit(cache=True, nogil=True)
def trailing_mean(values: np.ndarray, window: int, out: np.ndarray) -> int:
    """``out[i]`` = mean of the non-NaN values in rows ``i - window + 1 .. i``.

    NaN before ``window`` rows have been seen and when the whole window is NaN. The running sum
    is recomputed from scratch every ``window`` rows so that rounding drift stays bounded.
    Returns the number of finite outputs.
    """
    total = 0.0
    count = 0
    finite = 0
    for i in range(values.shape[0]):
        v = values[i]
        if not math.isnan(v):
            total += v
            count += 1
        if i >= window:
            old = values[i - window]
            if not math.isnan(old):
                total -= old
                count -= 1
        if i >= window and i % window == 0:
            total = 0.0
            for j in range(i - window + 1, i + 1):
                if not math.isnan(values[j]):
                    total += values[j]
        if i + 1 < window or count == 0:
            out[i] = math.nan
        else:
            out[i] = total / count
            finite += 1
    return finite
