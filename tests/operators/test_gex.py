"""Gamma exposure: every surface row recomputes from its own columns, the summary agrees with the
rows, and the zero-gamma level sits on a sign change of the re-priced net GEX."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vollib.black.greeks.analytical import gamma as vollib_black_gamma

from operators.options import pricing
from operators.options.gex import YEAR_NS, ChainQuotes, GexConfig, SignConvention, net_gex_on_grid, spot_grid
from operators.options.surface import SURFACE_INPUTS, SURFACE_OUTPUTS, Columns, gex_second, recompute

SECOND = 1_762_180_200_000_000_000  # 2025-11-03 14:30:00 UTC
SPOT = 6012.25
RATE = 0.04


def _smile(k: float, spot: float) -> float:
    m = math.log(k / spot)
    return 0.15 - 0.35 * m + 2.5 * m * m


def es_chain(seed: int = 3, spot: float = SPOT) -> ChainQuotes:
    """A quarterly and two weeklies, ±30 strikes at 5 points, quotes on a smile (some missing),
    open interest heavier in puts below spot and calls above."""
    rng = np.random.default_rng(seed)
    rows = []
    for days in (0.3, 4.3, 45.3):
        expiry = SECOND + int(days * 86_400 * 1e9)
        t = days / 365
        for k in np.arange(round(spot / 5) * 5 - 150, round(spot / 5) * 5 + 151, 5.0):
            for call in (True, False):
                mid = pricing.price(call, spot, k, t, RATE, 0.0, _smile(k, spot))
                mid = round(mid * 4) / 4 if mid > 0.5 else mid  # ticks, as a book would quote them
                if rng.random() < 0.05:
                    mid = math.nan  # one side not quoted
                oi = float(rng.integers(0, 4000)) * (1.6 if (k < spot) != call else 0.6)
                rows.append((expiry, k, call, mid, oi))
    exp, k, call, mid, oi = zip(*rows, strict=True)
    n = len(k)
    return ChainQuotes(np.array(exp, np.int64), np.array(k), np.array(call, bool), np.array(mid), np.array(oi),
                       np.full(n, 50.0), np.full(n, spot))


def _col(surface: Columns, name: str) -> np.ndarray:
    return np.asarray(surface[name])


@pytest.mark.parametrize("convention", ["dealer_long_calls_short_puts", "dealer_short", "dealer_long"])
def test_every_surface_row_recomputes_from_its_own_columns(convention: SignConvention) -> None:
    cfg = GexConfig(rate=RATE, sign_convention=convention)
    surface, summary, _ = gex_second("ESZ5", SECOND, SPOT, es_chain(), "black76", cfg)
    n = len(surface["strike"])
    assert n == 3 * 61
    assert set(surface["sign_convention"]) == {convention}
    for i in range(n):
        row = {c: float(_col(surface, c)[i]) for c in SURFACE_INPUTS}
        again = recompute(row)
        for c in SURFACE_OUTPUTS:
            got = float(_col(surface, c)[i])
            if math.isnan(got):
                assert math.isnan(again[c]), (i, c)
            else:
                assert again[c] == pytest.approx(got, rel=1e-9, abs=1e-12), (i, c)
    assert summary.net_gex == pytest.approx(float(np.sum(_col(surface, "net_gex"))), rel=1e-12)


def test_one_option_is_gamma_times_open_interest_times_multiplier_times_one_percent_of_s_squared() -> None:
    expiry = SECOND + 10 * 86_400 * 10**9
    t = 10 * 86_400 * 10**9 / YEAR_NS
    mid = pricing.price(False, SPOT, 5950.0, t, RATE, 0.0, 0.19)
    chain = ChainQuotes(np.array([expiry]), np.array([5950.0]), np.array([False]), np.array([mid]),
                        np.array([1200.0]), np.array([50.0]), np.array([SPOT]))
    surface, summary, _ = gex_second("ESZ5", SECOND, SPOT, chain, "black76", GexConfig(rate=RATE))
    gamma = vollib_black_gamma("p", SPOT, 5950.0, t, RATE, 0.19)
    assert _col(surface, "put_iv")[0] == pytest.approx(0.19, rel=1e-9)
    assert _col(surface, "put_gex")[0] == pytest.approx(-gamma * 1200 * 50 * SPOT**2 * 0.01, rel=1e-9)
    assert _col(surface, "call_gex")[0] == 0.0 and math.isnan(_col(surface, "call_mid")[0])
    assert summary.put_wall == 5950.0 and math.isnan(summary.call_wall)


def test_the_zero_gamma_level_sits_on_a_sign_change_of_the_repriced_net_gex() -> None:
    cfg = GexConfig(rate=RATE)
    chain = es_chain()
    _, summary, _ = gex_second("ESZ5", SECOND, SPOT, chain, "black76", cfg)
    level = summary.zero_gamma
    assert SPOT * 0.95 < level < SPOT * 1.05
    # re-price the whole chain at spots just either side, by brute force with vollib's gamma
    t = (chain.expiration_ns - SECOND) / YEAR_NS
    ivs = [pricing.implied_vol(m, c, SPOT, k, tt, RATE, 0.0) for m, c, k, tt in
           zip(chain.mid, chain.is_call, chain.strike, t, strict=True)]

    def net(spot: float) -> float:
        total = 0.0
        for iv, c, k, tt, oi in zip(ivs, chain.is_call, chain.strike, t, chain.open_interest, strict=True):
            if math.isfinite(iv):
                g = vollib_black_gamma("c", spot, k, tt, RATE, max(iv, cfg.min_vol))
                total += (1 if c else -1) * g * oi * 50 * spot * spot * 0.01
        return total

    step = (summary.grid_high - summary.grid_low) / (summary.grid_points - 1)
    below, above = net(level - step), net(level + step)
    assert below * above < 0, (below, above)
    assert abs(net(level)) < 0.05 * max(abs(below), abs(above))  # linear between grid points


def test_a_chain_that_keeps_one_sign_has_no_zero_gamma_level() -> None:
    chain = es_chain()
    calls_only = ChainQuotes(*(np.asarray(a)[chain.is_call] for a in (
        chain.expiration_ns, chain.strike, chain.is_call, chain.mid, chain.open_interest, chain.multiplier,
        chain.underlying_px)))
    _, summary, _ = gex_second("ESZ5", SECOND, SPOT, calls_only, "black76", GexConfig(rate=RATE))
    assert math.isnan(summary.zero_gamma)
    assert summary.net_gex > 0 and summary.put_gex == 0.0


def test_floors_keep_an_expiring_option_finite() -> None:
    """At the expiry instant, t is floored to an hour and σ to min_vol: gamma is that of the floors."""
    cfg = GexConfig(rate=RATE, min_years=1 / 365 / 24, min_vol=0.05)
    chain = ChainQuotes(np.array([SECOND]), np.array([6010.0]), np.array([True]), np.array([6.0]),
                        np.array([100.0]), np.array([50.0]), np.array([SPOT]))
    surface, _, _ = gex_second("ESZ5", SECOND, SPOT, chain, "black76", cfg)
    assert _col(surface, "t_years")[0] == pytest.approx(1 / 365 / 24)
    iv = float(_col(surface, "call_iv")[0])
    want = pricing.gamma(SPOT, 6010.0, 1 / 365 / 24, RATE, 0.0, max(iv, 0.05))
    assert math.isfinite(want) and _col(surface, "call_gamma")[0] == pytest.approx(want, rel=1e-12)


def test_the_grid_kernel_matches_a_direct_sum() -> None:
    chain = es_chain()
    cfg = GexConfig(rate=RATE)
    grid = spot_grid(SPOT, cfg)[::40]
    t = (chain.expiration_ns - SECOND) / YEAR_NS
    vol = np.full(len(t), 0.2)
    weight = np.where(chain.is_call, 1.0, -1.0) * chain.open_interest * 50
    got = net_gex_on_grid(grid, np.ones(len(t)), chain.strike, t, RATE, 0.0, vol, weight)
    for g, s in zip(got, grid, strict=True):
        want = sum(w * vollib_black_gamma("c", s, k, tt, RATE, 0.2) * s * s * 0.01
                   for w, k, tt in zip(weight, chain.strike, t, strict=True))
        assert g == pytest.approx(want, rel=1e-9)


def test_an_unknown_sign_convention_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="dealer_short"):
        GexConfig(sign_convention="dealers_guess")  # type: ignore[arg-type]
