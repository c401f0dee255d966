"""The hook through which a planted signal can steer the simulated market.

The engine calls ``modulate`` before every event with an observation of the front contract's
state and gets back an extra drift for the fair price (ticks per activity-second) and a multiplier
for the event intensity. Today it is neutral. A later change plants a documented relationship (for
example: near a key level, strong buy imbalance and thin asks make a break more likely) by editing
only this function and adding its coefficients to ``MarketParams``.
"""

from __future__ import annotations

from numba import njit

(
    OBS_FAIR, OBS_MID, OBS_SPREAD, OBS_BID_SZ0, OBS_ASK_SZ0, OBS_BID_CT0, OBS_ASK_CT0,
    OBS_FLOW, OBS_T_S, OBS_DAY_OPEN,
) = range(10)
N_OBS = 10
"""Observation vector: fair and mid price (ticks), spread (ticks), size and order count at the best
bid and ask, signed aggressor-volume EMA, seconds since session start, first mid of the day."""


@njit(cache=True)
def modulate(obs, params):
    """Return ``(drift, intensity_multiplier)`` for the next event; neutral: ``(0.0, 1.0)``."""
    return 0.0, 1.0
