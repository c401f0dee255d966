"""Black-76 and Black-Scholes-Merton: price, gamma and implied volatility, as numba kernels.

Both models are the generalized Black-Scholes formula with a cost of carry ``b``:

    d1 = (ln(S/K) + (b + σ²/2) t) / (σ √t),  d2 = d1 − σ √t
    call = S e^{(b−r)t} N(d1) − K e^{−rt} N(d2)
    put  = K e^{−rt} N(−d2) − S e^{(b−r)t} N(−d1)
    gamma = e^{(b−r)t} φ(d1) / (S σ √t)        (the same for a call and a put)

Black-76 (an option on a future, CME's ES options) is ``b = 0`` with ``S`` the future's price;
Black-Scholes-Merton (an equity option) is ``b = r − q`` with ``S`` the stock price and ``q`` a
continuous dividend yield. US equity options are American: the European formula ignores the
early-exercise premium, which is small for calls on a non-dividend stock (none, in fact) and for
near-the-money puts at short expiries, and grows for deep in-the-money puts; implied vols of such
puts come out a little high, and so their gamma a little low. The GEX surface uses the chain near
spot, where the difference is smallest.

The implied volatility is solved on the out-of-the-money side (an in-the-money premium is moved
there by put-call parity: its time value is all the σ information it has, and solving on the
whole premium loses it in rounding), by safeguarded Halley steps (Newton's, corrected by the
curvature ∂²price/∂σ² = vega·d1·d2/σ, which costs no further transcendental call) inside a
bracket that bisection keeps shrinking, so it converges for every price inside the no-arbitrage
bounds (and is NaN outside them, never a guess).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numba import njit

VOL_LOW: Final = 1e-4
"""The bracket the implied-vol solver searches: 0.01 % to 1,000 % a year."""
VOL_HIGH: Final = 10.0
STEP_DONE: Final = 1e-5
"""A Halley step smaller than this fraction of σ is taken without pricing again: Halley converges
cubically, so the error left is about the step cubed (1e-15). On the options bench day's
warm-started solves (σ from the second before) Halley's steps with this stop price 2.0 times per
solve where Newton's, stopped at 1e-8, priced 2.9 times; the σ found agree to 3e-12 relative."""
_SQRT2: Final = math.sqrt(2.0)
_INV_SQRT2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True, nogil=True)
def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True, nogil=True)
def norm_pdf(x: float) -> float:
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


@njit(cache=True, nogil=True)
def price(is_call: bool, s: float, k: float, t: float, r: float, b: float, sigma: float) -> float:
    """The generalized Black-Scholes price (``b = 0``: Black-76; ``b = r − q``: BSM)."""
    carry, disc = math.exp((b - r) * t), math.exp(-r * t)
    if t <= 0.0 or sigma <= 0.0:
        forward_value = s * carry - k * disc
        return max(forward_value, 0.0) if is_call else max(-forward_value, 0.0)
    vol = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (b + 0.5 * sigma * sigma) * t) / vol
    d2 = d1 - vol
    if is_call:
        return s * carry * norm_cdf(d1) - k * disc * norm_cdf(d2)
    return k * disc * norm_cdf(-d2) - s * carry * norm_cdf(-d1)


@njit(cache=True, nogil=True)
def gamma(s: float, k: float, t: float, r: float, b: float, sigma: float) -> float:
    """∂²price/∂S², per unit of the underlying, the same for a call and a put."""
    if t <= 0.0 or sigma <= 0.0:
        return 0.0
    return gamma_with(s, t, b, sigma, math.exp((b - r) * t), math.sqrt(t), math.log(s / k))


@njit(cache=True, nogil=True)
def vega(s: float, k: float, t: float, r: float, b: float, sigma: float) -> float:
    """∂price/∂σ (per unit of vol, not per vol point)."""
    vol = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (b + 0.5 * sigma * sigma) * t) / vol
    return s * math.exp((b - r) * t) * norm_pdf(d1) * math.sqrt(t)


@njit(cache=True, nogil=True)
def implied_vol(premium: float, is_call: bool, s: float, k: float, t: float, r: float, b: float) -> float:
    """σ such that ``price(σ) == premium`` to about 1e-12 relative, or NaN when no σ in
    [VOL_LOW, VOL_HIGH] gives it (at or below intrinsic value, above the price's upper bound,
    no time left, or a non-finite input)."""
    return implied_vol_from(premium, is_call, s, k, t, r, b, math.nan)


@njit(cache=True, nogil=True)
def implied_vol_from(premium: float, is_call: bool, s: float, k: float, t: float, r: float, b: float,
                     guess: float) -> float:
    """``implied_vol`` with Newton started at ``guess`` (a previous second's σ; NaN: none)."""
    if not (math.isfinite(s) and math.isfinite(k)) or t <= 0.0 or s <= 0.0 or k <= 0.0:
        return math.nan
    return implied_vol_with(premium, is_call, s, k, t, r, b, guess, math.exp((b - r) * t), math.exp(-r * t),
                            math.sqrt(t), math.log(s / k))


@njit(cache=True, nogil=True)
def implied_vol_with(premium: float, is_call: bool, s: float, k: float, t: float, r: float, b: float, guess: float,
                     carry: float, disc: float, root_t: float, moneyness: float) -> float:
    """``implied_vol_from`` given what does not move with σ: ``carry`` e^{(b−r)t}, ``disc`` e^{−rt},
    √t and ln(S/K). A chain's options share them by expiry and spot, so a chain's kernel computes
    them once per expiry and second (they were half the transcendental calls of a solve); ``s``,
    ``k`` and ``t`` must be finite and positive."""
    if not math.isfinite(premium):
        return math.nan
    parity = s * carry - k * disc  # call − put, the same for every σ
    if is_call and parity > 0.0:  # in the money: the out-of-the-money twin holds the same σ, well conditioned
        premium, is_call = premium - parity, False
    elif not is_call and parity < 0.0:
        premium, is_call = premium + parity, True
    if premium <= 0.0:  # at or below intrinsic value: no σ gives it
        return math.nan
    lo, hi = VOL_LOW, VOL_HIGH
    if lo < guess < hi:
        sigma = guess
    else:
        sigma = math.sqrt(2.0 * abs(moneyness + b * t) / t) if s != k else 0.3  # the vega peak
        sigma = min(max(sigma, 0.05), 2.0)
    for _ in range(100):
        value, v, curve = _price_vega(is_call, s, k, t, b, sigma, carry, disc, root_t, moneyness)
        diff = value - premium
        if abs(diff) <= 1e-13 * premium:
            return sigma  # a σ inside the bracket prices it: the premium is within the bounds
        if diff > 0.0:
            hi = sigma
        else:
            lo = sigma
        newton = diff / v if v > 0.0 else math.nan
        halley = 1.0 - 0.5 * newton * curve
        step = sigma - (newton / halley if halley > 0.5 else newton)  # Halley unless the curvature would dominate
        if lo < step < hi and abs(step - sigma) <= STEP_DONE * sigma:
            return step
        sigma = step if lo < step < hi else 0.5 * (lo + hi)  # a step inside the bracket, else bisect
        if hi - lo <= 1e-15 * hi:
            break
    # the bracket closed without the price meeting the premium: either σ is at the bracket's
    # resolution, or the premium lies outside what [VOL_LOW, VOL_HIGH] can give (checked only now,
    # as two extra prices per option per second are a third of the solver's time)
    if premium <= price(is_call, s, k, t, r, b, VOL_LOW) or premium >= price(is_call, s, k, t, r, b, VOL_HIGH):
        return math.nan
    return sigma


@njit(cache=True, nogil=True)
def gamma_with(s: float, t: float, b: float, sigma: float, carry: float, root_t: float, moneyness: float) -> float:
    """``gamma`` given ``implied_vol_with``'s terms (``t`` and ``sigma`` positive)."""
    vol = sigma * root_t
    d1 = (moneyness + (b + 0.5 * sigma * sigma) * t) / vol
    return carry * norm_pdf(d1) / (s * vol)


@njit(cache=True, nogil=True)
def _price_vega(is_call: bool, s: float, k: float, t: float, b: float, sigma: float, carry: float, disc: float,
                root_t: float, moneyness: float) -> tuple[float, float, float]:
    """``price``, ``vega`` and vomma / vega (d1·d2/σ) at once: a Halley step needs all three, and
    they share d1 and the discounting."""
    vol = sigma * root_t
    d1 = (moneyness + (b + 0.5 * sigma * sigma) * t) / vol
    d2 = d1 - vol
    if is_call:
        value = s * carry * norm_cdf(d1) - k * disc * norm_cdf(d2)
    else:
        value = k * disc * norm_cdf(-d2) - s * carry * norm_cdf(-d1)
    return value, s * carry * norm_pdf(d1) * root_t, d1 * d2 / sigma


@njit(cache=True, nogil=True)
def implied_vols(premiums: np.ndarray, is_call: np.ndarray, s: np.ndarray, k: np.ndarray, t: np.ndarray,
                 r: float, b: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """``implied_vol_from`` for each option of a chain (NaN where the mid has no solution)."""
    out = np.empty(premiums.shape[0])
    for i in range(premiums.shape[0]):
        out[i] = implied_vol_from(premiums[i], is_call[i], s[i], k[i], t[i], r, b[i], guess[i])
    return out


@njit(cache=True, nogil=True)
def prices(is_call: np.ndarray, s: np.ndarray, k: np.ndarray, t: np.ndarray, r: float, b: np.ndarray,
           sigma: np.ndarray) -> np.ndarray:
    """``price`` for each option of a chain."""
    out = np.empty(s.shape[0])
    for i in range(s.shape[0]):
        out[i] = price(is_call[i], s[i], k[i], t[i], r, b[i], sigma[i])
    return out


@njit(cache=True, nogil=True)
def gammas(s: np.ndarray, k: np.ndarray, t: np.ndarray, r: float, b: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``gamma`` for each option of a chain (NaN where its vol is NaN)."""
    out = np.empty(s.shape[0])
    for i in range(s.shape[0]):
        out[i] = gamma(s[i], k[i], t[i], r, b[i], sigma[i]) if math.isfinite(sigma[i]) else math.nan
    return out
