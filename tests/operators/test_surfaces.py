"""Radar surfaces: exact values on hand-built 1-second book rows, streaming == one-shot, resume."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operators.book.dtypes import second_dtype
from operators.surfaces import (
    BAND_DTYPE,
    BANDS,
    DEFAULT_CALIBRATION,
    EMPTY_PX,
    NO_SPOT,
    NORM_NAMES,
    RAW_NAMES,
    SURFACE_REGISTRY_VERSION,
    BandCalibration,
    SurfaceBuilder,
    calibrate,
    latest_calibration,
    physics_bands,
    vacuum_surface,
    wall_surface,
)

TICK = 250_000_000
BASE = 5000 * 1_000_000_000  # 5000.00 dollars in 1e-9 units, on the tick grid
HW = 20
NS = 1_000_000_000


def col(offset: int) -> int:
    return offset + HW


def book_rows(books: list[tuple[list[tuple[int, int]], list[tuple[int, int]]] | None], depth: int = 10) -> np.ndarray:
    """One row per book: ``(bids, asks)`` as ``(ticks above BASE, size)`` best first; ``None`` = invalid row."""
    rows = np.zeros(len(books), second_dtype(depth, depth))
    rows["ts_recv"] = 1_700_000_000 * NS + np.arange(len(books), dtype=np.uint64) * NS
    rows["bid_px"] = EMPTY_PX
    rows["ask_px"] = EMPTY_PX
    rows["mid_px"] = np.nan
    for i, book in enumerate(books):
        if book is None:
            continue
        bids, asks = book
        for k, (t, s) in enumerate(bids):
            rows["bid_px"][i, k] = BASE + t * TICK
            rows["bid_sz"][i, k] = s
        for k, (t, s) in enumerate(asks):
            rows["ask_px"][i, k] = BASE + t * TICK
            rows["ask_sz"][i, k] = s
        rows["book_valid"][i] = True
        rows["mid_px"][i] = (rows["bid_px"][i, 0] + rows["ask_px"][i, 0]) / 2 / 1e9
    return _with_near(rows)


def _with_near(rows: np.ndarray) -> np.ndarray:
    """The visible levels as the rows' full-book-near-spot listing too (what these tests state)."""
    for side in ("bid", "ask"):
        rows[f"near_{side}_px"] = rows[f"{side}_px"]
        rows[f"near_{side}_sz"] = rows[f"{side}_sz"]
    return rows


def expected_row(cells: dict[int, float]) -> np.ndarray:
    out = np.zeros(2 * HW + 1, np.float32)
    for off, v in cells.items():
        out[col(off)] = v
    return out


# --- spot rule and offsets ----------------------------------------------------------------------


def test_one_tick_spread_puts_best_bid_at_zero_and_best_ask_at_plus_one() -> None:
    rows = book_rows([([(0, 10), (-1, 20), (-5, 30)], [(1, 11), (2, 21), (7, 31)])])

    wall = wall_surface(rows, TICK)

    assert wall.spot_px.tolist() == [BASE]  # mid 5000.125 rounded down to 5000.00
    assert wall.depth.dtype == np.float32
    assert wall.depth.shape == (1, 41)
    np.testing.assert_array_equal(wall.depth[0], expected_row({0: 10, -1: 20, -5: 30, 1: 11, 2: 21, 7: 31}))
    assert wall.ts.dtype == np.int64
    assert wall.ts.tolist() == rows["ts_recv"].astype(np.int64).tolist()


def test_two_tick_spread_spot_is_the_mid_and_offset_zero_is_empty() -> None:
    rows = book_rows([([(0, 10), (-1, 20)], [(2, 11), (3, 21)])])

    wall = wall_surface(rows, TICK)

    assert wall.spot_px.tolist() == [BASE + TICK]  # mid 5000.25 is on the grid
    np.testing.assert_array_equal(wall.depth[0], expected_row({-1: 10, -2: 20, 1: 11, 2: 21}))


def test_spot_rounds_down_even_with_a_wide_spread() -> None:
    rows = book_rows([([(0, 1)], [(3, 2)])])  # mid = 1.5 ticks above BASE

    wall = wall_surface(rows, TICK)

    assert wall.spot_px.tolist() == [BASE + TICK]
    np.testing.assert_array_equal(wall.depth[0], expected_row({-1: 1, 2: 2}))


def test_levels_beyond_half_width_and_empty_levels_are_dropped() -> None:
    rows = book_rows([([(0, 5), (-20, 6), (-21, 7)], [(1, 8), (20, 9), (25, 10)])])
    rows["bid_sz"][0, 3] = 0  # an empty slot (px = EMPTY_PX, sz = 0) stays out

    wall = wall_surface(rows, TICK)
    narrow = wall_surface(rows, TICK, half_width=2)

    np.testing.assert_array_equal(wall.depth[0], expected_row({0: 5, -20: 6, 1: 8, 20: 9}))
    assert narrow.depth.shape == (1, 5)
    np.testing.assert_array_equal(narrow.depth[0], [0, 0, 5, 8, 0])


# --- change -------------------------------------------------------------------------------------


def test_change_is_by_offset_and_zero_on_the_first_row() -> None:
    rows = book_rows(
        [
            ([(0, 10), (-1, 20)], [(1, 30), (2, 40)]),
            ([(0, 4), (-1, 20)], [(1, 30), (2, 45)]),  # same spot: bid 0 shrinks, ask +2 grows
            ([(1, 9), (0, 4)], [(2, 45), (3, 50)]),  # spot moves up one tick, every level shifts
        ]
    )

    wall = wall_surface(rows, TICK)

    np.testing.assert_array_equal(wall.change[0], np.zeros(41, np.float32))
    np.testing.assert_array_equal(wall.change[1], expected_row({0: -6, 2: 5}))
    # row 2 by offset: 0: 9-4, -1: 4-20, +1: 45-30, +2: 50-45
    np.testing.assert_array_equal(wall.change[2], expected_row({0: 5, -1: -16, 1: 15, 2: 5}))


# --- vacuum -------------------------------------------------------------------------------------


def test_spot_moving_with_an_unchanged_book_is_not_depletion() -> None:
    book = ([(0, 10), (-1, 20)], [(1, 30), (2, 40), (3, 50)])
    moved = ([(1, 5), (0, 10), (-1, 20)], [(2, 40), (3, 50)])  # bid lifted to +1: ask at +1 traded away
    rows = book_rows([book, book, moved])

    vac = vacuum_surface(rows, TICK)

    np.testing.assert_array_equal(vac.depletion[0], np.zeros(41, np.float32))
    np.testing.assert_array_equal(vac.depletion[1], np.zeros(41, np.float32))
    # only the 30 lots of the ask at BASE+1 tick vanished; spot is now BASE+1 tick -> offset 0
    np.testing.assert_array_equal(vac.depletion[2], expected_row({0: 30}))
    assert vac.spot_px.tolist() == [BASE, BASE, BASE + TICK]


def test_depletion_is_size_pulled_at_the_same_price_mapped_to_the_new_offset() -> None:
    rows = book_rows(
        [
            ([(0, 10), (-1, 20), (-2, 25)], [(1, 30), (2, 40)]),
            ([(-1, 12), (-2, 30)], [(1, 30), (2, 40)]),  # bid 0 gone, bid -1 pulled 8, bid -2 grew
        ]
    )

    vac = vacuum_surface(rows, TICK)

    # new mid = (-1 + 1)/2 = 0 -> spot BASE; price BASE-1 tick is offset -1
    np.testing.assert_array_equal(vac.depletion[1], expected_row({0: 10, -1: 8}))


def test_bid_level_that_becomes_an_ask_is_fully_depleted_on_the_bid_side() -> None:
    rows = book_rows(
        [
            ([(0, 10), (-1, 20)], [(1, 30)]),
            ([(-1, 20)], [(0, 4), (1, 30)]),  # bid at 0 hit; 4 lots now offered there
        ]
    )

    vac = vacuum_surface(rows, TICK)

    # mid = -0.5 tick -> spot = BASE - 1 tick; the price BASE is now offset +1
    assert vac.spot_px.tolist()[1] == BASE - TICK
    np.testing.assert_array_equal(vac.depletion[1], expected_row({1: 10}))


def test_a_level_that_scrolled_out_of_a_full_side_is_not_depletion() -> None:
    depth = 3
    rows = book_rows(
        [
            ([(0, 10), (-1, 20), (-2, 30)], [(1, 5)]),
            ([(1, 7), (0, 10), (-1, 20)], [(2, 5)]),  # new best bid pushes -2 out of the 3 visible
            ([(1, 7)], [(2, 5)]),  # side not full: missing 0 and -1 are really gone
        ],
        depth=depth,
    )

    vac = vacuum_surface(rows, TICK)

    # spot is now BASE+1 tick: the lifted ask at BASE+1 tick (offset 0) is the only depletion
    np.testing.assert_array_equal(vac.depletion[1], expected_row({0: 5}))
    np.testing.assert_array_equal(vac.depletion[2], expected_row({-1: 10, -2: 20}))


def test_invalid_rows_have_no_surface_and_restart_change_and_depletion() -> None:
    book = ([(0, 10)], [(1, 30)])
    rows = book_rows([book, None, ([(0, 3)], [(1, 30)])])
    rows["book_valid"][1] = True  # valid flag but undefined mid still means no surface
    nan_mid = rows.copy()
    nan_mid["book_valid"][1] = False
    nan_mid["mid_px"][1] = 5000.125

    for case in (rows, nan_mid):
        wall = wall_surface(case, TICK)
        vac = vacuum_surface(case, TICK)

        assert wall.spot_px.tolist() == [BASE, NO_SPOT, BASE]
        assert np.isnan(wall.depth[1]).all()
        assert np.isnan(wall.change[1]).all()
        assert np.isnan(vac.depletion[1]).all()
        np.testing.assert_array_equal(wall.change[2], np.zeros(41, np.float32))
        np.testing.assert_array_equal(vac.depletion[2], np.zeros(41, np.float32))


# --- registry and bands -------------------------------------------------------------------------


def test_band_table_offsets_and_names() -> None:
    table = {s.name: s.offsets for s in BANDS}

    assert table["wall_at_bid"] == (-1, 0)
    assert table["wall_at_ask"] == (1,)
    assert table["wall_near_bid"] == (-4, -3, -2)
    assert table["wall_near_ask"] == (2, 3, 4)
    assert table["wall_mid_bid"] == tuple(range(-10, -4))
    assert table["wall_mid_ask"] == tuple(range(5, 11))
    assert table["vacuum_far_bid"] == tuple(range(-20, -10))
    assert table["vacuum_far_ask"] == tuple(range(11, 21))
    for kind in ("wall", "vacuum"):
        covered = sorted(o for s in BANDS if s.kind == kind for o in s.offsets)
        assert covered == list(range(-20, 21))  # every column once, no overlap
    assert len(RAW_NAMES) == 16
    assert BAND_DTYPE.names == ("ts", *RAW_NAMES, *NORM_NAMES)
    assert BAND_DTYPE["ts"] == np.dtype("<i8")
    assert all(BAND_DTYPE[n] == np.dtype("<f4") for n in RAW_NAMES + NORM_NAMES)
    assert "wall_at_bid_norm" in NORM_NAMES
    assert {(s.q_lo, s.q_hi) for s in BANDS} == {(0.05, 0.95)}


def test_band_sums_and_normalisation_with_clipping() -> None:
    depth = np.zeros((2, 41), np.float32)
    vac = np.zeros((2, 41), np.float32)
    depth[0, col(0)], depth[0, col(-1)], depth[0, col(1)] = 10, 20, 30
    depth[0, col(-2)], depth[0, col(-4)], depth[0, col(-5)] = 1, 2, 100
    depth[0, col(11)], depth[0, col(20)] = 3, 4
    vac[0, col(0)], vac[0, col(1)], vac[0, col(3)] = 5, 6, 7
    depth[1] = np.nan
    vac[1] = np.nan
    lo = np.zeros(16)
    hi = np.full(16, 40.0)
    lo[RAW_NAMES.index("wall_near_bid")] = 10.0  # raw 3 < lo -> clipped to 0
    cal = BandCalibration(session_date=dt.date(2024, 3, 1), lo=lo, hi=hi)

    bands = physics_bands(depth, np.zeros_like(depth), vac, cal, ts=np.array([7, 8]))

    assert bands.dtype == BAND_DTYPE
    assert bands["ts"].tolist() == [7, 8]
    raw = {n: float(bands[n][0]) for n in RAW_NAMES}
    assert raw == {
        "wall_at_bid": 30.0,
        "wall_at_ask": 30.0,
        "wall_near_bid": 3.0,
        "wall_near_ask": 0.0,
        "wall_mid_bid": 100.0,
        "wall_mid_ask": 0.0,
        "wall_far_bid": 0.0,
        "wall_far_ask": 7.0,
        "vacuum_at_bid": 5.0,
        "vacuum_at_ask": 6.0,
        "vacuum_near_bid": 0.0,
        "vacuum_near_ask": 7.0,
        "vacuum_mid_bid": 0.0,
        "vacuum_mid_ask": 0.0,
        "vacuum_far_bid": 0.0,
        "vacuum_far_ask": 0.0,
    }
    assert bands["wall_at_bid_norm"][0] == np.float32(0.75)
    assert bands["wall_far_ask_norm"][0] == np.float32(7 / 40)
    assert bands["wall_near_bid_norm"][0] == 0.0  # below lo
    assert bands["wall_mid_bid_norm"][0] == 1.0  # above hi
    assert bands["vacuum_near_ask_norm"][0] == np.float32(7 / 40)
    for n in RAW_NAMES + NORM_NAMES:
        assert np.isnan(bands[n][1])


def test_default_calibration_comes_from_registry_constants() -> None:
    assert DEFAULT_CALIBRATION.registry_version == SURFACE_REGISTRY_VERSION
    np.testing.assert_array_equal(DEFAULT_CALIBRATION.lo, np.zeros(16))
    assert DEFAULT_CALIBRATION.as_dict()["wall_at_bid"] == (0.0, 800.0)  # 400 per column x 2 columns
    assert DEFAULT_CALIBRATION.as_dict()["wall_at_ask"] == (0.0, 400.0)
    assert DEFAULT_CALIBRATION.as_dict()["vacuum_far_ask"] == (0.0, 1000.0)  # 100 per column x 10


def test_bands_reject_surfaces_narrower_than_the_far_band() -> None:
    narrow = np.zeros((1, 5), np.float32)
    with pytest.raises(ValueError, match="half_width >= 20"):
        physics_bands(narrow, narrow, narrow, DEFAULT_CALIBRATION)


# --- calibration --------------------------------------------------------------------------------


def test_calibrate_takes_p5_p95_per_column_nan_safe_with_hi_above_lo() -> None:
    raw = np.zeros((102, 16))
    raw[:101, 0] = np.arange(101.0)  # 0..100 -> p5 = 5, p95 = 95
    raw[101, 0] = np.nan  # ignored
    raw[:, 1] = 7.0  # flat -> hi = lo + 1
    raw[:, 2] = np.nan  # nothing finite -> registry default
    raw[:101, 3] = np.arange(101.0) * 2
    raw[101, 3] = 1e9  # a single outlier barely moves p95
    rows = np.zeros(102, BAND_DTYPE)
    for c, n in enumerate(RAW_NAMES):
        rows[n] = raw[:, c]

    cal = calibrate(rows, session_date=dt.date(2024, 3, 4))
    cal2 = calibrate(raw, session_date=dt.date(2024, 3, 4))

    assert cal.session_date == dt.date(2024, 3, 4)
    assert cal.registry_version == SURFACE_REGISTRY_VERSION
    assert (cal.lo[0], cal.hi[0]) == (5.0, 95.0)
    assert (cal.lo[1], cal.hi[1]) == (7.0, 8.0)
    assert (cal.lo[2], cal.hi[2]) == (BANDS[2].default_lo, BANDS[2].default_hi)
    assert cal.lo[3] == pytest.approx(np.quantile(raw[:, 3], 0.05))
    assert cal.hi[3] == pytest.approx(np.quantile(raw[:, 3], 0.95))
    assert np.all(cal.hi > cal.lo)
    np.testing.assert_array_equal(cal.lo, cal2.lo)
    np.testing.assert_array_equal(cal.hi, cal2.hi)
    assert not cal.lo.flags.writeable


def test_calibration_rejects_bad_spans() -> None:
    with pytest.raises(ValueError, match="hi > lo"):
        BandCalibration(session_date=dt.date(2024, 1, 2), lo=np.ones(16), hi=np.ones(16))
    with pytest.raises(ValueError, match="16 values"):
        BandCalibration(session_date=dt.date(2024, 1, 2), lo=np.zeros(3), hi=np.ones(3))


def test_latest_calibration_is_strictly_before_the_session() -> None:
    def cal(day: int, version: str = SURFACE_REGISTRY_VERSION) -> BandCalibration:
        return BandCalibration(
            session_date=dt.date(2024, 3, day), lo=np.zeros(16), hi=np.full(16, float(day)), registry_version=version
        )

    cals = [cal(4), cal(1), cal(5), cal(6), cal(5, "surfaces.v0")]

    assert latest_calibration(cals, dt.date(2024, 3, 6)).session_date == dt.date(2024, 3, 5)
    assert latest_calibration(cals, dt.date(2024, 3, 5)).session_date == dt.date(2024, 3, 4)  # not its own day
    assert latest_calibration(cals, dt.date(2024, 3, 30)).session_date == dt.date(2024, 3, 6)
    assert latest_calibration(cals, dt.date(2024, 3, 1)) is DEFAULT_CALIBRATION
    assert latest_calibration([], dt.date(2024, 3, 1)) is DEFAULT_CALIBRATION
    assert latest_calibration([cal(5, "surfaces.v0")], dt.date(2024, 3, 9)) is DEFAULT_CALIBRATION


# --- streaming and resume -----------------------------------------------------------------------


@st.composite
def sessions(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    n = draw(st.integers(1, 40))
    depth = draw(st.sampled_from([3, 10]))
    books: list[tuple[list[tuple[int, int]], list[tuple[int, int]]] | None] = []
    bid = 0
    for _ in range(n):
        if draw(st.integers(0, 9)) == 0:
            books.append(None)
            continue
        bid += draw(st.integers(-3, 3))
        spread = draw(st.integers(1, 3))
        n_bid = draw(st.integers(1, depth))
        n_ask = draw(st.integers(1, depth))
        bid_gaps = draw(st.lists(st.integers(1, 3), min_size=n_bid, max_size=n_bid))
        ask_gaps = draw(st.lists(st.integers(1, 3), min_size=n_ask, max_size=n_ask))
        sizes = draw(st.lists(st.integers(1, 60), min_size=n_bid + n_ask, max_size=n_bid + n_ask))
        bids = [(bid - sum(bid_gaps[1 : k + 1]), sizes[k]) for k in range(n_bid)]
        asks = [(bid + spread + sum(ask_gaps[1 : k + 1]), sizes[n_bid + k]) for k in range(n_ask)]
        books.append((bids, asks))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return book_rows(books, depth=depth), cuts


def _assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        assert x.tobytes() == y.tobytes()  # bit-identical, NaNs included


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_feeding_in_pieces_equals_one_call(session: tuple[np.ndarray, list[int]]) -> None:
    rows, cuts = session
    cal = BandCalibration(session_date=dt.date(2024, 3, 1), lo=np.full(16, 2.0), hi=np.full(16, 50.0))

    whole = SurfaceBuilder(TICK, cal).feed(rows)
    builder = SurfaceBuilder(TICK, cal)
    parts = [builder.feed(rows[a:b]) for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    pieces = tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    _assert_same(whole, pieces)
    wall = wall_surface(rows, TICK)
    vac = vacuum_surface(rows, TICK)
    np.testing.assert_array_equal(whole[0]["depth"], wall.depth)
    np.testing.assert_array_equal(whole[0]["change"], wall.change)
    np.testing.assert_array_equal(whole[1]["depletion"], vac.depletion)
    _assert_same((whole[2],), (physics_bands(wall.depth, wall.change, vac.depletion, cal, ts=wall.ts),))
    valid = wall.spot_px != NO_SPOT
    assert (wall.depth[valid] >= 0).all()
    assert (vac.depletion[valid] >= 0).all()
    norms = np.stack([whole[2][n] for n in NORM_NAMES])[:, valid]
    assert ((norms >= 0) & (norms <= 1)).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions(), st.data())
def test_snapshot_then_resume_gives_the_same_rows(session: tuple[np.ndarray, list[int]], data: st.DataObject) -> None:
    rows, _ = session
    cut = data.draw(st.integers(0, len(rows)))
    whole = SurfaceBuilder(TICK).feed(rows)

    first = SurfaceBuilder(TICK)
    head = first.feed(rows[:cut])
    state = first.snapshot()
    first.feed(rows[cut:])  # the snapshot is a copy: later feeding does not change it
    tail = SurfaceBuilder(TICK, resume=state).feed(rows[cut:])

    _assert_same(whole, tuple(np.concatenate([h, t]) for h, t in zip(head, tail, strict=True)))


def test_resume_state_must_match_tick_and_width() -> None:
    state = SurfaceBuilder(TICK).snapshot()

    with pytest.raises(ValueError, match="resume state"):
        SurfaceBuilder(TICK * 2, resume=state)
    with pytest.raises(ValueError, match="resume state"):
        SurfaceBuilder(TICK, half_width=10, resume=state)


def test_empty_feed_returns_empty_rows() -> None:
    wall, vac, bands = SurfaceBuilder(TICK).feed(book_rows([]))

    assert (wall.shape, vac.shape, bands.shape) == ((0,), (0,), (0,))
    assert wall.dtype["depth"].shape == (41,)
    assert bands.dtype == BAND_DTYPE


def test_only_the_listed_fields_are_read_by_name() -> None:
    full = book_rows([([(0, 10), (-1, 20)], [(1, 30)]), ([(0, 4)], [(1, 30), (2, 9)])])
    names = ("mid_px", "ask_sz", "ask_px", "bid_sz", "bid_px", "book_valid", "ts_recv")  # another order
    minimal = np.zeros(len(full), [(n, full.dtype[n]) for n in names] + [("extra", "<f8")])
    for n in names:
        minimal[n] = full[n]

    _assert_same(SurfaceBuilder(TICK).feed(full), SurfaceBuilder(TICK).feed(minimal))


def test_the_radar_step_resumed_and_snapshotted_before_its_next_second_keeps_its_state() -> None:
    """Bytewax may snapshot a resumed key before any new item for it arrives (found by the
    recovery test): the step must hand back the state it was resumed from, not fail."""
    import pickle

    from flows.items import BookRows
    from flows.steps.radar_1s import SurfaceLogic
    from operators.chunks import InstrumentInfo

    rows = book_rows([([(0, 5), (-1, 3)], [(1, 4), (2, 2)]), ([(0, 6)], [(1, 4)]), ([(-1, 2)], [(1, 1)])])
    info = InstrumentInfo(7, "ESZ5", "ES", "FUT", tick=TICK)
    item = lambda r: BookRows("7:20395", "file:a", r, info, 20395)  # noqa: E731
    first = SurfaceLogic({}, None)
    first.on_item(item(rows[:2]))
    state = pickle.loads(pickle.dumps(first.snapshot()))
    resumed = SurfaceLogic({}, state)
    again = resumed.snapshot()
    assert pickle.dumps(again) == pickle.dumps(state)
    want = first.on_item(item(rows[2:]))[0][0]
    got = SurfaceLogic({}, again).on_item(item(rows[2:]))[0][0]
    assert got.wall.tobytes() == want.wall.tobytes() and got.bands.tobytes() == want.bands.tobytes()
