"""The tick every step after the book counts in: the instrument's definition's, else the grid its
book's first sampled second shows, fixed once by the book step and carried on its rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from flows.items import BookSlice
from flows.steps.book_1s import BookSecondsLogic
from operators.chunks import InstrumentInfo
from operators.instruments import book_tick
from tests.operators.book_streams import synthetic_stream

ES = 250_000_000
UNDEFINED = InstrumentInfo(42, "ESZ3", "ES", "FUT", tick=0, source="symbology")


def test_the_definitions_tick_wins_over_any_price_grid() -> None:
    assert book_tick(replace(UNDEFINED, tick=10_000_000), np.zeros(0)) == 10_000_000


def test_without_a_definition_the_book_step_fixes_the_grid_its_first_second_shows() -> None:
    records = synthetic_stream(4_000, seed=3, tick=ES)
    spread = records["ts_recv"][0] + np.arange(len(records), dtype=np.uint64) * np.uint64(1_000_000)  # 4 seconds
    records["ts_recv"], records["ts_event"] = spread, spread
    logic = BookSecondsLogic(10, None)

    out, _ = logic.on_item(BookSlice("test", records, UNDEFINED, 19_675))

    assert [len(o.rows) for o in out] == [3]  # the three seconds the fourth closed
    assert out[0].info.tick == ES  # the ES grid, from the records alone
    assert logic.snapshot().info.tick == ES  # and kept for a resume


def test_a_book_with_no_two_prices_counts_in_price_units() -> None:
    one = np.zeros(1, [("bid_px", "<i8", (2,)), ("ask_px", "<i8", (2,))])
    one["bid_px"][0] = [4_500_000_000_000, 0]

    assert book_tick(UNDEFINED, one) == 1
    assert book_tick(UNDEFINED, one[:0]) == 1
