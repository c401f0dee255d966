"""The options block of a setup vector (12 values): what the underlier's option chain says about
the level at the episode's start, from the chain's last profile at or before it
(``operators.options.profile``). Without a chain the block is zeros, its flag included.

"Near the level" is every listed strike within ``NEAR_FRACTION`` of the level's price (±0.5 %:
about ±30 points for ES, a dozen strikes at 5-point spacing). GEX is in billions of dollars per
1 % move under the run's dealer sign convention; open interest and volume in thousands of
contracts; imbalances are (call − put) / (call + put), 0 when both are 0.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from operators.options.profile import GexProfile

OPTIONS_NAMES: Final = (
    "options_net_gex_near_bn",         # net GEX of the strikes near the level
    "options_net_gex_bn",              # net GEX of the whole chain
    "options_gex_at_level_strike_bn",  # net GEX of the strike nearest the level
    "options_zero_gamma_ahead_ticks",  # direction × (zero gamma − level) / tick: > 0 beyond the level
    "options_level_above_zero_gamma",  # +1 the level is above the zero-gamma level, −1 below, 0 none
    "options_call_oi_near_k",
    "options_put_oi_near_k",
    "options_oi_imbalance_near",
    "options_volume_near_k",           # session volume so far, calls and puts near the level
    "options_volume_imbalance_near",
    "options_skew",                    # σ(2 % OTM put) − σ(2 % OTM call) (``operators.options.profile``)
    "options_available",               # 1 when a chain profile was known at the start
)
NEAR_FRACTION: Final = 0.005


def _imbalance(calls: float, puts: float) -> float:
    total = calls + puts
    return (calls - puts) / total if total > 0 else 0.0


def options_block(profile: GexProfile | None, level_price: float, direction: int, tick: float) -> np.ndarray:
    """float64[12] for one episode (``OPTIONS_NAMES``); ``level_price`` and ``tick`` in price units."""
    out = np.zeros(len(OPTIONS_NAMES))
    if profile is None or profile.strikes.size == 0:
        return out
    strikes = profile.strikes
    near = np.abs(strikes - level_price) <= NEAR_FRACTION * level_price
    at = int(np.argmin(np.abs(strikes - level_price)))
    call_oi, put_oi = float(profile.call_oi[near].sum()), float(profile.put_oi[near].sum())
    call_vol, put_vol = float(profile.call_volume[near].sum()), float(profile.put_volume[near].sum())
    out[0] = profile.net_gex[near].sum() / 1e9
    out[1] = profile.net_gex.sum() / 1e9
    out[2] = profile.net_gex[at] / 1e9
    if math.isfinite(profile.zero_gamma):
        out[3] = direction * (profile.zero_gamma - level_price) / tick
        out[4] = float(np.sign(level_price - profile.zero_gamma))
    out[5], out[6], out[7] = call_oi / 1e3, put_oi / 1e3, _imbalance(call_oi, put_oi)
    out[8], out[9] = (call_vol + put_vol) / 1e3, _imbalance(call_vol, put_vol)
    out[10] = profile.skew if math.isfinite(profile.skew) else 0.0
    out[11] = 1.0
    return out
