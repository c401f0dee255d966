"""Parameters of the simulated market and the intraday activity curve.

``MarketParams`` is the single place where the behaviour of the simulated ES market is tuned.
The numba engine cannot take a dataclass, so ``as_array`` flattens it into a float64 vector whose
positions are the ``P_*`` constants below; adding a parameter means adding a field, a constant
and a line in ``as_array``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

(
    P_SIGMA_RW, P_SIGMA_DEV, P_KAPPA, P_TREND_SPEED, P_TREND_MEAN_S, P_OVERNIGHT_GAP,
    P_SPREAD_TICKS, P_BASIS_SIGMA, P_BASIS_KAPPA, P_FRONT_SHARE,
    P_TARGET_LIVE0, P_TARGET_LIVE1, P_DEPTH0, P_DEPTH1,
    P_AGGR_BASE, P_AGGR_GAP, P_AGGR_SKEW, P_SWEEP_PROB, P_IOC_PROB, P_MODIFY_PROB,
    P_MULTI_PROB, P_PARTIAL_CANCEL, P_FLICKER, P_NEAR_TOP_CANCEL, P_NEAR_ADD,
    P_SIZE_MU, P_SIZE_SIGMA, P_BIG_PROB, P_BIG_XM, P_BIG_ALPHA, P_MAX_SIZE,
    P_LAT_MIN_NS, P_LAT_MEAN_NS, P_FLOW_DECAY,
) = range(34)
N_PARAMS = 34


@dataclass(frozen=True)
class MarketParams:
    """How the simulated ES market behaves. Prices are in ticks (0.25 index points).

    The fair price is ``anchor + dev``: the anchor is a random walk with occasional trends
    (regimes that switch about every ``trend_mean_s`` seconds), ``dev`` an Ornstein-Uhlenbeck
    deviation that mean-reverts at rate ``kappa`` per activity-second. Volatility scales with the
    square root of the activity curve, so the open moves more than the pre-market.
    """

    sigma_rw: float = 0.30
    sigma_dev: float = 0.3
    kappa: float = 0.02
    trend_speed: float = 0.03
    trend_mean_s: float = 2700.0
    overnight_gap: float = 6.0
    spread_ticks: float = 200.0
    """ESH6 minus ESZ5, ticks (50 points)."""
    basis_sigma: float = 0.05
    basis_kappa: float = 0.01
    front_share: float = 0.85
    """Share of events on the front contract."""
    target_live0: float = 700.0
    target_live1: float = 220.0
    depth0: float = 38.0
    """Adds spread uniformly over this many levels behind the top (plus a mass at the top)."""
    depth1: float = 26.0
    aggr_base: float = 0.04
    aggr_gap: float = 0.06
    aggr_skew: float = 2.5
    sweep_prob: float = 0.05
    ioc_prob: float = 0.5
    modify_prob: float = 0.07
    multi_prob: float = 0.15
    partial_cancel: float = 0.25
    flicker: float = 0.35
    near_top_cancel: float = 0.35
    near_add: float = 0.55
    size_mu: float = 0.9
    size_sigma: float = 0.9
    big_prob: float = 0.02
    big_xm: float = 50.0
    big_alpha: float = 1.6
    max_size: float = 500.0
    lat_min_ns: float = 2_000.0
    lat_mean_ns: float = 6_000.0
    flow_decay: float = 0.98
    records_per_event: float = 2.0
    """Calibration used to turn ``events_per_day`` (records) into an event rate."""

    def as_array(self) -> np.ndarray:
        """The parameters in ``P_*`` order, for the numba engine."""
        values = [
            self.sigma_rw, self.sigma_dev, self.kappa, self.trend_speed, self.trend_mean_s,
            self.overnight_gap, self.spread_ticks, self.basis_sigma, self.basis_kappa,
            self.front_share, self.target_live0, self.target_live1, self.depth0, self.depth1,
            self.aggr_base, self.aggr_gap, self.aggr_skew, self.sweep_prob, self.ioc_prob,
            self.modify_prob, self.multi_prob, self.partial_cancel, self.flicker,
            self.near_top_cancel, self.near_add, self.size_mu, self.size_sigma, self.big_prob,
            self.big_xm, self.big_alpha, self.max_size, self.lat_min_ns, self.lat_mean_ns,
            self.flow_decay,
        ]
        assert len(values) == N_PARAMS
        return np.array(values, dtype=np.float64)


@njit(cache=True)
def activity(t_s: float, rth_s: float, end_s: float) -> float:
    """Relative event intensity at ``t_s`` seconds after the session start.

    Quiet and slowly rising pre-market with a burst at 08:30 ET (economic releases), a spike at
    the 09:30 open decaying over a few minutes, then a U-shape across regular trading hours.
    """
    if t_s < rth_s:
        base = 0.10 + 0.15 * t_s / rth_s
        return base + 0.8 * np.exp(-(((t_s - (rth_s - 3600.0)) / 150.0) ** 2))
    u = (t_s - rth_s) / (end_s - rth_s)
    return 0.45 + 1.6 * (2.0 * u - 1.0) ** 2 + 3.0 * np.exp(-(t_s - rth_s) / 300.0)


@njit(cache=True)
def activity_integral(rth_s: float, end_s: float) -> float:
    """Integral of ``activity`` over the session in seconds (1-second midpoint rule)."""
    total = 0.0
    n = int(end_s)
    for k in range(n):
        total += activity(k + 0.5, rth_s, end_s)
    return total
