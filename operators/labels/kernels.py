"""Numba kernel of first-crossing labels over all open episodes x one piece of seconds.

Per open episode (owned by ``operators.labels.logic.Labeler``): ``start_ts``, ``level_price``,
``direction``, ``start_px`` (start mid in 1e-9 units) and the running ``mfe``/``mae`` (ticks,
``-inf`` until the first valid row) and ``nsamp`` (valid rows seen after the start).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BREAK = 0
REJECT = 1
CHOP = 2


@njit(cache=True, nogil=True)
def label_piece(
    ts: np.ndarray,
    mid: np.ndarray,
    start_ts: np.ndarray,
    level_price: np.ndarray,
    direction: np.ndarray,
    start_px: np.ndarray,
    mfe: np.ndarray,
    mae: np.ndarray,
    nsamp: np.ndarray,
    tick: int,
    break_ticks: int,
    reject_ticks: int,
    horizon_ns: int,
    o_idx: np.ndarray,
    o_outcome: np.ndarray,
    o_resolved: np.ndarray,
) -> int:
    """Advance every open episode over the rows ``ts``/``mid`` (strictly increasing ts, all
    after the rows of earlier pieces). Writes one output per episode that resolves: its index,
    outcome and resolved ts; ``mfe``/``mae``/``nsamp`` are updated in place. Returns the count."""
    brk = break_ticks * tick
    rej = reject_ticks * tick
    n = 0
    for j in range(start_ts.shape[0]):
        s = start_ts[j]
        end = s + horizon_ns
        d = direction[j]
        lv = level_price[j]
        p0 = start_px[j]
        i = np.searchsorted(ts, s, side="right")
        while i < ts.shape[0]:
            t = ts[i]
            if t > end:
                o_idx[n] = j
                o_outcome[n] = CHOP
                o_resolved[n] = end
                n += 1
                break
            x = mid[i]
            if np.isfinite(x):
                m = np.int64(np.rint(x * 1e9))
                exc = d * (m - p0) / tick
                if nsamp[j] == 0 or exc > mfe[j]:
                    mfe[j] = exc
                adv = 0.0 - exc  # never -0.0
                if nsamp[j] == 0 or adv > mae[j]:
                    mae[j] = adv
                nsamp[j] += 1
                if d * (m - lv) >= brk:
                    o_idx[n] = j
                    o_outcome[n] = BREAK
                    o_resolved[n] = t
                    n += 1
                    break
                if d * (lv - m) >= rej:
                    o_idx[n] = j
                    o_outcome[n] = REJECT
                    o_resolved[n] = t
                    n += 1
                    break
            if t == end:
                o_idx[n] = j
                o_outcome[n] = CHOP
                o_resolved[n] = end
                n += 1
                break
            i += 1
    return n
