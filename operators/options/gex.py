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
(sticky strike), takes the sign change nearest to S and solves it (Newton inside the bracket).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numba import njit

from operators.halves import in_halves
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
    """... this many, evenly spaced, then solves the sign change nearest S to 1e-10 relative."""

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


def carry(model: OptionModel, rate: float, dividend_yield: float) -> float:
    """The cost of carry ``b``: 0 for an option on a future, r − q for an option on a stock."""
    return 0.0 if model == "black76" else rate - dividend_yield


def option_gex(chain: ChainQuotes, second_ns: int, model: OptionModel, cfg: GexConfig,
               dividend_yield: float = 0.0, guess: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per option: ``t_years``, ``iv``, ``gamma``, ``gex`` (0 where σ cannot be implied or OI is 0).
    ``guess``: where each σ search starts (the previous second's; the result is the same σ)."""
    per = option_gex_seconds(chain, np.array([second_ns], np.int64), chain.mid[None, :],
                             chain.underlying_px[None, :], model, cfg, dividend_yield, guess)
    return {name: values[0] for name, values in per.items()}


def option_gex_seconds(chain: ChainQuotes, seconds_ns: np.ndarray, mids: np.ndarray, underlying: np.ndarray,
                       model: OptionModel, cfg: GexConfig, dividend_yield: float = 0.0,
                       guess: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``option_gex`` at several seconds of one listing: ``mids`` and ``underlying`` hold one row
    per second (``chain.mid`` and ``chain.underlying_px`` are not read); each result too. Each
    second's σ search starts at the second before's σ (the first at ``guess``)."""
    n = chain.strike.shape[0]
    call_sign, put_sign = SIGN_CONVENTIONS[cfg.sign_convention]
    start = guess.astype(np.float64) if guess is not None else np.full(n, np.nan)
    seconds = seconds_ns.astype(np.int64)
    s, quotes = np.ascontiguousarray(underlying, np.float64), np.ascontiguousarray(mids, np.float64)
    is_call, strike = chain.is_call.astype(np.bool_), chain.strike.astype(np.float64)
    expiration, oi = chain.expiration_ns.astype(np.int64), chain.open_interest.astype(np.float64)
    multiplier, b = chain.multiplier.astype(np.float64), carry(model, cfg.rate, dividend_yield)
    expiries, expiry_slot = np.unique(expiration, return_inverse=True)
    m = quotes.shape[0]
    t, iv, gamma, gex = np.empty((m, n)), np.empty((m, n)), np.empty((m, n)), np.empty((m, n))

    def options(lo: int, hi: int) -> None:
        _chain_numbers(seconds, s, quotes, is_call, strike, expiry_slot.ravel().astype(np.int64), expiries, oi,
                       multiplier, call_sign, put_sign, cfg.rate, b, cfg.min_years, cfg.min_vol, start, lo, hi,
                       t, iv, gamma, gex)

    in_halves(n, options, units=m * n)
    return {"t_years": t, "iv": iv, "gamma": gamma, "gex": gex}


@njit(cache=True, nogil=True)
def _chain_numbers(seconds: np.ndarray, s: np.ndarray, mids: np.ndarray, is_call: np.ndarray, strike: np.ndarray,
                   expiry_slot: np.ndarray, expiries: np.ndarray, oi: np.ndarray, multiplier: np.ndarray,
                   call_sign: float, put_sign: float, rate: float, b: float, min_years: float, min_vol: float,
                   guess: np.ndarray, lo: int, hi: int, t: np.ndarray, iv: np.ndarray, gamma: np.ndarray,
                   gex: np.ndarray) -> None:
    """Floored time to expiry, σ, Γ (with σ floored) and GEX per second of options ``[lo, hi)``,
    in one pass into the outputs' columns: a chain's second is a few hundred solves, too few to
    pay for a numpy call per step. Each option's search starts from its σ the second before.
    What a solve needs of its expiry (t, e^{(b−r)t}, e^{−rt}, √t) is computed once per expiry and
    second, and ln S once per spot: ln(S/K) = ln S − ln K."""
    last = guess[lo:hi].copy()
    log_k = np.empty(hi - lo)
    for i in range(lo, hi):
        log_k[i - lo] = math.log(strike[i]) if strike[i] > 0.0 and math.isfinite(strike[i]) else math.nan
    e = expiries.shape[0]
    years, carry, disc, root = np.empty(e), np.empty(e), np.empty(e), np.empty(e)
    for j in range(mids.shape[0]):
        for x in range(e):
            tt = max((float(expiries[x]) - float(seconds[j])) / YEAR_NS, min_years)
            years[x], carry[x], disc[x], root[x] = tt, math.exp((b - rate) * tt), math.exp(-rate * tt), math.sqrt(tt)
        known_s, log_s = math.nan, math.nan
        for i in range(lo, hi):
            x = expiry_slot[i]
            tt, spot = years[x], s[j, i]
            sigma, g = math.nan, math.nan
            if spot > 0.0 and math.isfinite(spot) and math.isfinite(log_k[i - lo]):
                if spot != known_s:
                    known_s, log_s = spot, math.log(spot)
                moneyness = log_s - log_k[i - lo]
                sigma = pricing.implied_vol_with(mids[j, i], is_call[i], spot, strike[i], tt, rate, b, last[i - lo],
                                                 carry[x], disc[x], root[x], moneyness)
                if math.isfinite(sigma):
                    g = pricing.gamma_with(spot, tt, b, max(sigma, min_vol), carry[x], root[x], moneyness)
            sign = call_sign if is_call[i] else put_sign
            t[j, i], iv[j, i], gamma[j, i], last[i - lo] = tt, sigma, g, sigma
            gex[j, i] = sign * (0.0 if math.isnan(g) else g) * oi[i] * multiplier[i] * spot * spot * 0.01


def zero_gamma_levels(spots: np.ndarray, grids: np.ndarray, s: np.ndarray, strike: np.ndarray, t: np.ndarray,
                      rate: float, b: float, iv: np.ndarray, is_call: np.ndarray, oi: np.ndarray,
                      multiplier: np.ndarray, call_sign: float, put_sign: float, min_vol: float) -> np.ndarray:
    """``zero_gamma_level`` per second: each option weighs sign × OI × multiplier where its σ is
    known (0 elsewhere), at its σ floored to ``min_vol``; ``s / spot`` maps the underlier's price to
    each option's own underlying. The seconds are independent: two halves run side by side."""
    m, n = iv.shape
    out = np.empty(m)

    def seconds(lo: int, hi: int) -> None:
        _zero_gamma_levels(spots, grids, s, strike, t, rate, b, iv, is_call, oi, multiplier, call_sign, put_sign,
                           min_vol, lo, hi, out)

    in_halves(m, seconds, units=m * n)
    return out


@njit(cache=True, nogil=True)
def _zero_gamma_levels(spots: np.ndarray, grids: np.ndarray, s: np.ndarray, strike: np.ndarray, t: np.ndarray,
                       rate: float, b: float, iv: np.ndarray, is_call: np.ndarray, oi: np.ndarray,
                       multiplier: np.ndarray, call_sign: float, put_sign: float, min_vol: float, lo: int, hi: int,
                       out: np.ndarray) -> None:
    n = iv.shape[1]
    weight, vol, scale = np.empty(n), np.empty(n), np.empty(n)
    for j in range(lo, hi):
        for i in range(n):
            known = math.isfinite(iv[j, i])
            weight[i] = ((call_sign if is_call[i] else put_sign) if known else 0.0) * oi[i] * multiplier[i]
            vol[i] = max(iv[j, i], min_vol) if known else min_vol
            scale[i] = s[j, i] / spots[j]
        out[j] = zero_gamma_level(spots[j], grids[j], scale, strike, t[j], rate, b, vol, weight)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _net(spot: float, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> float:
    return _net_slope(spot, a, w, c)[0]


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def zero_gamma_level(spot: float, grid: np.ndarray, scale: np.ndarray, strike: np.ndarray, t: np.ndarray,
                     rate: float, b: float, vol: np.ndarray, weight: np.ndarray) -> float:
    """The spot where the net GEX changes sign nearest ``spot``: the grid interval of the sign
    change nearest it (the first on a tie), solved to 1e-10 relative (``_root``); NaN when the grid keeps one sign.
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
    return _root(grid[best], grid[best + 1], net[best], net[best + 1], a, w, c)


@njit(cache=True, nogil=True)
def _net_slope(spot: float, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """``_net`` and its derivative in the spot, from the same exponentials: each term is
    c·S·e^{−d²/2} with d = (ln S + a)·w, whose derivative is c·e^{−d²/2}·(1 − d·w)."""
    ln_s, acc, slope = math.log(spot), 0.0, 0.0
    for i in range(a.shape[0]):
        if c[i] != 0.0:
            d1 = (ln_s + a[i]) * w[i]
            term = c[i] * math.exp(-0.5 * d1 * d1)
            acc += term
            slope += term * (1.0 - d1 * w[i])
    return acc * spot, slope


@njit(cache=True, nogil=True)
def _root(lo: float, hi: float, f_lo: float, f_hi: float, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> float:
    """The net GEX's zero in a bracket of its sign change, to 1e-10 relative: Newton's steps on
    the exact derivative (``_net_slope``: no transcendental call beyond the value's own) from the
    secant point, kept inside a bracket that shrinks with every evaluation, bisecting where a step
    would leave it. A grid interval is a small slice of a smooth curve, so two or three steps do
    what Brent's method took about eight repricings of the chain for."""
    if f_hi == 0.0:
        return hi
    if f_lo == 0.0:
        return lo
    x = lo - f_lo * (hi - lo) / (f_hi - f_lo)
    if not lo < x < hi:
        x = 0.5 * (lo + hi)
    for _ in range(100):
        f, slope = _net_slope(x, a, w, c)
        if f == 0.0:
            return x
        if (f < 0.0) == (f_lo < 0.0):
            lo, f_lo = x, f
        else:
            hi = x
        step = f / slope if slope != 0.0 else math.inf
        target = x - step
        if abs(step) <= 0.5e-10 * abs(x) and lo <= target <= hi:
            return target  # what a step this small leaves is its square: far below the tolerance
        x = target if lo < target < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-10 * abs(x):
            return x
    return x


def spot_grid(spot: float, cfg: GexConfig) -> np.ndarray:
    return spot_grids(np.array([spot]), cfg)[0]


def spot_grids(spots: np.ndarray, cfg: GexConfig) -> np.ndarray:
    """The zero-gamma search's spots around each of ``spots``, one row each."""
    spots = np.asarray(spots, np.float64)
    return np.linspace(spots * (1.0 - cfg.grid_pct), spots * (1.0 + cfg.grid_pct), cfg.grid_points, axis=1)
