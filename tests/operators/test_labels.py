"""First-crossing labels: exact values on hand-built series, streaming vs brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.approach import EPISODE_DTYPE
from operators.errors import ConfigError
from operators.labels import (
    BREAK,
    CHOP,
    LABEL_DTYPE,
    LABEL_EPISODE_DTYPE,
    OUTCOMES,
    REJECT,
    Labeler,
    LabelParams,
    from_approach,
    label_reference,
    label_session,
)

NS = 1_000_000_000
TICK = 250_000_000
T0 = 1_700_000_000 * NS
LEVEL = 5000 * NS
nan = math.nan
P = LabelParams(break_ticks=8, reject_ticks=8, horizon_seconds=10, tick=TICK)


def at(ticks: float) -> float:
    return 5000.0 + 0.25 * ticks


def series(ticks: list[float], t0: int = T0) -> tuple[np.ndarray, np.ndarray]:
    mids = [nan if math.isnan(x) else at(x) for x in ticks]
    return t0 + np.arange(len(ticks), dtype=np.int64) * NS, np.array(mids, np.float64)


def episode(key: int, start_s: int, direction: int, start_ticks: float, level: int = LEVEL) -> tuple:
    return (key, T0 + start_s * NS, level, direction, at(start_ticks))


def eps(*rows: tuple) -> np.ndarray:
    return np.array(list(rows), dtype=LABEL_EPISODE_DTYPE)


def both(ticks: list[float], episodes: np.ndarray, params: LabelParams = P) -> list[tuple]:
    """Labels from the streaming labeler, checked equal to the reference first."""
    ts, mid = series(ticks)
    got = label_session(ts, mid, episodes, params)
    ref = label_reference(ts, mid, episodes, params)
    assert got.dtype == LABEL_DTYPE
    assert got.tolist() == ref.tolist()
    return got.tolist()


def test_params_defaults_and_outcome_names() -> None:
    p = LabelParams()
    assert (p.break_ticks, p.reject_ticks, p.horizon_seconds, p.tick) == (8, 8, 300, 0)  # the flow sets the tick
    with pytest.raises(ConfigError, match="instrument's ticks"):
        Labeler(p)
    assert OUTCOMES == ("BREAK", "REJECT", "CHOP")
    assert (BREAK, REJECT, CHOP) == (0, 1, 2)
    for bad in ("break_ticks", "reject_ticks", "horizon_seconds"):
        with pytest.raises(ConfigError):
            LabelParams(**{bad: 0})
    with pytest.raises(ConfigError):
        LabelParams(tick=-1)


def test_break_up_exact() -> None:
    # UP episode at t=0 with mid 4 ticks below the level; rows after it: -6, NaN, +2, +8 (BREAK)
    out = both([-4, -6, nan, 2, 8, 20], eps(episode(7, 0, 1, -4)))
    # mfe = (8 - -4) = 12 ticks, mae = -(-6 - -4) = 2 ticks
    assert out == [(7, T0, LEVEL, 1, BREAK, T0 + 4 * NS, 4 * NS, 12.0, 2.0, False)]


def test_reject_up_exact() -> None:
    out = both([-4, -2, 1, -5, -8, 0], eps(episode(1, 0, 1, -4)))
    assert out == [(1, T0, LEVEL, 1, REJECT, T0 + 4 * NS, 4 * NS, 5.0, 4.0, False)]


def test_break_down_exact() -> None:
    out = both([3, 5, 0, -7.5, -8.5], eps(episode(2, 0, -1, 3)))
    # DOWN: favourable is falling: 3 - -8.5 = 11.5; adverse: 5 - 3 = 2
    assert out == [(2, T0, LEVEL, -1, BREAK, T0 + 4 * NS, 4 * NS, 11.5, 2.0, False)]


def test_reject_down_exact() -> None:
    out = both([3, 1, 8], eps(episode(3, 0, -1, 3)))
    assert out == [(3, T0, LEVEL, -1, REJECT, T0 + 2 * NS, 2 * NS, 2.0, 5.0, False)]


def test_chop_resolves_at_horizon_inclusive() -> None:
    # horizon 10 s: rows t=1..10 count (-7.5 at t=10 is no reject); a break at t=11 is too late
    ticks = [-4, -3, -2, -1, 0, 1, 2, 3, 4, 5, -7.5, 30]
    out = both(ticks, eps(episode(4, 0, 1, -4)))
    assert out == [(4, T0, LEVEL, 1, CHOP, T0 + 10 * NS, 10 * NS, 9.0, 3.5, False)]
    # the same move reaching +8 exactly at t=10 is a BREAK
    out = both([-4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 8], eps(episode(4, 0, 1, -4)))
    assert out[0][4:7] == (BREAK, T0 + 10 * NS, 10 * NS)


def test_chop_truncated_at_end_of_input() -> None:
    out = both([-4, -3, -5, -2], eps(episode(5, 0, 1, -4), episode(6, 3, -1, 1)))
    assert out == [
        (5, T0, LEVEL, 1, CHOP, T0 + 3 * NS, 3 * NS, 2.0, 1.0, True),
        # started on the last row: no sample after it -> mfe = mae = 0
        (6, T0 + 3 * NS, LEVEL, -1, CHOP, T0 + 3 * NS, 0, 0.0, 0.0, True),
    ]


def test_mfe_is_raw_max_possibly_negative() -> None:
    out = both([-4, -5, -6, -12], eps(episode(8, 0, 1, -4)))
    assert out == [(8, T0, LEVEL, 1, REJECT, T0 + 3 * NS, 3 * NS, -1.0, 8.0, False)]


def test_nan_rows_are_skipped_but_horizon_still_resolves() -> None:
    out = both([-4, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, 20],
               eps(episode(9, 0, 1, -4)))
    assert out == [(9, T0, LEVEL, 1, CHOP, T0 + 10 * NS, 10 * NS, 0.0, 0.0, False)]


def test_rows_at_or_before_start_are_ignored() -> None:
    # breaking prices before and at the start do not count; excursions are from start_mid
    out = both([20, 20, -5, 9], eps(episode(10, 1, 1, -3)))
    assert out == [(10, T0 + NS, LEVEL, 1, BREAK, T0 + 3 * NS, 2 * NS, 12.0, 2.0, False)]


def test_zero_excursion_is_positive_zero() -> None:
    out = both([-3, -3, -3], eps(episode(12, 0, 1, -3), episode(13, 0, -1, -3)))
    assert [(r[7], r[8]) for r in out] == [(0.0, 0.0), (0.0, 0.0)]
    assert all(math.copysign(1.0, v) == 1.0 for r in out for v in r[7:9])


def test_thresholds_are_relative_to_level_not_start() -> None:
    # level 2 ticks above the zero line; UP from -4: break needs mid >= level + 8 ticks = +10
    level = LEVEL + 2 * TICK
    out = both([-4, 9, 10], eps(episode(11, 0, 1, -4, level)))
    assert out == [(11, T0, level, 1, BREAK, T0 + 2 * NS, 2 * NS, 14.0, -13.0, False)]


def test_streaming_emits_when_resolved_in_order() -> None:
    lab = Labeler(P)
    lab.add(eps(episode(1, 0, 1, -4), episode(2, 0, -1, 4), episode(3, 1, 1, -2)))
    ts, mid = series([0, 3, 8.5, 2, -9, 0, 0, 0, 0, 0, 0, 0, 0])
    first = lab.feed(ts[:3], mid[:3])  # t=2: +8.5 -> 1 BREAK, 3 BREAK (UP); 2 DOWN: 8.5 above -> REJECT
    assert [(r["key"], OUTCOMES[r["outcome"]]) for r in first] == [(1, "BREAK"), (2, "REJECT"),
                                                                   (3, "BREAK")]
    assert lab.open_count == 0
    lab.add(eps(episode(4, 3, -1, 2)))
    second = lab.feed(ts[3:], mid[3:])
    assert second.tolist() == [(4, T0 + 3 * NS, LEVEL, -1, BREAK, T0 + 4 * NS, NS, 11.0, -11.0, False)]
    assert len(lab.close()) == 0


def test_chop_over_a_gap_resolves_at_horizon() -> None:
    lab = Labeler(P)
    lab.add(eps(episode(1, 0, 1, -4)))
    assert len(lab.feed(*series([-4, -3]))) == 0
    out = lab.feed(np.array([T0 + 50 * NS]), np.array([at(30)]))
    assert out.tolist() == [(1, T0, LEVEL, 1, CHOP, T0 + 10 * NS, 10 * NS, 1.0, -1.0, False)]


def test_add_after_feeding_past_start_is_refused() -> None:
    lab = Labeler(P)
    lab.feed(*series([0, 0, 0]))
    with pytest.raises(ValueError):
        lab.add(eps(episode(1, 1, 1, 0)))
    lab.add(eps(episode(2, 2, 1, 0)))  # at the last row fed: fine
    with pytest.raises(ValueError):
        lab.add(eps((3, T0 + 5 * NS, LEVEL, 1, nan)))
    with pytest.raises(ValueError):
        lab.add(eps((3, T0 + 5 * NS, LEVEL, 0, 5000.0)))
    with pytest.raises(TypeError):
        lab.add(np.zeros(1, EPISODE_DTYPE))
    with pytest.raises(ValueError):
        lab.feed(*series([0], t0=T0 + 2 * NS))


def test_from_approach_copies_fields() -> None:
    rows = np.zeros(2, EPISODE_DTYPE)
    rows["start_ts"] = [T0, T0 + NS]
    rows["level_price"] = LEVEL
    rows["direction"] = [1, -1]
    rows["start_mid"] = [at(-4), at(3)]
    out = from_approach(rows, np.array([10, 11]))
    assert out.dtype == LABEL_EPISODE_DTYPE
    assert out.tolist() == [(10, T0, LEVEL, 1, at(-4)), (11, T0 + NS, LEVEL, -1, at(3))]


# ------------------------------------------------------------------------- properties


@st.composite
def sessions(draw):
    n = draw(st.integers(1, 250))
    steps = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    nan_at = set(draw(st.lists(st.integers(0, n - 1), max_size=n // 5)))
    half = np.cumsum(steps)
    mid = 5000.0 + 0.125 * half.astype(np.float64)
    nan_idx = [i for i in nan_at if i != 0]
    mid[nan_idx] = np.nan
    ts = T0 + np.arange(n, dtype=np.int64) * NS
    valid = [i for i in range(n) if math.isfinite(mid[i])]
    starts = sorted(draw(st.lists(st.sampled_from(valid), max_size=12)))
    rows = []
    for key, i in enumerate(starts):
        d = draw(st.sampled_from([1, -1]))
        level = int(np.rint(mid[i] * 1e9)) + d * draw(st.integers(0, 4)) * TICK
        rows.append((100 + key, int(ts[i]), level, d, float(mid[i])))
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=6))))
    params = LabelParams(break_ticks=draw(st.integers(1, 6)), reject_ticks=draw(st.integers(1, 6)),
                         horizon_seconds=draw(st.integers(1, 60)), tick=TICK)
    return ts, mid, eps(*rows), cuts, params


def stream(ts, mid, episodes, cuts, params, *, resume_each_piece: bool = False) -> np.ndarray:
    lab = Labeler(params)
    out = []
    bounds = [0, *cuts, len(ts)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if a == b:
            continue
        new = episodes[(episodes["start_ts"] >= ts[a]) & (episodes["start_ts"] <= ts[b - 1])]
        lab.add(new)
        out.append(lab.feed(ts[a:b], mid[a:b]))
        if resume_each_piece:
            lab = Labeler(params, resume=lab.snapshot())
    out.append(lab.close())
    return np.concatenate(out)


@settings(max_examples=80, deadline=None)
@given(sessions())
def test_streaming_pieces_match_reference(s) -> None:
    ts, mid, episodes, cuts, params = s
    got = stream(ts, mid, episodes, cuts, params)
    assert got.tolist() == label_reference(ts, mid, episodes, params).tolist()
    assert sorted(got["key"].tolist()) == episodes["key"].tolist()


@settings(max_examples=40, deadline=None)
@given(sessions())
def test_snapshot_resume_matches_uninterrupted(s) -> None:
    ts, mid, episodes, cuts, params = s
    assert (stream(ts, mid, episodes, cuts, params, resume_each_piece=True).tolist()
            == stream(ts, mid, episodes, [], params).tolist())


def test_resume_refuses_other_params() -> None:
    with pytest.raises(ValueError):
        Labeler(LabelParams(tick=TICK), resume=Labeler(P).snapshot())
