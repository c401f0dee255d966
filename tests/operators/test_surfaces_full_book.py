"""The wall and vacuum surfaces see the whole book within +-20 ticks of spot, not its visible top 10.

Checked against a brute-force computation from an independent full-depth book: the naive
dict-of-queues ``ReferenceBook`` (which ``tests/replay/test_synth.py`` shows equals the
simulator's own truth after every event), fed the simulated day's MBO records and read at the
end of every second, every tick of +-20 summed, every price's pulled size compared by absolute
price. The surfaces are the flow's: ``L3Book.apply_seconds`` rows into ``SurfaceBuilder``.
"""

from __future__ import annotations

from collections.abc import Iterator

import databento
import numpy as np
import pytest

from operators.book import L3Book
from operators.records import F_LAST, MBO_DTYPE
from operators.surfaces import HALF_WIDTH, SurfaceBuilder
from operators.surfaces.registry import BANDS
from replay.synth import write_sample
from tests.replay.reference_book import ReferenceBook

ES_TICK = 250_000_000
NS = 1_000_000_000


@pytest.fixture(name="day", scope="module")
def fixture_day(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    sample = write_sample(tmp_path_factory.mktemp("full-book"), days=1, seed=11, events_per_day=30_000)
    raw = databento.DBNStore.from_file(sample.days[0].mbo).to_ndarray()
    out = np.zeros(len(raw), MBO_DTYPE)
    for name in MBO_DTYPE.names or ():
        if name in (raw.dtype.names or ()):
            out[name] = raw[name]
    return out


def _sides(book: ReferenceBook) -> dict[bytes, dict[int, int]]:
    """Per side, size at every price of the full book."""
    out: dict[bytes, dict[int, int]] = {b"B": {}, b"A": {}}
    for (side, price), queue in book.queues.items():
        out[side][price] = sum(book.orders[o][2] for o in queue)
    return out


def _truth_at_row_ends(records: np.ndarray, row_ts: np.ndarray) -> Iterator[dict[bytes, dict[int, int]]]:
    """The full book at the end of each row's second: every event that starts before it applied."""
    book = ReferenceBook()
    event_start = np.empty(len(records), np.uint64)
    start = None
    for i, r in enumerate(records):
        if start is None:
            start = r["ts_recv"]
        event_start[i] = start
        if r["flags"] & F_LAST:
            start = None
    i = 0
    for ts in row_ts:
        while i < len(records) and event_start[i] < ts:
            r = records[i]
            book.apply(r["action"], r["side"], int(r["price"]), int(r["size"]), int(r["order_id"]))
            i += 1
        yield _sides(book)


def _brute_force(truth: list[dict[bytes, dict[int, int]]], hw: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spot, depth and depletion per row, from the full books alone."""
    n, w = len(truth), 2 * hw + 1
    spot = np.zeros(n, np.int64)
    depth = np.zeros((n, w), np.float64)
    vac = np.zeros((n, w), np.float64)
    for i, sides in enumerate(truth):
        mid = (max(sides[b"B"]) + min(sides[b"A"])) * 0.5 / NS
        spot[i] = (np.int64(np.rint(mid * 1e9)) // ES_TICK) * ES_TICK
        for off in range(-hw, hw + 1):
            p = spot[i] + off * ES_TICK
            depth[i, off + hw] = sides[b"B"].get(p, 0) + sides[b"A"].get(p, 0)
        if i == 0:
            continue
        for side in (b"B", b"A"):
            for p, size in truth[i - 1][side].items():
                off = (p - spot[i]) // ES_TICK
                gone = size - sides[side].get(p, 0)
                if gone > 0 and -hw <= off <= hw:
                    vac[i, off + hw] += gone
    return spot, depth, vac


@pytest.mark.parametrize("contract", [0, 1])
def test_surfaces_equal_a_brute_force_over_the_full_book_at_every_tick(day: np.ndarray, contract: int) -> None:
    iid = sorted(set(day["instrument_id"].tolist()))[contract]
    records = day[day["instrument_id"] == iid]
    rows = np.concatenate([(book := L3Book(ES_TICK)).apply_seconds(records), book.close_seconds()])
    assert rows["book_valid"].all()  # the simulated book is two-sided from its snapshot on
    wall, vacuum = SurfaceBuilder(ES_TICK).surfaces(rows)

    truth = list(_truth_at_row_ends(records, rows["ts_recv"]))
    spot, depth, vac = _brute_force(truth, HALF_WIDTH)

    assert len(rows) > 1000
    np.testing.assert_array_equal(wall.spot_px, spot)
    np.testing.assert_array_equal(wall.depth, depth.astype(np.float32))
    np.testing.assert_array_equal(vacuum.depletion[1:], vac[1:].astype(np.float32))
    # the point of the full book: the visible top 10 would miss depth the brute force finds
    visible = [n for n in rows.dtype.names or () if not n.startswith("near_")]
    top10 = SurfaceBuilder(ES_TICK).surfaces(rows[visible])[0]
    assert (wall.depth.sum(axis=1) > top10.depth.sum(axis=1)).mean() > 0.5


def test_far_bands_are_non_zero_wherever_the_book_has_depth_there(day: np.ndarray) -> None:
    iid = sorted(set(day["instrument_id"].tolist()))[0]
    records = day[day["instrument_id"] == iid]
    rows = np.concatenate([(book := L3Book(ES_TICK)).apply_seconds(records), book.close_seconds()])
    wall, _vacuum, bands = SurfaceBuilder(ES_TICK).feed(rows)
    truth = list(_truth_at_row_ends(records, rows["ts_recv"]))

    far = [b for b in BANDS if b.kind == "wall" and b.band == "far"]
    assert {b.side for b in far} == {"bid", "ask"}
    for band in far:
        ticks = range(band.min_ticks, band.max_ticks + 1)
        side = b"B" if band.side == "bid" else b"A"
        sign = -1 if band.side == "bid" else 1
        has_depth = np.array([any(sides[side].get(int(spot) + sign * t * ES_TICK, 0) > 0 for t in ticks)
                              for sides, spot in zip(truth, wall["spot_px"], strict=True)])
        assert has_depth.mean() > 0.5, band.name  # the simulated book is deep there most of the time
        assert (bands[band.name][has_depth] > 0).all(), band.name
        assert (bands[band.name][~has_depth] == 0).all(), band.name
