"""Context series for levels: running session VWAP and trailing moving averages of 1-second rows."""

from __future__ import annotations

import numpy as np

from operators.levels import kernels as k


def running_vwap(price: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Cumulative ``Σ price·volume / Σ volume`` (float64), NaN until some volume has traded.

    Rows with a NaN price or non-positive volume add nothing. The price unit is kept (dollars
    in, dollars out; 1e-9 units in, 1e-9 units out). Pass one session's rows to get the
    session VWAP.
    """
    p = np.asarray(price, np.float64)
    v = np.asarray(volume, np.float64)
    if p.shape != v.shape or p.ndim != 1:
        msg = f"price and volume must be 1-d arrays of equal length, got {p.shape} and {v.shape}"
        raise ValueError(msg)
    ok = ~np.isnan(p) & (v > 0)
    pv = np.cumsum(np.where(ok, p * v, 0.0))
    vol = np.cumsum(np.where(ok, v, 0.0))
    out = np.full(p.shape, np.nan)
    np.divide(pv, vol, out=out, where=vol > 0)
    return out


def moving_average(values: np.ndarray, window_seconds: int) -> np.ndarray:
    """Trailing mean over the last ``window_seconds`` rows (one row per second), ignoring NaNs.

    NaN until ``window_seconds`` rows have been seen, and where the whole window is NaN.
    """
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, (int, np.integer)) or window_seconds < 1:
        msg = f"window_seconds must be an integer >= 1, got {window_seconds!r}"
        raise ValueError(msg)
    x = np.ascontiguousarray(np.asarray(values, np.float64))
    if x.ndim != 1:
        msg = f"values must be a 1-d array, got shape {x.shape}"
        raise ValueError(msg)
    out = np.empty(x.shape, np.float64)
    k.trailing_mean(x, int(window_seconds), out)
    return out
