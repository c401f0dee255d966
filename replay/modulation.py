"""The hook through which a planted signal can steer the simulated market.

The engine calls ``modulate`` before every event with an observation of the front contract's
state and gets back an extra drift for the fair price (ticks per activity-second) and a multiplier
for the event intensity. Today it is neutral. A later change plants a documented relationship (for
example: near a key level, strong buy imbalance and thin asks make a break more likely) by editing
only this function and adding its coefficients to ``MarketParams``.
"""

from __future__ import annotations

from numba import njit

from replay.market import P_SIG_MAGNET_MAX, P_SIG_MAGNET_RATE, P_SIG_MAX_DRIFT, P_SIG_PULL_RATE

(
    OBS_FAIR, OBS_MID, OBS_SPREAD, OBS_BID_SZ0, OBS_ASK_SZ0, OBS_BID_CT0, OBS_ASK_CT0,
    OBS_FLOW, OBS_T_S, OBS_DAY_OPEN, OBS_SIG_ACTIVE, OBS_SIG_TARGET,
    OBS_SIG_HAS_MAGNET, OBS_SIG_MAGNET,
) = range(14)
N_OBS = 14
"""Observation vector: fair and mid price (ticks), spread (ticks), size and order count at the best
bid and ask, signed aggressor-volume EMA, seconds since session start, first mid of the day, and
the planted signal's episode state (1.0 while a level-approach episode is being realised, and the
price its drawn outcome pulls the fair price to; see ``replay/signal.py``), and whether a level
attracts the price (the nearest armed level within ``magnet_ticks``) and its price."""


@njit(cache=True)
def modulate(obs, params):
    """Return ``(drift, intensity_multiplier)`` for the next event.

    Neutral ``(0.0, 1.0)`` except while a planted level-approach episode runs: then the fair
    price is pulled toward the drawn outcome's target at ``pull_rate`` per second, capped at
    ``max_drift`` ticks per second (BREAK: through the level, REJECT: back away, CHOP: to the level);
    between episodes (09:30-13:30) the nearest armed level attracts it (``magnet_*``).
    """
    if obs[OBS_SIG_ACTIVE] != 0.0:
        v = params[P_SIG_PULL_RATE] * (obs[OBS_SIG_TARGET] - obs[OBS_FAIR])
        m = params[P_SIG_MAX_DRIFT]
        return min(max(v, -m), m), 1.0
    if obs[OBS_SIG_HAS_MAGNET] != 0.0:
        v = params[P_SIG_MAGNET_RATE] * (obs[OBS_SIG_MAGNET] - obs[OBS_FAIR])
        m = params[P_SIG_MAGNET_MAX]
        return min(max(v, -m), m), 1.0
    return 0.0, 1.0
