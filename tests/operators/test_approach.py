"""Level-approach episodes: exact values on hand-built 1-second series, streaming properties."""

from __future__ import annotations

import hashlib
import math
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.approach import (
    DOWN,
    EPISODE_DTYPE,
    UP,
    ApproachDetector,
    ApproachParams,
    episode_id,
)
from operators.errors import ConfigError
from tests.typed import present

NS = 1_000_000_000
TICK = 250_000_000
T0 = 1_700_000_000 * NS
LEVEL = 5000 * NS  # 5000.00 dollars in 1e-9 units


def series(mids: list[float], t0: int = T0) -> tuple[np.ndarray, np.ndarray]:
    return t0 + np.arange(len(mids), dtype=np.int64) * NS, np.array(mids, dtype=np.float64)


def at(ticks: float) -> float:
    """Mid (dollars) ``ticks`` ticks from LEVEL."""
    return 5000.0 + 0.25 * ticks


ES = ApproachParams(tick=TICK)
"""The flow sets the instrument's tick; these tests are ES's."""


def run(levels, mids: list[float], params: ApproachParams = ES) -> np.ndarray:
    det = ApproachDetector(levels, params)
    return det.feed(*series(mids))


def fields(rows: np.ndarray, *names: str) -> list[tuple]:
    return [tuple(r[n].item() for n in names) for r in rows]


def test_params_defaults_and_validation() -> None:
    p = ApproachParams()
    assert (p.approach_ticks, p.reset_ticks, p.tick) == (4, 12, 0)  # no tick until the instrument's is set
    with pytest.raises(ConfigError, match="instrument's ticks"):
        ApproachDetector([("PDH", LEVEL, 0)], p)
    with pytest.raises(ConfigError):
        ApproachParams(approach_ticks=0)
    with pytest.raises(ConfigError):
        ApproachParams(approach_ticks=4, reset_ticks=4)
    with pytest.raises(ConfigError):
        ApproachParams(tick=-1)
    with pytest.raises(TypeError):
        ApproachParams(4, 12)  # type: ignore[call-arg]  # wrong on purpose: keyword-only, and it must raise


def test_up_episode_exact_fields() -> None:
    # -20 arms (max 20), -16, -12 (last reset-away, t=2), -8, -4 triggers at t=4.
    out = run([("PDH", LEVEL, 0)], [at(-20), at(-16), at(-12), at(-8), at(-4), at(-2)])
    assert out.dtype == EPISODE_DTYPE
    assert len(out) == 1
    e = out[0]
    assert int(e["start_ts"]) == T0 + 4 * NS
    assert int(e["level_index"]) == 0
    assert int(e["level_price"]) == LEVEL
    assert int(e["direction"]) == UP
    assert float(e["distance_ticks"]) == -4.0
    assert int(e["approach_seconds"]) == 2
    assert float(e["velocity_tps"]) == 16.0 / 4.0  # from -20 at t=0 to -4 at t=4
    assert float(e["max_distance_ticks"]) == 20.0
    assert float(e["start_mid"]) == at(-4)


def test_down_episode_exact_fields() -> None:
    out = run([("PDL", LEVEL, 0)], [at(30), at(13), at(12), at(5), at(3.5)])
    assert fields(out, "start_ts", "direction", "distance_ticks", "approach_seconds",
                  "velocity_tps", "max_distance_ticks") == [
        (T0 + 4 * NS, DOWN, 3.5, 2, (30 - 3.5) / 4, 30.0)
    ]


def test_level_not_rearmed_until_reset_away() -> None:
    mids = [at(-12), at(-4),  # episode 1 at t=1
            at(-11), at(-3),  # only 11 ticks away: still disarmed
            at(-12), at(-6), at(-4)]  # reset at t=4, episode 2 at t=6
    out = run([("PDH", LEVEL, 0)], mids)
    assert fields(out, "start_ts", "direction", "approach_seconds", "max_distance_ticks") == [
        (T0 + 1 * NS, UP, 1, 12.0),
        (T0 + 6 * NS, UP, 2, 12.0),
    ]


def test_known_ts_gates_arming_and_triggering() -> None:
    # Far and then near before the level is known: nothing. Known at t=2 while near: it must
    # first be reset away (t=4) before the approach at t=5 counts.
    mids = [at(20), at(2), at(1), at(5), at(12), at(4)]
    out = run([("ORH", LEVEL, T0 + 2 * NS)], mids)
    assert fields(out, "start_ts", "direction", "approach_seconds", "max_distance_ticks") == [
        (T0 + 5 * NS, DOWN, 1, 12.0)
    ]


def test_known_ts_is_inclusive() -> None:
    out = run([("ORL", LEVEL, T0 + 1 * NS)], [at(-3), at(-12), at(-4)])
    assert fields(out, "start_ts") == [(T0 + 2 * NS,)]


def test_exactly_at_level_takes_side_of_last_reset_price() -> None:
    below = run([("PDH", LEVEL, 0)], [at(-15), at(0)])
    above = run([("PDH", LEVEL, 0)], [at(15), at(0)])
    # the last reset-away price decides, not the first: armed below, later far above
    switched = run([("PDH", LEVEL, 0)], [at(-15), at(13), at(0)])
    assert fields(below, "direction", "distance_ticks") == [(UP, 0.0)]
    assert fields(above, "direction", "distance_ticks") == [(DOWN, 0.0)]
    assert fields(switched, "start_ts", "direction", "max_distance_ticks") == [
        (T0 + 2 * NS, DOWN, 15.0)
    ]


def test_direction_is_side_at_start_even_after_jumping_across() -> None:
    out = run([("PDH", LEVEL, 0)], [at(-12), at(3)])
    assert fields(out, "direction", "distance_ticks") == [(DOWN, 3.0)]


def test_nan_mid_neither_arms_nor_triggers() -> None:
    nan = math.nan
    mids = [nan, at(-3), nan, at(-12), nan, at(-5), nan, at(-4)]
    out = run([("PMH", LEVEL, 0)], mids)
    # armed at t=3; t=4 NaN (no trigger), episode at t=7; velocity from t=0..6 window: oldest
    # valid mid at t=1 (-3 ticks) -> (-4 - -3) / 6 s * UP
    assert fields(out, "start_ts", "approach_seconds", "velocity_tps", "max_distance_ticks") == [
        (T0 + 7 * NS, 4, -1.0 / 6.0, 12.0)
    ]
    assert len(run([("PMH", LEVEL, 0)], [nan, nan, at(-4)])) == 0


def test_velocity_uses_exactly_30_seconds_when_available() -> None:
    # 20 s at -40 ticks, then +1 tick/s from t=20 (-39) to t=55 (-4). Last >= 12 ticks away:
    # t=47 (-12). Velocity reference: t=25 (-34), 30 s before the start.
    mids = [at(-40)] * 20 + [at(-40 + k) for k in range(1, 37)]
    out = run([("PDH", LEVEL, 0)], mids)
    assert fields(out, "start_ts", "velocity_tps", "approach_seconds", "max_distance_ticks") == [
        (T0 + 55 * NS, 1.0, 8, 40.0)
    ]


def test_velocity_over_available_history_or_zero() -> None:
    # only a NaN before the reset row: the reference is the reset row, 1 s earlier
    out = run([("PDH", LEVEL, 0)], [math.nan, at(-12), at(-4)])
    assert fields(out, "velocity_tps") == [(8.0,)]
    # the previous row is older than 30 s (a gap between pieces): no reference, velocity 0
    det = ApproachDetector([("PDH", LEVEL, 0)], ES)
    det.feed(*series([at(-12)], t0=T0))
    gap = det.feed(*series([at(-4)], t0=T0 + 40 * NS))
    assert fields(gap, "velocity_tps", "approach_seconds") == [(0.0, 40)]


def test_several_levels_same_second_ordered_by_index() -> None:
    levels = [("PDH", LEVEL + 2 * TICK, 0), ("PDL", LEVEL - 2 * TICK, 0), ("ORH", LEVEL + 100 * TICK, 0)]
    out = run(levels, [at(-20), at(20), at(0), at(-10), at(83), at(96)])
    # PDH: armed at -20 (22 away), far again at +20 (18 above), at t=2 mid=0 -> 2 below -> UP
    # PDL: armed at -20 (18 below), +20 (22 above) far, t=2: 2 above -> DOWN
    # ORH: armed from t=0 (120 away); at t=4 mid=+83 is 17 below (far); t=5 +96 -> 4 below: UP
    assert fields(out, "start_ts", "level_index", "level_price", "direction", "distance_ticks") == [
        (T0 + 2 * NS, 0, LEVEL + 2 * TICK, UP, -2.0),
        (T0 + 2 * NS, 1, LEVEL - 2 * TICK, DOWN, 2.0),
        (T0 + 5 * NS, 2, LEVEL + 100 * TICK, UP, -4.0),
    ]
    assert ApproachDetector(levels, ES).level_types == ("PDH", "PDL", "ORH")


def test_custom_params() -> None:
    p = ApproachParams(approach_ticks=1, reset_ticks=3, tick=TICK)
    out = run([("PDH", LEVEL, 0)], [at(-3), at(-2), at(-1)], p)
    assert fields(out, "start_ts", "distance_ticks") == [(T0 + 2 * NS, -1.0)]


def test_non_increasing_ts_is_refused() -> None:
    det = ApproachDetector([("PDH", LEVEL, 0)], ES)
    det.feed(*series([at(-20), at(-19)]))
    with pytest.raises(ValueError):
        det.feed(*series([at(-18)], t0=T0 + NS))
    with pytest.raises(ValueError):
        det.feed(np.array([T0 + 5 * NS, T0 + 5 * NS]), np.array([1.0, 2.0]))


def test_empty_piece_and_no_levels() -> None:
    det = ApproachDetector([], ES)
    assert len(det.feed(*series([at(0), at(20)]))) == 0
    det2 = ApproachDetector([("PDH", LEVEL, 0)], ES)
    assert det2.feed(np.empty(0, np.int64), np.empty(0)).dtype == EPISODE_DTYPE


def test_episode_id_is_deterministic() -> None:
    a = episode_id("ESZ6", date(2026, 11, 20), "PDH", T0)
    assert a == episode_id("ESZ6", date(2026, 11, 20), "PDH", T0)
    assert len(a) == 16
    assert a == hashlib.sha256(f"ESZ6|2026-11-20|PDH|{T0}".encode()).hexdigest()[:16]
    assert a != episode_id("ESZ6", date(2026, 11, 20), "PDL", T0)
    assert a != episode_id("ESZ6", date(2026, 11, 20), "PDH", T0 + NS)


# ------------------------------------------------------------------------- properties


def brute_approach(levels, ts, mid, p: ApproachParams) -> list[tuple]:
    """Independent per-level re-statement of the rules, plain Python, no streaming."""
    rows = []
    ts_l, mid_l = ts.tolist(), mid.tolist()
    for j, (_, price, known) in enumerate(levels):
        armed = False
        far_ts = far_side = None
        maxd = 0.0
        for i, (t, x) in enumerate(zip(ts_l, mid_l, strict=True)):
            if t < known or not math.isfinite(x):
                continue
            diff = round(x * 1e9) - price
            if abs(diff) >= p.reset_ticks * p.tick:
                if not armed:
                    armed, maxd = True, 0.0
                far_ts, far_side = t, (1 if diff > 0 else -1)
                maxd = max(maxd, abs(diff) / p.tick)
            elif armed:
                maxd = max(maxd, abs(diff) / p.tick)
                if abs(diff) <= p.approach_ticks * p.tick:
                    d = 1 if diff < 0 else -1 if diff > 0 else -present(far_side)
                    refs = [(tt, xx) for tt, xx in zip(ts_l[:i], mid_l[:i], strict=True)
                            if tt >= t - 30 * NS and math.isfinite(xx)]
                    if refs:
                        tt, xx = refs[0]
                        vel = d * ((round(x * 1e9) - round(xx * 1e9)) / p.tick) / ((t - tt) / NS)
                    else:
                        vel = 0.0
                    rows.append((t, j, price, d, diff / p.tick, (t - far_ts) // NS, vel, maxd, x))
                    armed = False
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


@st.composite
def sessions(draw):
    n = draw(st.integers(1, 300))
    steps = draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n))
    nans = draw(st.lists(st.booleans(), min_size=n, max_size=n).map(
        lambda b: [x and i % 7 == 0 for i, x in enumerate(b)]))
    ticks2 = np.cumsum(steps)  # half ticks
    mid = 5000.0 + 0.125 * ticks2.astype(np.float64)
    mid[np.array(nans, bool)] = np.nan
    ts = T0 + np.arange(n, dtype=np.int64) * NS
    nlev = draw(st.integers(1, 4))
    # levels on the tick grid near prices the walk visits (ticks2 // 2 = whole ticks from LEVEL)
    levels = [
        (f"L{j}", LEVEL + (int(ticks2[draw(st.integers(0, n - 1))]) // 2
                           + draw(st.integers(-3, 3))) * TICK,
         T0 + draw(st.integers(-5, n)) * NS)
        for j in range(nlev)
    ]
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=6))))
    return levels, ts, mid, cuts


def pieces(ts: np.ndarray, mid: np.ndarray, cuts: list[int]):
    bounds = [0, *cuts, len(ts)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield ts[a:b], mid[a:b]


P_SMALL = ApproachParams(approach_ticks=2, reset_ticks=6, tick=TICK)


@settings(max_examples=60, deadline=None)
@given(sessions())
def test_one_shot_matches_brute_force(s) -> None:
    levels, ts, mid, _ = s
    out = ApproachDetector(levels, P_SMALL).feed(ts, mid)
    assert out.tolist() == brute_approach(levels, ts, mid, P_SMALL)


@settings(max_examples=60, deadline=None)
@given(sessions())
def test_pieces_match_one_shot(s) -> None:
    levels, ts, mid, cuts = s
    whole = ApproachDetector(levels, P_SMALL).feed(ts, mid)
    det = ApproachDetector(levels, P_SMALL)
    parts = [det.feed(a, b) for a, b in pieces(ts, mid, cuts)]
    assert np.concatenate(parts).tolist() == whole.tolist()


@settings(max_examples=40, deadline=None)
@given(sessions())
def test_snapshot_resume_matches_uninterrupted(s) -> None:
    levels, ts, mid, cuts = s
    whole = ApproachDetector(levels, P_SMALL).feed(ts, mid)
    det = ApproachDetector(levels, P_SMALL)
    parts = []
    for a, b in pieces(ts, mid, cuts):
        parts.append(det.feed(a, b))
        state = det.snapshot()
        det = (ApproachDetector.from_state(state) if len(parts) % 2
               else ApproachDetector(levels, P_SMALL, resume=state))
    assert np.concatenate(parts).tolist() == whole.tolist()


def test_resume_refuses_other_levels() -> None:
    det = ApproachDetector([("PDH", LEVEL, 0)], ES)
    with pytest.raises(ValueError):
        ApproachDetector([("PDH", LEVEL + TICK, 0)], ES, resume=det.snapshot())
    with pytest.raises(ValueError):
        ApproachDetector([("PDH", LEVEL, 0)], P_SMALL, resume=det.snapshot())


def test_snapshot_is_a_copy() -> None:
    det = ApproachDetector([("PDH", LEVEL, 0)], ES)
    state = det.snapshot()
    det.feed(*series([at(-20), at(-4)]))
    assert state.istate.tolist() == ApproachDetector([("PDH", LEVEL, 0)], ES).snapshot().istate.tolist()


@settings(max_examples=60, deadline=None)
@given(sessions())
def test_levels_joining_as_they_become_known_match_one_shot(s) -> None:
    """A session learns its levels as they become known (``with_levels`` at each known time, the
    series cut there): the episodes equal one detector over every level fed the whole series."""
    levels, ts, mid, cuts = s
    whole = ApproachDetector(levels, P_SMALL).feed(ts, mid)
    news = [int(np.searchsorted(ts, known, side="left")) for _, _, known in levels]
    det = ApproachDetector([], P_SMALL)
    found = []
    for a, b in pieces(ts, mid, sorted({*cuts, *news})):
        if len(a) == 0:
            continue
        now = [lv for lv in levels if lv[2] <= int(a[0])]
        if len(now) != len(det.level_types):
            det = det.with_levels(now)
        rows = det.feed(a, b)
        found += [(int(r["start_ts"]), now[int(r["level_index"])][0], float(r["distance_ticks"]),
                   float(r["velocity_tps"]), float(r["max_distance_ticks"])) for r in rows]
    names = [lv[0] for lv in levels]
    assert found == [(int(r["start_ts"]), names[int(r["level_index"])], float(r["distance_ticks"]),
                      float(r["velocity_tps"]), float(r["max_distance_ticks"])) for r in whole]


def test_a_level_known_before_the_last_row_fed_cannot_join() -> None:
    det = ApproachDetector([("PDH", LEVEL, 0)], ES)
    ts, mid = series([at(-20), at(-4)])
    det.feed(ts, mid)
    kept = det.with_levels([("PDH", LEVEL, 0), ("PMH", LEVEL + 8 * TICK, int(ts[-1]) + 1)])
    assert kept.snapshot().istate[0].tolist() == det.snapshot().istate[0].tolist()
    with pytest.raises(ValueError, match="PMH is known from"):
        det.with_levels([("PDH", LEVEL, 0), ("PMH", LEVEL + 8 * TICK, int(ts[-1]))])
