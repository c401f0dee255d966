"""``L3Book.advance_seconds``: a live tick closes a quiet book's seconds, the rows it would
write at its next event anyway, never one twice or backwards."""

from __future__ import annotations

import numpy as np

from operators.book import L3Book
from tests.operators.book_reference import NS, TICK, make_records, px
from tests.operators.test_book_seconds import ROWS, U, ask, bid, t

BEFORE_QUIET = 11
"""``ROWS[:11]`` ends with the event at 101.7 s; seconds 102 and 103 are quiet, the next event is at 104.3 s."""


def _without_ticks() -> np.ndarray:
    book = L3Book(TICK)
    return np.concatenate([book.apply_seconds(make_records(ROWS)), book.close_seconds()])


def test_advance_closes_the_quiet_seconds_with_the_book_carried_forward() -> None:
    book = L3Book(TICK)
    first = book.apply_seconds(make_records(ROWS[:BEFORE_QUIET]))
    carried = book.advance_seconds(t(104.0))

    assert first["ts_recv"].tolist() == [101 * NS]
    assert carried["ts_recv"].tolist() == [102 * NS, 103 * NS, 104 * NS]  # seconds 101, 102, 103
    for row in carried[1:]:  # 102 and 103 had no event: the book as after 101.7 s, nothing counted
        assert bid(row) == [(px(100), 6, 2), (U, 0, 0)] and ask(row) == [(px(101), 1, 1), (U, 0, 0)]
        assert (row["volume"], row["trade_count"], row["event_count"], row["add_count"]) == (0, 0, 0, 0)
        assert row["mid_open"] == row["mid_high"] == row["mid_low"] == row["mid_px"] == 25.125
    assert (carried[0]["volume"], carried[0]["trade_count"]) == (3, 2)  # second 101: both trades


def test_rows_are_the_same_with_ticks_as_without() -> None:
    book = L3Book(TICK)
    parts = [book.apply_seconds(make_records(ROWS[:BEFORE_QUIET])), book.advance_seconds(t(102.5)),
             book.advance_seconds(t(102.9)), book.advance_seconds(t(104.3)),  # up to the next event exactly
             book.apply_seconds(make_records(ROWS[BEFORE_QUIET:])), book.close_seconds()]

    assert [len(p) for p in parts] == [1, 1, 0, 2, 0, 1]
    assert np.concatenate(parts).tobytes() == _without_ticks().tobytes()


def test_nothing_closes_inside_an_event_nor_before_the_book_is_valid() -> None:
    book = L3Book(TICK)
    assert len(book.advance_seconds(t(50.0))) == 0  # no record yet
    parts = [book.apply_seconds(make_records(ROWS[:1]))]  # a cancel before any snapshot: not started
    assert len(book.advance_seconds(t(100.0))) == 0
    parts.append(book.apply_seconds(make_records(ROWS[1:6])))  # ... to the trade at 101.2 s: its event is open
    assert len(book.advance_seconds(t(103.0))) == 0
    parts += [book.apply_seconds(make_records(ROWS[6:])), book.close_seconds()]
    assert np.concatenate(parts).tobytes() == _without_ticks().tobytes()


def test_a_late_record_after_a_tick_counts_in_the_open_second() -> None:
    book = L3Book(TICK)
    book.apply_seconds(make_records(ROWS[:BEFORE_QUIET]))
    carried = book.advance_seconds(t(104.0))
    late = make_records([("A", "B", 9, px(98), 4, 128, t(102.5))])  # for second 102, already written
    assert len(book.apply_seconds(late)) == 0
    assert len(book.advance_seconds(t(103.0))) == 0  # a tick behind the book: nothing
    rest = book.apply_seconds(make_records(ROWS[BEFORE_QUIET:]))
    last = book.close_seconds()

    ts = np.concatenate([carried, rest, last])["ts_recv"].tolist()
    assert ts == [102 * NS, 103 * NS, 104 * NS, 105 * NS]  # every second once, in order
    assert (int(last[0]["add_count"]), int(last[0]["modify_count"]), int(last[0]["event_count"])) == (1, 1, 2)
    assert bid(last[0], 3) == [(px(100), 4, 1), (px(99), 2, 1), (px(98), 4, 1)]


def test_a_resumed_book_advances_as_the_original_would() -> None:
    book = L3Book(TICK)
    book.apply_seconds(make_records(ROWS[:BEFORE_QUIET]))
    resumed = L3Book(TICK, resume=book.snapshot())
    assert resumed.advance_seconds(t(104.0)).tobytes() == book.advance_seconds(t(104.0)).tobytes()
