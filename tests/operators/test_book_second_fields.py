"""The 1-second row's bar inputs (trade/mid OHLC, notional, OFI, add/cancel sizes), exact values."""

from __future__ import annotations

import math

import numpy as np

from operators.book import L3Book
from operators.records import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from tests.operators.book_reference import NS, TICK, make_records, px
from tests.operators.test_book_seconds import ROWS, t

L = F_LAST
S = F_SNAPSHOT
U = UNDEF_PRICE

FLOW = [
    ("R", "N", 0, U, 0, S, t(10.0)),
    ("A", "B", 1, px(100), 10, S, t(10.0)),
    ("A", "A", 2, px(102), 10, S | L, t(10.0)),  # valid: bid 100x10, ask 102x10
    ("A", "B", 3, px(101), 4, L, t(11.1)),  # add 4 near the top; new best bid
    ("A", "B", 4, px(90), 5, L, t(11.2)),  # add 5, 11 ticks behind the best: not near
    ("C", "A", 2, px(102), 3, L, t(11.3)),  # partial cancel 3
    ("M", "A", 2, px(102), 9, L, t(11.4)),  # modify 7 -> 9: add 2
    ("M", "B", 1, px(100), 6, L, t(11.5)),  # modify 10 -> 6: cancel 4
    ("C", "B", 3, px(101), 4, L, t(11.6)),  # cancel the best bid: best falls to 100
    ("T", "A", 0, px(100), 2, 0, t(11.7)),  # trade event: the modify after the fill is no cancel
    ("F", "B", 1, px(100), 2, 0, t(11.7)),
    ("M", "B", 1, px(100), 4, L, t(11.7)),
    ("A", "A", 5, px(103), 1, L, t(11.8)),  # add 1, one tick behind the best ask: near
    ("T", "B", 0, px(102), 1, 0, t(12.1)),  # second 12: four trades in one event
    ("T", "B", 0, px(104), 2, 0, t(12.1)),
    ("T", "A", 0, px(99), 1, 0, t(12.1)),
    ("T", "B", 0, px(101), 3, L, t(12.1)),
]


def seconds(rows: list[tuple]) -> np.ndarray:
    book = L3Book(TICK)
    return np.concatenate([book.apply_seconds(make_records(rows)), book.close_seconds()])


def test_flow_stream_exact_values() -> None:
    r = seconds(FLOW)
    assert r["ts_recv"].tolist() == [11 * NS, 12 * NS, 13 * NS]
    assert r["trade_open_px"].tolist() == [U, px(100), px(102)]
    assert r["trade_high_px"].tolist() == [U, px(100), px(104)]
    assert r["trade_low_px"].tolist() == [U, px(100), px(99)]
    assert r["trade_close_px"].tolist() == [U, px(100), px(101)]
    assert r["notional"].tolist() == [0.0, 50.0, 25.5 + 52.0 + 24.75 + 75.75]
    assert r["volume"].tolist() == [0, 2, 7]
    assert r["mid_open"].tolist() == [25.25, 25.375, 25.25]
    assert r["mid_high"].tolist() == [25.25, 25.375, 25.25]
    assert r["mid_low"].tolist() == [25.25, 25.25, 25.25]
    assert r["mid_px"].tolist() == [25.25, 25.25, 25.25]
    # e_n per event in second 11: +4, 0, +3, -2, 0, -4, -2, 0; first valid event (10.0) has none.
    assert r["ofi"].tolist() == [0.0, -1.0, 0.0]
    assert r["add_bid_size"].tolist() == [0, 9, 0]
    assert r["add_ask_size"].tolist() == [0, 3, 0]
    assert r["cancel_bid_size"].tolist() == [0, 8, 0]
    assert r["cancel_ask_size"].tolist() == [0, 3, 0]
    assert r["near_pulled_bid_size"].tolist() == [0, 4, 0]  # -4 (add at 101) + 4 (M) + 4 (C)
    assert r["near_pulled_ask_size"].tolist() == [0, 0, 0]  # +3 (C) - 2 (M) - 1 (A)


def test_rows_stream_exact_values() -> None:
    r = seconds(ROWS)  # seconds 100..104; 102 and 103 are quiet
    assert r["trade_open_px"].tolist() == [U, px(101), U, U, U]
    assert r["trade_high_px"].tolist() == [U, px(101), U, U, U]
    assert r["trade_low_px"].tolist() == [U, px(100), U, U, U]
    assert r["trade_close_px"].tolist() == [U, px(100), U, U, U]
    assert r["notional"].tolist() == [0.0, 75.5, 0.0, 0.0, 0.0]
    for f in ("mid_open", "mid_high", "mid_low", "mid_px"):
        assert r[f].tolist() == [25.125] * 5  # quiet seconds carry the mid
    # 100: snapshot end (first valid) then bid 5->7: +2. 101: ask 3->1: +2, bid 7->6: -1.
    # 104: bid 6->4 at 100 (order 3 moved to 99): -2.
    assert r["ofi"].tolist() == [2.0, 1.0, 0.0, 0.0, -2.0]
    assert r["add_bid_size"].tolist() == [2, 0, 0, 0, 0]  # snapshot adds are not adds
    assert r["cancel_bid_size"].tolist() == [0, 0, 0, 0, 0]  # C after F removes filled size
    assert r["cancel_ask_size"].tolist() == [0, 0, 0, 0, 0]
    assert r["add_ask_size"].tolist() == [0, 0, 0, 0, 0]  # the move keeps its size: no change
    assert r["near_pulled_bid_size"].tolist() == [-2, 0, 0, 0, 0]


def test_price_move_ofi_and_mid_range() -> None:
    r = seconds([
        ("R", "N", 0, U, 0, S, t(5.0)),
        ("A", "B", 1, px(100), 3, S, t(5.0)),
        ("A", "A", 2, px(102), 2, S | L, t(5.0)),
        ("A", "A", 3, px(101), 5, L, t(6.1)),  # ask improves: e = -5 (new queue) ; mid 100.5
        ("C", "A", 3, px(101), 5, L, t(6.2)),  # ask back to 102: e = +5 ; mid 101
        ("C", "B", 1, px(100), 3, L, t(6.3)),  # bid side empty: no mid, chain broken
        ("A", "B", 4, px(99), 1, L, t(6.4)),  # two-sided again (mid 100.5), no previous: no e
        ("A", "B", 5, px(101), 2, L, t(6.5)),  # bid improves: e = +2 ; mid 101.5
    ])
    row = r[1]
    assert row["ofi"] == 2.0
    assert row["mid_open"] == 100.5 * TICK / NS
    assert row["mid_high"] == 101.5 * TICK / NS
    assert row["mid_low"] == 100.5 * TICK / NS  # 6.1 and 6.4 (bid 99, ask 102)
    assert row["mid_px"] == 101.5 * TICK / NS


def test_one_sided_quiet_second_has_nan_mid_range() -> None:
    book = L3Book(TICK)
    book.apply_seconds(make_records([
        ("R", "N", 0, U, 0, S | L, t(5.0)),
        ("A", "B", 1, px(100), 5, L, t(5.5)),
        ("A", "B", 2, px(100), 5, L, t(7.5)),
    ]))
    rows = np.concatenate([book.apply_seconds(make_records([])), book.close_seconds()])
    assert len(rows) == 1
    for f in ("mid_open", "mid_high", "mid_low", "mid_px"):
        assert math.isnan(rows[0][f])
    assert rows[0]["ofi"] == 0.0
