"""Gamma exposure (GEX) of one underlier's option chain at one second: per strike and in summary.

Per option: σ is implied from its mid (``pricing.implied_vol``, on the option's own underlying
price), Γ from σ, and

    GEX = sign × Γ × OI × multiplier × S² × 0.01

— dollars of underlying the dealers must trade per 1 % move of S. The dealer sign is a choice
(``SIGN_CONVENTIONS``) written into every row. Open interest is the prior session's (the caller's
job: it passes what was published before the session began).

Floors keep 0DTE gamma finite: time to expiry is at least ``min_years`` and the σ that gamma uses
at least ``min_vol``. Each surface row holds every input it was computed from (the floored time,
the solved σ and the floor, the mids, OI, multiplier, rate, carry), so ``recompute`` — or anyone —
gets the same numbers back.

The zero-gamma level re-prices the chain over a grid of spots around S with each option's σ held
(sticky strike), takes the sign change nearest to S and bisects it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numba import njit

from operators.options import pricing

SignConvention = Literal["dealer_long_calls_short_puts", "dealer_short", "dealer_long"]
SIGN_CONVENTIONS: Final[dict[str, tuple[float, float]]] = {
    # (call sign, put sign): customers sell calls and buy puts, so dealers are long calls and short
    # puts (the usual published GEX); or dealers short (long) every option they hold
    "dealer_long_calls_short_puts": (1.0, -1.0),
    "dealer_short": (-1.0, -1.0),
    "dealer_long": (1.0, 1.0),
}
_SQRT_2PI: Final = math.sqrt(2.0 * math.pi)
YEAR_NS: Final = 365 * 86_400 * 1_000_000_000
"""Time to expiry in years: calendar time, ACT/365."""
OptionModel = Literal["black76", "bsm"]


@dataclass(frozen=True, slots=True)
class GexConfig:
    rate: float = 0.04
    """Continuously compounded risk-free rate (discounting; and the stock's carry under BSM)."""
    sign_convention: SignConvention = "dealer_long_calls_short_puts"
    min_years: float = 1.0 / (365 * 24)
    """Time-to-expiry floor: one hour, so an expiring option's gamma stays finite."""
    min_vol: float = 0.05
    """The lowest σ gamma is computed with."""
    grid_pct: float = 0.05
    """The zero-gamma search re-prices the chain at spots over S × (1 ± grid_pct) ..."""
    grid_points: int = 41
    """... this many, evenly spaced, then bisects the sign change nearest S to 1e-10."""

    def __post_init__(self) -> None:
        if self.sign_convention not in SIGN_CONVENTIONS:
            msg = f"sign_convention must be one of {sorted(SIGN_CONVENTIONS)}, got {self.sign_convention!r}"
            raise ValueError(msg)
        if self.min_years <= 0 or self.min_vol <= 0 or self.grid_pct <= 0 or self.grid_points < 3:
            msg = f"GexConfig floors and grid must be positive (grid_points >= 3), got {self}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class ChainQuotes:
    """One underlier's listed options at one second, one entry per option (numpy arrays)."""

    expiration_ns: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    """bool"""
    mid: np.ndarray
    """The option's mid (NaN: no two-sided quote)."""
    open_interest: np.ndarray
    """As of the prior session."""
    multiplier: np.ndarray
    underlying_px: np.ndarray
    """The option's own underlying price (the future's or the stock's mid)."""


def years_to_expiry(expiration_ns: np.ndarray, second_ns: int, min_years: float) -> np.ndarray:
    return np.maximum((expiration_ns.astype(np.float64) - second_ns) / YEAR_NS, min_years)


def carry(model: OptionModel, rate: float, dividend_yield: float) -> float:
    """The cost of carry ``b``: 0 for an option on a future, r − q for an option on a stock."""
    return 0.0 if model == "black76" else rate - dividend_yield


def option_gex(chain: ChainQuotes, second_ns: int, model: OptionModel, cfg: GexConfig,
               dividend_yield: float = 0.0, guess: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per option: ``t_years``, ``iv``, ``gamma``, ``gex`` (0 where σ cannot be implied or OI is 0).
    ``guess``: where each σ search starts (the previous second's; the result is the same σ)."""
    b = carry(model, cfg.rate, dividend_yield)
    t = years_to_expiry(chain.expiration_ns, second_ns, cfg.min_years)
    carries = np.full(t.shape[0], b)
    iv = pricing.implied_vols(chain.mid.astype(np.float64), chain.is_call.astype(np.bool_),
                              chain.underlying_px.astype(np.float64), chain.strike.astype(np.float64), t,
                              cfg.rate, carries, guess if guess is not None else np.full(t.shape[0], np.nan))
    gamma = pricing.gammas(chain.underlying_px.astype(np.float64), chain.strike.astype(np.float64), t, cfg.rate,
                           carries, np.where(np.isnan(iv), np.nan, np.maximum(iv, cfg.min_vol)))
    call_sign, put_sign = SIGN_CONVENTIONS[cfg.sign_convention]
    sign = np.where(chain.is_call, call_sign, put_sign)
    s = chain.underlying_px.astype(np.float64)
    gex = sign * np.where(np.isnan(gamma), 0.0, gamma) * chain.open_interest * chain.multiplier * s * s * 0.01
    return {"t_years": t, "iv": iv, "gamma": gamma, "gex": gex}


@njit(cache=True)
def _terms(scale: np.ndarray, strike: np.ndarray, t: np.ndarray, rate: float, b: float, vol: np.ndarray,
           weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per option, what does not move with the spot: Γ(S)·S²·0.01 = c·S·exp(−½((ln S + a)·w)²)."""
    n = strike.shape[0]
    a, w, c = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        if weight[i] == 0.0 or t[i] <= 0.0 or vol[i] <= 0.0:
            continue
        v = vol[i] * math.sqrt(t[i])
        a[i] = math.log(scale[i]) - math.log(strike[i]) + (b + 0.5 * vol[i] * vol[i]) * t[i]
        w[i] = 1.0 / v
        c[i] = weight[i] * math.exp((b - rate) * t[i]) * scale[i] * 0.01 / (v * _SQRT_2PI)
    return a, w, c


@njit(cache=True)
def _net(spot: float, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> float:
    ln_s, acc = math.log(spot), 0.0
    for i in range(a.shape[0]):
        if c[i] != 0.0:
            d1 = (ln_s + a[i]) * w[i]
            acc += c[i] * math.exp(-0.5 * d1 * d1)
    return acc * spot


@njit(cache=True)
def net_gex_on_grid(spots: np.ndarray, scale: np.ndarray, strike: np.ndarray, t: np.ndarray, rate: float,
                    b: float, vol: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Σ weight × Γ(S') × S'² × 0.01 over the options at each grid spot, where option i's
    underlying moves to ``spots[j] × scale[i]`` (``scale`` maps the underlier's price to the
    option's own underlying) and ``weight`` = sign × OI × multiplier (0 where σ is unknown)."""
    a, w, c = _terms(scale, strike, t, rate, b, vol, weight)
    out = np.zeros(spots.shape[0])
    for j in range(spots.shape[0]):
        out[j] = _net(spots[j], a, w, c)
    return out


@njit(cache=True)
def zero_gamma_level(spot: float, grid: np.ndarray, scale: np.ndarray, strike: np.ndarray, t: np.ndarray,
                     rate: float, b: float, vol: np.ndarray, weight: np.ndarray) -> float:
    """The spot where the net GEX changes sign nearest ``spot``: the grid interval of the sign
    change nearest it (the first on a tie), bisected to 1e-10; NaN when the grid keeps one sign.
    The per-option terms are computed once for the grid and the bisection, and the grid's net GEX
    only as far out from ``spot`` as the nearest sign change: intervals are tried nearest first."""
    a, w, c = _terms(scale, strike, t, rate, b, vol, weight)
    n = grid.shape[0]
    net = np.empty(n)
    known = np.zeros(n, np.bool_)
    distance = np.empty(n - 1)
    for j in range(n - 1):
        distance[j] = abs(0.5 * (grid[j] + grid[j + 1]) - spot)
    best = -1
    for j in np.argsort(distance, kind="mergesort"):  # nearest first; the lower interval on a tie
        for k in (j, j + 1):
            if not known[k]:
                net[k], known[k] = _net(grid[k], a, w, c), True
        s0, s1 = np.sign(net[j]), np.sign(net[j + 1])
        if s0 * s1 < 0 or (s0 != 0 and s1 == 0):
            best = j
            break
    if best < 0:
        return math.nan
    lo, hi, f_lo = grid[best], grid[best + 1], net[best]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        f_mid = _net(mid, a, w, c)
        if f_mid == 0.0:
            return mid
        if (f_mid < 0.0) == (f_lo < 0.0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
        if hi - lo <= 1e-10 * hi:
            break
    return 0.5 * (lo + hi)


def spot_grid(spot: float, cfg: GexConfig) -> np.ndarray:
    return np.linspace(spot * (1.0 - cfg.grid_pct), spot * (1.0 + cfg.grid_pct), cfg.grid_points)
