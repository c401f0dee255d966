"""Numba kernel of level-approach detection: arrays in, preallocated columns out, count back.

State of one detector (owned by ``operators.approach.logic.ApproachDetector``):

- ``istate`` int64[n_levels, N_I]: per level ``I_ARMED`` (0/1), ``I_ARM_TS`` (second it was
  armed), ``I_FAR_TS`` (last second it was >= reset ticks away while known), ``I_FAR_SIDE``
  (sign of mid - level at that second);
- ``fstate`` float64[n_levels, N_F]: per level ``F_MAX_DIST`` (max |distance| in ticks since armed);
- ``ring_ts``/``ring_mid`` [RING]: the last seconds' (ts, mid) for the velocity, slot
  ``(ts // 1e9) % RING``; a NaN mid is stored as NaN and never used as a reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

I_ARMED = 0
I_ARM_TS = 1
I_FAR_TS = 2
I_FAR_SIDE = 3
N_I = 4

F_MAX_DIST = 0
N_F = 1

RING = 32
NS = 1_000_000_000
WINDOW_NS = 30 * NS
NO_TS = np.iinfo(np.int64).min


@njit(cache=True, nogil=True)
def _velocity(ring_ts: np.ndarray, ring_mid: np.ndarray, t: int, m: np.int64, d: int, tick: int) -> float:
    best = t
    ref = 0.0
    for s in range(ring_ts.shape[0]):
        rt = ring_ts[s]
        if rt >= t - WINDOW_NS and rt < best and not np.isnan(ring_mid[s]):
            best = rt
            ref = ring_mid[s]
    if best == t:
        return 0.0
    mref = np.int64(np.rint(ref * 1e9))
    return d * ((m - mref) / tick) / ((t - best) / NS)


@njit(cache=True, nogil=True)
def detect_approaches(
    ts: np.ndarray,
    mid: np.ndarray,
    start: int,
    level_price: np.ndarray,
    known_ts: np.ndarray,
    tick: int,
    approach_ticks: int,
    reset_ticks: int,
    istate: np.ndarray,
    fstate: np.ndarray,
    ring_ts: np.ndarray,
    ring_mid: np.ndarray,
    o_ts: np.ndarray,
    o_level: np.ndarray,
    o_price: np.ndarray,
    o_dir: np.ndarray,
    o_dist: np.ndarray,
    o_secs: np.ndarray,
    o_vel: np.ndarray,
    o_maxd: np.ndarray,
    o_mid: np.ndarray,
) -> tuple[int, int]:
    """Process rows ``start..`` of one (contract, session) 1-second series.

    Stops early, before a row, when the output columns might not hold that row's episodes (one
    per level at most). Returns ``(next_row, n_written)``; call again from ``next_row``.
    """
    n_lv = level_price.shape[0]
    cap = o_ts.shape[0]
    near = approach_ticks * tick
    far = reset_ticks * tick
    n = 0
    i = start
    while i < ts.shape[0]:
        if n + n_lv > cap:
            break
        t = ts[i]
        x = mid[i]
        ok = np.isfinite(x)
        if ok:
            m = np.int64(np.rint(x * 1e9))
            for j in range(n_lv):
                if t < known_ts[j]:
                    continue
                diff = m - level_price[j]
                a = abs(diff)
                dist = a / tick
                if a >= far:
                    if istate[j, I_ARMED] == 0:
                        istate[j, I_ARMED] = 1
                        istate[j, I_ARM_TS] = t
                        fstate[j, F_MAX_DIST] = dist
                    istate[j, I_FAR_TS] = t
                    istate[j, I_FAR_SIDE] = 1 if diff > 0 else -1
                    if dist > fstate[j, F_MAX_DIST]:
                        fstate[j, F_MAX_DIST] = dist
                elif istate[j, I_ARMED] == 1:
                    if dist > fstate[j, F_MAX_DIST]:
                        fstate[j, F_MAX_DIST] = dist
                    if a <= near:
                        if diff < 0:
                            d = 1
                        elif diff > 0:
                            d = -1
                        else:
                            d = -istate[j, I_FAR_SIDE]
                        o_ts[n] = t
                        o_level[n] = j
                        o_price[n] = level_price[j]
                        o_dir[n] = d
                        o_dist[n] = diff / tick
                        o_secs[n] = (t - istate[j, I_FAR_TS]) // NS
                        o_vel[n] = _velocity(ring_ts, ring_mid, t, m, d, tick)
                        o_maxd[n] = fstate[j, F_MAX_DIST]
                        o_mid[n] = x
                        n += 1
                        istate[j, I_ARMED] = 0
        slot = (t // NS) % RING
        ring_ts[slot] = t
        ring_mid[slot] = x if ok else np.nan
        i += 1
    return i, n
