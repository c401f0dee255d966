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
    P_SIG_ENABLED, P_SIG_APPROACH, P_SIG_RESET, P_SIG_OUTCOME, P_SIG_HORIZON_S, P_SIG_WINDOW_S,
    P_SIG_FLOW_TAU_S, P_SIG_LIQ_TICKS, P_SIG_LIQ_REF_TICKS, P_SIG_TEMPERATURE,
    P_SIG_BIAS_BREAK, P_SIG_FLOW_BREAK, P_SIG_LIQ_BREAK,
    P_SIG_BIAS_REJECT, P_SIG_FLOW_REJECT, P_SIG_LIQ_REJECT,
    P_SIG_TARGET_TICKS, P_SIG_PULL_RATE, P_SIG_MAX_DRIFT,
    P_SIG_PREP_TICKS, P_SIG_FLOW_RATE, P_SIG_WALL_RATE, P_SIG_THIN_RATE, P_SIG_DEV_SCALE,
    P_SIG_FLOW_CENTER, P_SIG_FLOW_SCALE, P_SIG_LIQ_CENTER, P_SIG_LIQ_SCALE,
    P_SIG_MAGNET_TICKS, P_SIG_MAGNET_RATE, P_SIG_MAGNET_MAX,
) = range(65)
N_PARAMS = 65


@dataclass(frozen=True)
class SignalParams:
    """The planted level-approach signal (docs/simulator.md has the full model).

    On the front contract the simulator tracks the six key levels from its own trades (PDH/PDL,
    PMH/PML, ORH/ORL). An *approach* starts when the mid comes within ``approach_ticks`` of a
    known level after having been at least ``reset_ticks`` away. Its outcome is drawn from a
    multinomial logit on two order-flow inputs measured at the start (CHOP is the reference class)::

        x_flow = direction * S / (A + 1)         # time-decayed (tau = flow_tau_s) signed / absolute
                                                 # aggressor volume, in [-1, 1]
        x_liq  = log((behind + 1) / (ref + 1))   # resting size at the level and the next
                                                 # liq_ticks-1 ticks beyond it vs. a typical size
        f, l = (x_flow - flow_center) / flow_scale, (x_liq - liq_center) / liq_scale
        z_BREAK  = (bias_break  + flow_break  * f + liq_break  * l) / temperature
        z_REJECT = (bias_reject + flow_reject * f + liq_reject * l) / temperature
        z_CHOP   = 0

    and realised for ``horizon_s`` seconds by a drift pulling the fair price to
    ``level + direction * target_ticks`` (BREAK), ``level - direction * target_ticks`` (REJECT) or
    ``level`` (CHOP) at ``pull_rate`` per second (capped at ``max_drift`` ticks/s), on top of the
    usual noise. Before an approach, per-level random regimes (drawn when the level arms) tilt the
    aggressive flow toward/away from the level (``flow_rate``) and thicken (``wall_rate``) or thin
    (``thin_rate``) the resting liquidity behind it, so that both inputs vary.
    ``enabled=False`` gives the neutral market (no level logic touches the random stream).
    """

    enabled: bool = True
    approach_ticks: float = 4.0
    reset_ticks: float = 12.0
    outcome_ticks: float = 8.0
    """Ticks through the level (BREAK) or back away from it (REJECT) that resolve an episode."""
    horizon_s: float = 300.0
    window_s: float = 14_400.0
    """Approaches are handled from 09:30 ET for this many seconds (09:30-13:30)."""
    flow_tau_s: float = 45.0
    liq_ticks: float = 4.0
    liq_ref_ticks: float = 10.0
    """The typical size per tick is the mean resting size over this many ticks behind each best."""
    temperature: float = 1.0
    bias_break: float = -0.5
    flow_break: float = 1.5
    liq_break: float = -1.0
    bias_reject: float = -0.5
    flow_reject: float = -1.5
    liq_reject: float = 1.0
    target_ticks: float = 14.0
    pull_rate: float = 1.0 / 15.0
    max_drift: float = 2.0
    prep_ticks: float = 12.0
    """The pre-approach regimes act while an armed level is at most this far from the mid."""
    flow_rate: float = 0.4
    """Per front event while a level is pending: chance ``min(flow_rate * |g|, 0.5)`` of an extra
    aggressive order toward the level (regime ``g > 0``) or away from it (``g < 0``)."""
    wall_rate: float = 0.25
    thin_rate: float = 0.25
    dev_scale: float = 0.3
    """While an episode runs, the fair price's fast OU deviation gets noise x ``dev_scale`` and
    mean-reversion rate / ``dev_scale`` so that the drawn outcome is mostly what happens."""
    flow_center: float = 0.4
    flow_scale: float = 0.47
    liq_center: float = 0.15
    liq_scale: float = 1.15
    """The logit uses standardised inputs ``(x - center) / scale``."""
    magnet_ticks: float = 60.0
    magnet_rate: float = 1.0 / 600.0
    magnet_max: float = 0.2
    """Outside episodes (09:30-13:30), the nearest armed level within ``magnet_ticks`` attracts the
    fair price at ``magnet_rate`` per second (at most ``magnet_max`` ticks/s): levels get visited."""

    def as_list(self) -> list[float]:
        return [
            float(self.enabled), self.approach_ticks, self.reset_ticks, self.outcome_ticks,
            self.horizon_s, self.window_s, self.flow_tau_s, self.liq_ticks, self.liq_ref_ticks,
            self.temperature, self.bias_break, self.flow_break, self.liq_break,
            self.bias_reject, self.flow_reject, self.liq_reject,
            self.target_ticks, self.pull_rate, self.max_drift,
            self.prep_ticks, self.flow_rate, self.wall_rate, self.thin_rate, self.dev_scale,
            self.flow_center, self.flow_scale, self.liq_center, self.liq_scale,
            self.magnet_ticks, self.magnet_rate, self.magnet_max,
        ]


@dataclass(frozen=True)
class MarketParams:
    """How the simulated ES market behaves. Prices are in ticks (0.25 index points).

    The fair price is ``anchor + dev``: the anchor is a random walk with occasional trends
    (regimes that switch about every ``trend_mean_s`` seconds), ``dev`` an Ornstein-Uhlenbeck
    deviation that mean-reverts at rate ``kappa`` per activity-second. Volatility scales with the
    square root of the activity curve, so the open moves more than the pre-market.
    """

    sigma_rw: float = 0.35
    sigma_dev: float = 0.5
    kappa: float = 0.003
    trend_speed: float = 0.01
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
    signal: SignalParams = SignalParams()
    """The planted level-approach signal; ``SignalParams(enabled=False)`` for a neutral market."""

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
            *self.signal.as_list(),
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
