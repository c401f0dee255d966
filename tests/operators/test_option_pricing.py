"""Black-76 and Black-Scholes-Merton: our kernels against published values, vollib and QuantLib."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from vollib.black import black as vollib_black
from vollib.black.greeks.analytical import gamma as vollib_black_gamma
from vollib.black_scholes_merton import black_scholes_merton as vollib_bsm
from vollib.black_scholes_merton.greeks.analytical import gamma as vollib_bsm_gamma

from operators.options import pricing

GRID = [(k, t, sigma, call) for k in (4500.0, 5800.0, 6000.0, 6150.0, 7000.0)
        for t in (1 / 365 / 24, 2 / 365, 30 / 365, 0.5) for sigma in (0.08, 0.2, 0.6) for call in (True, False)]
F, R = 6000.0, 0.045


def test_black76_matches_the_published_example() -> None:
    # py_vollib's documentation: F=49, K=50, r=0.05, t=0.3846, sigma=0.2, a call
    assert pricing.gamma(49.0, 50.0, 0.3846, 0.05, 0.0, 0.2) == pytest.approx(0.0640647, abs=5e-8)
    premium = pricing.price(True, 49.0, 50.0, 0.3846, 0.05, 0.0, 0.2)
    assert pricing.implied_vol(premium, True, 49.0, 50.0, 0.3846, 0.05, 0.0) == pytest.approx(0.2, rel=1e-12)


@pytest.mark.parametrize(("k", "t", "sigma", "call"), GRID)
def test_black76_matches_vollib_and_quantlib(k: float, t: float, sigma: float, call: bool) -> None:
    flag = "c" if call else "p"
    premium = pricing.price(call, F, k, t, R, 0.0, sigma)
    g = pricing.gamma(F, k, t, R, 0.0, sigma)
    assert premium == pytest.approx(vollib_black(flag, F, k, t, R, sigma), rel=1e-9, abs=1e-10)
    assert g == pytest.approx(vollib_black_gamma(flag, F, k, t, R, sigma), rel=1e-9, abs=1e-15)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k)
    calc = ql.BlackCalculator(payoff, F, sigma * math.sqrt(t), math.exp(-R * t))
    assert premium == pytest.approx(calc.value(), rel=1e-9, abs=1e-10)
    assert g == pytest.approx(calc.gamma(F), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("k", "t", "sigma", "call"), GRID)
def test_black_scholes_merton_matches_vollib_and_quantlib(k: float, t: float, sigma: float, call: bool) -> None:
    s, q = F / 20, 0.012
    k = k / 20
    b = R - q
    premium = pricing.price(call, s, k, t, R, b, sigma)
    g = pricing.gamma(s, k, t, R, b, sigma)
    flag = "c" if call else "p"
    assert premium == pytest.approx(vollib_bsm(flag, s, k, t, R, sigma, q), rel=1e-9, abs=1e-10)
    assert g == pytest.approx(vollib_bsm_gamma(flag, s, k, t, R, sigma, q), rel=1e-9, abs=1e-15)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k)
    calc = ql.BlackCalculator(payoff, s * math.exp(b * t), sigma * math.sqrt(t), math.exp(-R * t))
    assert premium == pytest.approx(calc.value(), rel=1e-9, abs=1e-10)
    assert g == pytest.approx(calc.gamma(s), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("b", [0.0, R - 0.012])
def test_implied_vol_round_trips_wherever_the_price_holds_vol_information(b: float) -> None:
    """Every premium whose out-of-the-money twin is worth at least 1e-6 of the underlying gives its
    σ back to 1e-9, in or out of the money, 1 hour to 1 year, 5 % to 150 % vol."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(3000):
        k = F * math.exp(rng.uniform(-0.3, 0.3))
        t, sigma, call = rng.uniform(1 / 365 / 24, 1.0), rng.uniform(0.05, 1.5), rng.integers(2) == 1
        forward = F * math.exp(b * t)
        if pricing.price(forward < k, F, k, t, R, b, sigma) < 1e-6 * F:
            continue
        premium = pricing.price(call, F, k, t, R, b, sigma)
        assert pricing.implied_vol(premium, call, F, k, t, R, b) == pytest.approx(sigma, rel=1e-9), (k, t, sigma, call)
        checked += 1
    assert checked > 2500


def test_implied_vol_agrees_with_quantlib_on_a_smile() -> None:
    t = 9 / 365
    disc = math.exp(-R * t)
    for k in np.arange(5700.0, 6301.0, 25.0):
        call = bool(k >= F)
        sigma = 0.16 + 0.9 * math.log(k / F) ** 2 - 0.15 * math.log(k / F)
        premium = pricing.price(call, F, k, t, R, 0.0, sigma)
        qtype = ql.Option.Call if call else ql.Option.Put
        ref = ql.blackFormulaImpliedStdDev(qtype, float(k), F, premium, disc, 0.0, 0.2, 1e-14, 200) / math.sqrt(t)
        assert pricing.implied_vol(premium, call, F, k, t, R, 0.0) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize(("premium", "why"), [
    (0.5 * math.exp(-R * 0.1) * 100.0, "below intrinsic value"),
    (F, "above what any vol gives"),
    (math.nan, "no quote"),
])
def test_implied_vol_is_nan_where_no_vol_gives_the_premium(premium: float, why: str) -> None:
    # a call 100 points in the money, 0.1 year: intrinsic (discounted) is about 99.5
    assert math.isnan(pricing.implied_vol(premium, True, F, F - 100.0, 0.1, R, 0.0)), why


def test_no_time_left_has_no_vol_and_no_gamma() -> None:
    assert math.isnan(pricing.implied_vol(5.0, True, F, F, 0.0, R, 0.0))
    assert pricing.gamma(F, F, 0.0, R, 0.0, 0.2) == 0.0
    assert pricing.price(True, F, F - 10.0, 0.0, R, 0.0, 0.2) == pytest.approx(10.0)
