"""Key levels: window extremes of hand-built 1-second series, the prior-session join, context series."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from datetime import date, time, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.calendar import SessionWindows, session_clock
from operators.levels import (
    LEVEL_TYPES,
    UNDEF,
    Level,
    PriorSessionJoin,
    SessionExtremes,
    SessionSummary,
    levels_for,
    missing_levels,
    moving_average,
    running_vwap,
    summarize_session,
)
from operators.sessions import NS_PER_SECOND, new_york_instant_ns

FRI = date(2025, 3, 7)  # EST
MON = date(2025, 3, 10)  # EDT, first session after the spring-forward weekend
CLOCK = session_clock(FRI, SessionWindows())
NAN = math.nan
U = UNDEF


def px(dollars: float) -> int:
    return round(dollars * 1_000_000_000)


def ny(d: date, h: int, m: int, s: int = 0) -> int:
    return new_york_instant_ns(d, h, m) + s * NS_PER_SECOND


def series(d: date, rows: Sequence[tuple[tuple[int, ...], int, int, float]],
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ((h, m, s) of the row's close instant in New York, trade_high, trade_low, mid)."""
    ts = np.array([ny(d, *hms) for hms, *_ in rows], np.int64)
    hi = np.array([r[1] for r in rows], np.int64)
    lo = np.array([r[2] for r in rows], np.int64)
    mid = np.array([r[3] for r in rows], np.float64)
    return ts, hi, lo, mid


# Each row closes at the time given and covers the second before it.
EDGE_ROWS = [
    ((4, 0, 0), px(9_999), px(1), 5_000.0),  # [03:59:59, 04:00): before PM
    ((4, 0, 1), px(5_000), px(4_999), 5_000.0),  # [04:00:00, 04:00:01): first PM second
    ((7, 0, 0), U, U, 6_000.0),  # PM, no trade: mid ignored since PM has trades
    ((9, 30, 0), px(5_005), px(5_004), 5_004.5),  # [09:29:59, 09:30): last PM second
    ((9, 30, 1), px(5_010), px(5_001), 5_005.0),  # first RTH and OR second
    ((9, 40, 0), U, px(5_000.25), 5_005.0),  # only a low defined
    ((9, 45, 0), px(5_012), px(5_008), 5_010.0),  # [09:44:59, 09:45): last OR second
    ((9, 45, 1), px(5_020), px(4_990), 5_010.0),  # RTH after the OR
    ((16, 0, 0), px(5_021), px(4_989), 5_010.0),  # [15:59:59, 16:00): last RTH second
    ((16, 0, 1), px(6_000), px(4_000), 5_010.0),  # after RTH
]


def test_summary_window_edges_are_the_rows_intervals() -> None:
    ts, hi, lo, mid = series(FRI, EDGE_ROWS)
    s = summarize_session(ts, hi, lo, mid, CLOCK, contract_id="ESH5")
    assert s == SessionSummary(
        "ESH5",
        FRI,
        rth_high=px(5_021),
        rth_low=px(4_989),
        pm_high=px(5_005),
        pm_low=px(4_999),
        or_high=px(5_012),
        or_low=px(5_000.25),
        complete=True,
        mid_fallback=(),
    )


def test_summary_ignores_row_order_and_accepts_uint64_ts() -> None:
    ts, hi, lo, mid = series(FRI, EDGE_ROWS)
    order = np.random.default_rng(1).permutation(len(ts))
    a = summarize_session(ts, hi, lo, mid, CLOCK, contract_id="ESH5")
    b = summarize_session(ts[order].astype(np.uint64), hi[order], lo[order], mid[order], CLOCK, contract_id="ESH5")
    assert a == b


def test_pm_without_trades_falls_back_to_mid() -> None:
    rows = [
        ((4, 0, 1), U, U, 5_000.125),
        ((6, 0, 0), U, U, NAN),
        ((9, 30, 0), U, U, 5_001.375),
        ((9, 30, 1), px(5_002), px(5_001), 5_001.5),
        ((16, 0, 0), px(5_003), px(5_000), 5_001.5),
    ]
    s = summarize_session(*series(FRI, rows), CLOCK, contract_id="ESH5")
    assert (s.pm_high, s.pm_low) == (5_001_375_000_000, 5_000_125_000_000)
    assert s.mid_fallback == ("pm",)
    assert (s.or_high, s.or_low) == (px(5_002), px(5_001))
    assert (s.rth_high, s.rth_low) == (px(5_003), px(5_000))


def test_windows_without_any_data_are_none_and_incomplete() -> None:
    rows = [((10, 0, 0), px(5_002), px(5_001), NAN), ((15, 0, 0), px(5_004), px(5_000), NAN)]
    s = summarize_session(*series(FRI, rows), CLOCK, contract_id="ESH5")
    assert (s.pm_high, s.pm_low, s.or_high, s.or_low) == (None, None, None, None)
    assert (s.rth_high, s.rth_low) == (px(5_004), px(5_000))
    assert not s.complete
    assert s.mid_fallback == ()


def test_pm_with_only_nan_mids_is_missing() -> None:
    rows = [((5, 0, 0), U, U, NAN), ((9, 30, 1), px(5_002), px(5_001), 5_001.5)]
    s = summarize_session(*series(FRI, rows), CLOCK, contract_id="ESH5")
    assert (s.pm_high, s.pm_low) == (None, None)
    assert (s.or_high, s.or_low) == (px(5_002), px(5_001))


@pytest.mark.parametrize(
    ("first", "last", "complete"),
    [
        ((9, 30, 1), (16, 0, 0), True),  # exactly RTH's first and last seconds
        ((9, 30, 2), (16, 0, 0), False),  # misses 09:30:00-09:30:01
        ((4, 0, 0), (15, 59, 59), False),  # misses the last second
        ((4, 0, 0), (16, 30, 0), True),
    ],
)
def test_complete_means_rth_fully_covered(first: tuple[int, ...], last: tuple[int, ...], complete: bool) -> None:
    rows = [(first, px(1), px(1), 1.0), (last, px(1), px(1), 1.0)]
    assert summarize_session(*series(FRI, rows), CLOCK, contract_id="ESH5").complete is complete


def test_empty_series_summarizes_to_nothing() -> None:
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    s = summarize_session(empty_i, empty_i, empty_i, empty_f, CLOCK, contract_id="ESH5")
    assert s == SessionSummary("ESH5", FRI)


def test_dst_session_uses_that_days_offset() -> None:
    # 13:30:01 UTC is the first RTH second on Monday 2025-03-10 (EDT) but still PM on Friday (EST).
    t = int(np.datetime64("2025-03-10T13:30:01", "ns").astype(np.int64))
    t_fri = int(np.datetime64("2025-03-07T13:30:01", "ns").astype(np.int64))
    one = np.array([px(5_000)], np.int64), np.array([px(4_999)], np.int64), np.array([5_000.0])
    mon = summarize_session(np.array([t]), *one, session_clock(MON, SessionWindows()), contract_id="ESH5")
    fri = summarize_session(np.array([t_fri]), *one, CLOCK, contract_id="ESH5")
    assert (mon.or_high, mon.rth_high, mon.pm_high) == (px(5_000), px(5_000), None)
    assert (fri.or_high, fri.rth_high, fri.pm_high) == (None, None, px(5_000))


def test_custom_windows_move_the_levels() -> None:
    windows = SessionWindows(pm=(time(8, 0), time(9, 0)), opening_range=(time(9, 30), time(9, 35)))
    clock = session_clock(FRI, windows)
    rows = [
        ((7, 59, 59), px(1), px(1), NAN),  # before the custom PM
        ((8, 0, 1), px(10), px(9), NAN),
        ((9, 0, 1), px(20), px(2), NAN),  # between PM and RTH
        ((9, 35, 0), px(30), px(29), NAN),
        ((9, 35, 1), px(40), px(3), NAN),  # after the custom OR
    ]
    s = summarize_session(*series(FRI, rows), clock, contract_id="ESH5")
    assert (s.pm_high, s.pm_low, s.or_high, s.or_low) == (px(10), px(9), px(30), px(29))
    levels = levels_for(s, None, clock)
    assert [lv.known_ts for lv in levels] == [ny(FRI, 9, 0)] * 2 + [ny(FRI, 9, 35)] * 2


def test_summary_rejects_ragged_inputs() -> None:
    ts, hi, lo, mid = series(FRI, EDGE_ROWS)
    with pytest.raises(ValueError, match="trade_low must be a 1-d array of 10 rows"):
        summarize_session(ts, hi, lo[:-1], mid, CLOCK, contract_id="ESH5")


PRIOR = SessionSummary("ESH5", date(2025, 3, 6), rth_high=px(5_100), rth_low=px(4_900), complete=True)
TODAY = SessionSummary(
    "ESH5", FRI, rth_high=px(5_021), rth_low=px(4_989), pm_high=px(5_005), pm_low=px(4_999),
    or_high=px(5_012), or_low=px(5_000.25), complete=True,
)


def test_levels_all_six_with_known_instants() -> None:
    levels = levels_for(TODAY, PRIOR, CLOCK)
    start = ny(date(2025, 3, 6), 18, 0)
    assert levels == (
        Level("PDH", px(5_100), start),
        Level("PDL", px(4_900), start),
        Level("PMH", px(5_005), ny(FRI, 9, 30)),
        Level("PML", px(4_999), ny(FRI, 9, 30)),
        Level("ORH", px(5_012), ny(FRI, 9, 45)),
        Level("ORL", px(5_000.25), ny(FRI, 9, 45)),
    )
    assert tuple(lv.level_type for lv in levels) == LEVEL_TYPES
    assert start == int(np.datetime64("2025-03-06T23:00", "ns").astype(np.int64))
    assert missing_levels(TODAY, PRIOR, CLOCK) == ()


def test_monday_pdh_is_known_at_sunday_open_edt() -> None:
    clock = session_clock(MON, SessionWindows())
    mon = SessionSummary("ESH5", MON, or_high=px(1), or_low=px(1))
    levels = levels_for(mon, TODAY, clock)
    sunday_open = int(np.datetime64("2025-03-09T22:00", "ns").astype(np.int64))
    assert levels == (
        Level("PDH", px(5_021), sunday_open),
        Level("PDL", px(4_989), sunday_open),
        Level("ORH", px(1), int(np.datetime64("2025-03-10T13:45", "ns").astype(np.int64))),
        Level("ORL", px(1), int(np.datetime64("2025-03-10T13:45", "ns").astype(np.int64))),
    )
    assert missing_levels(mon, TODAY, clock) == (
        "PMH: no trade or mid in the pre-market window",
        "PML: no trade or mid in the pre-market window",
    )


def test_no_prior_session_omits_pdh_pdl() -> None:
    assert [lv.level_type for lv in levels_for(TODAY, None, CLOCK)] == ["PMH", "PML", "ORH", "ORL"]
    assert missing_levels(TODAY, None, CLOCK) == ("PDH: no prior session", "PDL: no prior session")


def test_prior_without_rth_and_empty_session() -> None:
    prior = SessionSummary("ESH5", date(2025, 3, 6))
    empty = SessionSummary("ESH5", FRI)
    assert levels_for(empty, prior, CLOCK) == ()
    assert missing_levels(empty, prior, CLOCK) == (
        "PDH: prior session 2025-03-06 has no RTH data",
        "PDL: prior session 2025-03-06 has no RTH data",
        "PMH: no trade or mid in the pre-market window",
        "PML: no trade or mid in the pre-market window",
        "ORH: no trade or mid in the opening range",
        "ORL: no trade or mid in the opening range",
    )


@pytest.mark.parametrize(
    ("prior", "clock", "fragment"),
    [
        (SessionSummary("ESM5", date(2025, 3, 6)), CLOCK, "prior summary is for contract 'ESM5'"),
        (SessionSummary("ESH5", FRI), CLOCK, "prior session 2025-03-07 is not before"),
        (None, session_clock(MON, SessionWindows()), "clock is for 2025-03-10"),
    ],
)
def test_levels_reject_mismatched_inputs(prior: SessionSummary | None, clock: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        levels_for(TODAY, prior, clock)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=fragment):
        missing_levels(TODAY, prior, clock)  # type: ignore[arg-type]


# Reference for the window kernel: a plain Python loop over the rows.
def reference_summary(ts: np.ndarray, hi: np.ndarray, lo: np.ndarray, mid: np.ndarray) -> SessionSummary:
    out: dict[str, int | None] = {}
    fallback = []
    for name, (a, b) in {"rth": (CLOCK.rth_start, CLOCK.rth_end), "pm": (CLOCK.pm_start, CLOCK.pm_end),
                         "or": (CLOCK.or_start, CLOCK.or_end)}.items():
        rows = [i for i in range(len(ts)) if ts[i] - NS_PER_SECOND >= a and ts[i] <= b]
        highs = [int(hi[i]) for i in rows if hi[i] != U]
        lows = [int(lo[i]) for i in rows if lo[i] != U]
        mids = [float(mid[i]) for i in rows if not math.isnan(mid[i])]
        if highs or lows:
            out[name + "_high"], out[name + "_low"] = max(highs, default=None), min(lows, default=None)
        elif mids:
            out[name + "_high"], out[name + "_low"] = px(max(mids)), px(min(mids))
            fallback.append(name)
        else:
            out[name + "_high"] = out[name + "_low"] = None
    complete = bool(len(ts)) and ts.min() - NS_PER_SECOND <= CLOCK.rth_start and ts.max() >= CLOCK.rth_end
    return SessionSummary("ESH5", FRI, **out, complete=bool(complete), mid_fallback=tuple(fallback))


@st.composite
def second_rows(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    # Offsets in seconds from 03:59:50 to 16:00:10 (covering every window edge), snapped near the edges.
    base = ny(FRI, 3, 59, 50)
    span = (ny(FRI, 16, 0, 10) - base) // NS_PER_SECOND
    edges = [(getattr(CLOCK, f) - base) // NS_PER_SECOND for f in
             ("pm_start", "pm_end", "or_end", "rth_end")]
    near = st.sampled_from(edges).flatmap(lambda e: st.integers(e - 2, e + 2))
    offs = draw(st.lists(st.one_of(near, st.integers(0, span)), min_size=0, max_size=40, unique=True))
    n = len(offs)
    price = st.one_of(st.just(U), st.integers(px(4_000), px(6_000)))
    hi = draw(st.lists(price, min_size=n, max_size=n))
    lo = draw(st.lists(price, min_size=n, max_size=n))
    mid_px = st.one_of(st.just(NAN), st.integers(16_000, 24_000).map(lambda q: q / 4))
    mid = draw(st.lists(mid_px, min_size=n, max_size=n))
    ts = base + np.array(offs, np.int64) * NS_PER_SECOND
    return ts, np.array(hi, np.int64), np.array(lo, np.int64), np.array(mid, np.float64)


@settings(max_examples=150, deadline=None)
@given(second_rows())
def test_summary_matches_a_row_by_row_reference(rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    assert summarize_session(*rows, CLOCK, contract_id="ESH5") == reference_summary(*rows)


def test_summary_of_a_full_day_of_seconds() -> None:
    # One row per second from 18:00 the day before to 17:00; trades only in RTH, a ramp of prices.
    ts = np.arange(CLOCK.session_start + NS_PER_SECOND, CLOCK.session_end + 1, NS_PER_SECOND, dtype=np.int64)
    rth = CLOCK.in_rth(ts - NS_PER_SECOND)
    ramp = px(5_000) + (np.arange(ts.size, dtype=np.int64) % 1_000) * px(0.25)
    hi = np.where(rth, ramp, U)
    lo = np.where(rth, ramp - px(0.25), U)
    mid = np.full(ts.size, 5_000.5)
    s = summarize_session(ts, hi, lo, mid, CLOCK, contract_id="ESH5")
    assert ts.size == 23 * 3_600
    assert (s.rth_high, s.rth_low) == (px(5_000) + 999 * px(0.25), px(5_000) - px(0.25))
    assert (s.pm_high, s.pm_low, s.mid_fallback) == (px(5_000.5), px(5_000.5), ("pm",))
    assert s.complete


# ---- PriorSessionJoin ---------------------------------------------------------------------------

D = [date(2025, 3, 3) + timedelta(days=i) for i in range(5)]  # Mon..Fri


def summ(d: date, high: int = 1) -> SessionSummary:
    return SessionSummary("ESH5", d, rth_high=high, rth_low=high)


def test_join_waits_for_an_expected_prior() -> None:
    join = PriorSessionJoin([D[1], D[2], D[3]], {D[0]: summ(D[0], 7)})
    assert join.push(summ(D[3])) == ()
    assert join.pending == (D[3],)
    assert join.push(summ(D[1])) == ((D[1], summ(D[0], 7)),)
    assert join.push(summ(D[2])) == ((D[2], summ(D[1])), (D[3], summ(D[2])))
    assert not join.pending
    assert join.released == frozenset(D[1:4])
    assert join.finish() == ()


def test_join_first_session_has_no_prior() -> None:
    join = PriorSessionJoin([D[2], D[4]], {})
    assert join.prior_date(D[2]) is None
    assert join.prior_date(D[4]) == D[2]  # undeclared D[3] is skipped (e.g. a holiday)
    assert join.push(summ(D[4])) == ()
    assert join.push(summ(D[2])) == ((D[2], None), (D[4], summ(D[2])))


def test_join_prefers_this_runs_summary_over_the_stored_one() -> None:
    join = PriorSessionJoin([D[0], D[1]], {D[0]: summ(D[0], 7)})
    assert join.push(summ(D[1])) == ()
    assert join.push(summ(D[0], 8)) == ((D[0], None), (D[1], summ(D[0], 8)))


def test_join_uses_stored_prior_when_it_is_not_recomputed() -> None:
    join = PriorSessionJoin([D[3]], {D[0]: summ(D[0], 5), D[2]: summ(D[2], 7)})
    assert join.push(summ(D[3])) == ((D[3], summ(D[2], 7)),)


def test_join_finish_releases_sessions_whose_prior_never_came() -> None:
    join = PriorSessionJoin([D[1], D[2], D[3]], {D[0]: summ(D[0], 5)})
    assert join.push(summ(D[3])) == ()
    assert join.finish() == ((D[3], None),)
    assert join.finish() == ()
    join = PriorSessionJoin([D[1], D[2]], {D[1]: summ(D[1], 5)})
    assert join.push(summ(D[2])) == ()
    assert join.finish() == ((D[2], summ(D[1], 5)),)


def test_join_duplicates_are_idempotent_and_conflicts_raise() -> None:
    join = PriorSessionJoin([D[0], D[1]], {})
    assert join.push(summ(D[0])) == ((D[0], None),)
    assert join.push(summ(D[0])) == ()
    with pytest.raises(ValueError, match="pushed twice with different summaries"):
        join.push(summ(D[0], 2))
    with pytest.raises(ValueError, match="was not declared in expected"):
        join.push(summ(D[4]))
    with pytest.raises(ValueError, match="use one join per contract"):
        join.push(SessionSummary("ESM5", D[1]))
    with pytest.raises(ValueError, match="external summary keyed"):
        PriorSessionJoin([], {D[0]: summ(D[1])})


def reference_pairs(
    expected: set[date], external: dict[date, SessionSummary], fresh: dict[date, SessionSummary]
) -> set[tuple[date, SessionSummary | None]]:
    """The declarative answer, for sessions pushed (``fresh``) and then ``finish``."""
    everything = sorted(expected | external.keys())
    out: set[tuple[date, SessionSummary | None]] = set()
    for d in fresh:
        earlier = [x for x in everything if x < d]
        if not earlier:
            out.add((d, None))
            continue
        p = earlier[-1]
        if p not in expected:
            out.add((d, external[p]))
        elif p in fresh:
            out.add((d, fresh[p]))
        else:  # expected but never pushed: finish() falls back to the stored summary, if any
            out.add((d, external.get(p)))
    return out


@st.composite
def join_cases(draw: st.DrawFn) -> tuple[set[date], dict[date, SessionSummary], list[SessionSummary], list[int]]:
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(12)]
    roles = draw(st.lists(st.sampled_from(["none", "exp", "ext", "both"]), min_size=12, max_size=12))
    expected = {d for d, r in zip(days, roles, strict=True) if r in ("exp", "both")}
    external = {d: summ(d, 100 + i) for i, (d, r) in enumerate(zip(days, roles, strict=True)) if r in ("ext", "both")}
    pushed = sorted(draw(st.sets(st.sampled_from(sorted(expected)))) if expected else set())
    fresh = [summ(d, 200 + i) for i, d in enumerate(pushed)]
    perm = draw(st.permutations(range(len(fresh))))
    return expected, external, fresh, perm


@settings(max_examples=200, deadline=None)
@given(join_cases())
def test_join_releases_the_same_pairs_in_any_order(case: tuple) -> None:
    expected, external, fresh, perm = case
    results = []
    for order in (perm, sorted(perm), sorted(perm, reverse=True)):
        join = PriorSessionJoin(expected, external)
        released: list[tuple[date, SessionSummary | None]] = []
        for i in order:
            released += join.push(fresh[i])
        released += join.finish()
        assert len(released) == len({d for d, _ in released}) == len(fresh)  # each session exactly once
        results.append(set(released))
    assert results[0] == results[1] == results[2]
    assert results[0] == reference_pairs(expected, external, {s.session_date: s for s in fresh})


@settings(max_examples=100, deadline=None)
@given(join_cases())
def test_join_needs_no_finish_when_every_expected_session_arrives(case: tuple) -> None:
    expected, external, _, _ = case
    fresh = [summ(d, 300) for d in sorted(expected)]
    order = list(range(len(fresh)))
    orders = [order, order[::-1], order[1::2] + order[::2]]
    sets = []
    for o in orders:
        join = PriorSessionJoin(expected, external)
        sets.append({pair for i in o for pair in join.push(fresh[i])})
        assert join.pending == ()
    assert sets[0] == sets[1] == sets[2]
    assert {d for d, _ in sets[0]} == expected


# ---- context series -----------------------------------------------------------------------------


def test_running_vwap_exact() -> None:
    price = np.array([10.0, 11.0, 12.0, NAN, 13.0])
    volume = np.array([0, 2, 1, 5, 1])
    out = running_vwap(price, volume)
    assert math.isnan(out[0])
    assert out[1:].tolist() == [11.0, 34 / 3, 34 / 3, 47 / 4]


def test_running_vwap_rejects_ragged() -> None:
    with pytest.raises(ValueError, match="equal length"):
        running_vwap(np.ones(3), np.ones(2))


def test_moving_average_exact() -> None:
    out = moving_average(np.array([1.0, 2.0, NAN, 4.0, 5.0, 6.0, NAN, NAN, NAN]), 3)
    expected = [NAN, NAN, 1.5, 3.0, 4.5, 5.0, 5.5, 6.0, NAN]
    assert np.array_equal(out, np.array(expected), equal_nan=True)
    assert moving_average(np.array([1.0, NAN, 3.0]), 1).tolist()[0::2] == [1.0, 3.0]
    assert np.isnan(moving_average(np.array([1.0, 2.0]), 3)).all()


def test_moving_average_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="window_seconds must be an integer >= 1"):
        moving_average(np.ones(3), 0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.just(NAN), st.floats(-1e4, 1e4)), min_size=0, max_size=60),
    st.integers(1, 10),
)
def test_moving_average_matches_a_naive_window(values: list[float], window: int) -> None:
    x = np.array(values, np.float64)
    out = moving_average(x, window)
    for i in range(x.size):
        chunk = x[max(0, i - window + 1) : i + 1]
        finite = chunk[~np.isnan(chunk)]
        if i + 1 < window or finite.size == 0:
            assert math.isnan(out[i])
        else:
            assert out[i] == pytest.approx(finite.mean(), rel=1e-9, abs=1e-6)


@given(seed=st.integers(0, 2**32 - 1), mid_only=st.booleans())
@settings(max_examples=60, deadline=None)
def test_extremes_folded_piece_by_piece_equal_the_summary_of_all_rows(seed: int, mid_only: bool) -> None:
    """The live series step folds the summary as seconds arrive (its snapshot keeps no rows)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    start = ny(FRI, 3, 0)
    ts = start + np.sort(rng.choice(14 * 3600, size=n, replace=False)).astype(np.int64) * NS_PER_SECOND
    mid = np.where(rng.random(n) < 0.1, NAN, 5_000 + rng.normal(0, 5, n))
    hi = np.where(rng.random(n) < 0.3, U, px(5_000) + rng.integers(-5_000_000_000, 5_000_000_000, n))
    lo = np.where(rng.random(n) < 0.3, U, px(5_000) + rng.integers(-5_000_000_000, 5_000_000_000, n))
    if mid_only:
        hi[:], lo[:] = U, U
    whole = summarize_session(ts, hi, lo, mid, CLOCK, contract_id="ESH5")
    folded = SessionExtremes(CLOCK, contract_id="ESH5")
    cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 12))))
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True):
        folded.feed(ts[a:b], hi[a:b], lo[a:b], mid[a:b])
        folded = pickle.loads(pickle.dumps(folded)) if b % 2 else folded.copy()  # snapshots between pieces
    assert folded.summary() == whole
