"""The options block of a setup vector, from a chain profile worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.options.gex import YEAR_NS, ChainQuotes
from operators.options.profile import GexProfile, gex_profile, skew
from operators.vectors.options import OPTIONS_NAMES, options_block

NOW = 1_760_000_000 * 1_000_000_000
WEEK = NOW + 7 * 86_400 * 1_000_000_000
TODAY = NOW + 3_600 * 1_000_000_000


def profile(zero_gamma: float = 5_990.0) -> GexProfile:
    strikes = np.array([5_950.0, 5_975.0, 6_000.0, 6_025.0, 6_050.0])
    return GexProfile(
        ts_second=NOW, spot=6_001.0, zero_gamma=zero_gamma, skew=0.03, strikes=strikes,
        net_gex=np.array([-4e9, -1e9, 2e9, 3e9, 6e9]),
        call_oi=np.array([100.0, 200.0, 300.0, 400.0, 500.0]), put_oi=np.array([900.0, 800.0, 700.0, 600.0, 500.0]),
        call_volume=np.array([0.0, 10.0, 20.0, 30.0, 0.0]), put_volume=np.array([5.0, 0.0, 60.0, 0.0, 0.0]),
    )


def test_a_level_reads_the_strikes_within_half_a_percent() -> None:
    # level 6,010: ±30.05 points holds 6,000 (10 away) and 6,025 (15); not 5,975 (35) or 6,050 (40)
    block = options_block(profile(), 6_010.0, +1, 0.25)
    want = dict(zip(OPTIONS_NAMES, block, strict=True))
    assert want["options_net_gex_near_bn"] == pytest.approx(5.0)
    assert want["options_net_gex_bn"] == pytest.approx(6.0)
    assert want["options_gex_at_level_strike_bn"] == pytest.approx(2.0)  # 6,000 is nearest 6,010
    assert want["options_zero_gamma_ahead_ticks"] == pytest.approx((5_990 - 6_010) / 0.25)  # behind an UP move
    assert want["options_level_above_zero_gamma"] == 1.0
    assert want["options_call_oi_near_k"] == pytest.approx(0.7)
    assert want["options_put_oi_near_k"] == pytest.approx(1.3)
    assert want["options_oi_imbalance_near"] == pytest.approx((700 - 1_300) / 2_000)
    assert want["options_volume_near_k"] == pytest.approx(0.11)
    assert want["options_volume_imbalance_near"] == pytest.approx((50 - 60) / 110)
    assert want["options_skew"] == pytest.approx(0.03)
    assert want["options_available"] == 1.0


def test_direction_turns_the_zero_gamma_distance_and_a_missing_level_gives_zero() -> None:
    down = dict(zip(OPTIONS_NAMES, options_block(profile(), 6_010.0, -1, 0.25), strict=True))
    assert down["options_zero_gamma_ahead_ticks"] == pytest.approx(80.0)  # below: ahead of a DOWN move
    flat = dict(zip(OPTIONS_NAMES, options_block(profile(math.nan), 6_010.0, -1, 0.25), strict=True))
    assert flat["options_zero_gamma_ahead_ticks"] == 0.0 and flat["options_level_above_zero_gamma"] == 0.0
    assert flat["options_available"] == 1.0


def test_no_chain_is_all_zeros_flag_included() -> None:
    assert not options_block(None, 6_010.0, 1, 0.25).any()


def test_the_profile_sums_each_strike_over_expiries_and_sides() -> None:
    chain = ChainQuotes(
        expiration_ns=np.array([WEEK, WEEK, TODAY, TODAY, WEEK]), strike=np.array([6_000.0, 6_000.0, 6_000.0,
                                                                                    6_000.0, 6_050.0]),
        is_call=np.array([True, False, True, False, True]), mid=np.zeros(5),
        open_interest=np.array([10.0, 20.0, 30.0, 40.0, 50.0]), multiplier=np.full(5, 50.0),
        underlying_px=np.full(5, 6_001.0))
    got = gex_profile(NOW, 6_001.0, 5_990.0, chain, np.array([1.0, -2.0, 3.0, -4.0, 5.0]),
                      np.full(5, 0.2), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(got.strikes, [6_000.0, 6_050.0])
    np.testing.assert_array_equal(got.net_gex, [-2.0, 5.0])
    np.testing.assert_array_equal(got.call_oi, [40.0, 50.0])
    np.testing.assert_array_equal(got.put_oi, [60.0, 0.0])
    np.testing.assert_array_equal(got.call_volume, [4.0, 5.0])
    np.testing.assert_array_equal(got.put_volume, [6.0, 0.0])


def test_skew_uses_the_nearest_expiry_a_day_out_with_both_sides_priced() -> None:
    spot = 6_000.0
    assert (WEEK - NOW) / YEAR_NS > 1 / 365 > (TODAY - NOW) / YEAR_NS  # the set-up, not the code
    # today's expiry is skipped (under a day); the week's puts and calls at ±2 % are chosen
    expiration = np.array([TODAY, TODAY, WEEK, WEEK, WEEK, WEEK])
    strike = np.array([5_880.0, 6_120.0, 5_880.0, 5_900.0, 6_120.0, 6_100.0])
    is_call = np.array([False, True, False, False, True, True])
    iv = np.array([0.9, 0.1, 0.25, 0.24, 0.18, 0.19])
    assert skew(NOW, spot, expiration, strike, is_call, iv) == pytest.approx(0.25 - 0.18)
    iv[4] = np.nan  # the 2 % call is unpriced: the nearest priced call stands in
    assert skew(NOW, spot, expiration, strike, is_call, iv) == pytest.approx(0.25 - 0.19)
    assert math.isnan(skew(NOW, spot, expiration, strike, is_call & False, iv))
