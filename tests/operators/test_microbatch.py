"""Event-time micro-batches (operators.microbatch): hand-built cases with exact answers."""

from __future__ import annotations

import pytest

from operators.microbatch import EventTimeBatcher, MicroBatch, window_end

MS = 1_000_000


def test_window_end_aligns_to_multiples_of_the_width() -> None:
    assert window_end(0, 100 * MS) == 100 * MS
    assert window_end(99 * MS + 999_999, 100 * MS) == 100 * MS
    assert window_end(100 * MS, 100 * MS) == 200 * MS
    assert window_end(1_234 * MS, 0) == 1_234 * MS


def test_zero_width_scores_each_item_at_once() -> None:
    b: EventTimeBatcher[str] = EventTimeBatcher(0)
    assert b.add(5, "a", now=0.0) == [MicroBatch(5, ("a",))]
    assert b.add(5, "b", now=0.0) == [MicroBatch(5, ("b",))]
    assert b.pending == () and b.deadline(0.0) is None and b.close() == []


def test_items_in_one_window_wait_and_the_first_of_the_next_window_closes_them() -> None:
    b: EventTimeBatcher[str] = EventTimeBatcher(100 * MS)
    assert b.add(1_000 * MS, "a", now=10.0) == []
    assert b.add(1_099 * MS + 999_999, "b", now=10.01) == []          # last nanosecond of the window
    assert b.close_ts == 1_100 * MS and b.pending == ("a", "b")
    assert b.add(1_100 * MS, "c", now=10.02) == [MicroBatch(1_100 * MS, ("a", "b"))]  # at open + N: closes
    assert tuple(b.pending) == ("c",) and b.close_ts == 1_200 * MS  # tuple(): mypy keeps the first check's type


def test_an_item_out_of_order_closes_the_open_batch_and_keeps_its_own_window() -> None:
    b: EventTimeBatcher[str] = EventTimeBatcher(100 * MS)
    b.add(550 * MS, "late-window", now=0.0)
    assert b.add(420 * MS, "early", now=0.0) == [MicroBatch(600 * MS, ("late-window",))]
    assert b.close() == [MicroBatch(500 * MS, ("early",))]


def test_wall_clock_deadline_is_width_after_the_batch_opened() -> None:
    b: EventTimeBatcher[str] = EventTimeBatcher(100 * MS)
    assert b.deadline(0.1) is None
    b.add(0, "a", now=50.0)
    b.add(10 * MS, "b", now=50.08)                                      # does not move the deadline
    assert b.deadline(0.1) == pytest.approx(50.1)
    assert b.expire(50.099, 0.1) == []
    assert b.expire(50.1, 0.1) == [MicroBatch(100 * MS, ("a", "b"))]
    assert b.expire(60.0, 0.1) == [] and b.deadline(0.1) is None
    b.add(20 * MS, "c", now=70.0)                                       # a new batch, same window end
    assert b.deadline(0.1) == pytest.approx(70.1) and b.close() == [MicroBatch(100 * MS, ("c",))]


def test_a_batch_rebuilt_from_its_pending_items_closes_the_same() -> None:
    b: EventTimeBatcher[str] = EventTimeBatcher(100 * MS)
    b.add(30 * MS, "a", now=1.0)
    b.add(40 * MS, "b", now=1.0)
    resumed: EventTimeBatcher[str] = EventTimeBatcher(100 * MS, pending=b.pending, close_ts=b.close_ts, opened_at=9.0)
    assert resumed.add(130 * MS, "c", now=9.0) == b.add(130 * MS, "c", now=1.0) == [MicroBatch(100 * MS, ("a", "b"))]


def test_negative_width_is_refused() -> None:
    with pytest.raises(ValueError, match="zero or positive"):
        EventTimeBatcher(-1)


def test_a_watermark_past_the_window_closes_the_batch_without_waiting_for_the_deadline() -> None:
    batcher: EventTimeBatcher[str] = EventTimeBatcher(100)
    assert batcher.add(1_050, "a", now=0.0) == []
    assert batcher.add(1_070, "b", now=0.0) == []
    assert batcher.advance(1_099) == []  # an item at 1_099 could still join
    [batch] = batcher.advance(1_100)
    assert batch.close_ts == 1_100 and batch.items == ("a", "b")
    assert batcher.close_ts is None and batcher.advance(10**12) == []
