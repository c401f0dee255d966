"""1-second book rows (``silver.book_snapshot_1s``) on a hand-built multi-second stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.book import SECOND_DTYPE, L3Book
from operators.records import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from tests.operators.book_reference import NS, TICK, make_records, px

L = F_LAST
S = F_SNAPSHOT
U = UNDEF_PRICE


def t(seconds: float) -> int:
    return round(seconds * NS)


ROWS = [
    ("C", "B", 99, px(100), 1, L, t(99.5)),  # before any snapshot: invalid, no row
    ("R", "N", 0, U, 0, S, t(100.1)),
    ("A", "B", 1, px(100), 5, S, t(100.1)),
    ("A", "A", 2, px(101), 3, S | L, t(100.1)),  # snapshot done: first valid second is 100
    ("A", "B", 3, px(100), 2, L, t(100.5)),
    ("T", "B", 0, px(101), 2, 0, t(101.2)),  # buyer-aggressor trade
    ("F", "A", 2, px(101), 2, 0, t(101.2)),
    ("C", "A", 2, px(101), 2, L, t(101.2)),
    ("T", "A", 0, px(100), 1, 0, t(101.7)),  # seller-aggressor trade
    ("F", "B", 1, px(100), 1, 0, t(101.7)),
    ("C", "B", 1, px(100), 1, L, t(101.7)),
    # seconds 102 and 103 are quiet
    ("M", "B", 3, px(99), 2, L, t(104.3)),
]


def bid(row: np.void, n: int = 2) -> list[tuple[int, int, int]]:
    return [(int(row["bid_px"][i]), int(row["bid_sz"][i]), int(row["bid_ct"][i])) for i in range(n)]


def ask(row: np.void, n: int = 2) -> list[tuple[int, int, int]]:
    return [(int(row["ask_px"][i]), int(row["ask_sz"][i]), int(row["ask_ct"][i])) for i in range(n)]


def micro(b: float, a: float, qb: int, qa: int) -> float:
    return (b * qa + a * qb) / (qb + qa)


def test_second_rows_exact_values() -> None:
    book = L3Book(TICK)
    rows = book.apply_seconds(make_records(ROWS))
    assert rows.dtype == SECOND_DTYPE
    assert rows["ts_recv"].tolist() == [101 * NS, 102 * NS, 103 * NS, 104 * NS]
    last = book.close_seconds()
    assert last["ts_recv"].tolist() == [105 * NS]
    assert len(book.close_seconds()) == 0  # emitted exactly once
    rows = np.concatenate([rows, last])

    assert rows["instrument_id"].tolist() == [7] * 5
    assert rows["book_valid"].tolist() == [True] * 5
    assert bid(rows[0]) == [(px(100), 7, 2), (U, 0, 0)]
    assert ask(rows[0]) == [(px(101), 3, 1), (U, 0, 0)]
    for r in rows[1:4]:
        assert bid(r) == [(px(100), 6, 2), (U, 0, 0)]
        assert ask(r) == [(px(101), 1, 1), (U, 0, 0)]
    assert bid(rows[4]) == [(px(100), 4, 1), (px(99), 2, 1)]
    assert ask(rows[4]) == [(px(101), 1, 1), (U, 0, 0)]

    assert rows["best_bid_px"].tolist() == [px(100)] * 5
    assert rows["best_ask_px"].tolist() == [px(101)] * 5
    assert rows["mid_px"].tolist() == [25.125] * 5
    assert rows["spread_ticks"].tolist() == [1] * 5
    expected_micro = [micro(25.0, 25.25, 7, 3)] + [micro(25.0, 25.25, 6, 1)] * 3 + [micro(25.0, 25.25, 4, 1)]
    assert rows["microprice"].tolist() == pytest.approx(expected_micro, rel=1e-12)

    assert rows["last_trade_px"].tolist() == [U, px(100), px(100), px(100), px(100)]
    assert rows["last_trade_sz"].tolist() == [0, 1, 1, 1, 1]
    assert rows["volume"].tolist() == [0, 3, 0, 0, 0]
    assert rows["buy_volume"].tolist() == [0, 2, 0, 0, 0]
    assert rows["sell_volume"].tolist() == [0, 1, 0, 0, 0]
    assert rows["trade_count"].tolist() == [0, 2, 0, 0, 0]
    assert rows["add_count"].tolist() == [1, 0, 0, 0, 0]  # snapshot adds are not adds
    assert rows["cancel_count"].tolist() == [0, 2, 0, 0, 0]
    assert rows["modify_count"].tolist() == [0, 0, 0, 0, 1]
    assert rows["event_count"].tolist() == [2, 2, 0, 0, 1]


def test_split_input_gives_the_same_rows() -> None:
    rec = make_records(ROWS)
    whole = L3Book(TICK)
    expected = np.concatenate([whole.apply_seconds(rec), whole.close_seconds()])
    for cut in range(len(rec) + 1):
        book = L3Book(TICK)
        parts = [book.apply_seconds(rec[:cut]), book.apply_seconds(rec[cut:]), book.close_seconds()]
        assert np.concatenate(parts).tobytes() == expected.tobytes()


def test_one_sided_book_has_undefined_mid_spread_microprice() -> None:
    book = L3Book(TICK)
    book.apply_seconds(make_records([
        ("R", "N", 0, U, 0, S | L, t(5.0)),
        ("A", "B", 1, px(100), 5, L, t(5.5)),
    ]))
    row = book.close_seconds()[0]
    assert row["ts_recv"] == 6 * NS
    assert row["best_bid_px"] == px(100)
    assert row["best_ask_px"] == U
    assert math.isnan(row["mid_px"])
    assert math.isnan(row["microprice"])
    assert row["spread_ticks"] == -1
    assert row["event_count"] == 2


def test_never_valid_book_emits_no_rows() -> None:
    book = L3Book(TICK)
    rows = book.apply_seconds(make_records([
        ("A", "B", 1, px(100), 5, L, t(1.0)),
        ("A", "A", 2, px(101), 5, L, t(3.0)),
    ]))
    assert len(rows) == 0
    assert len(book.close_seconds()) == 0


def test_second_boundary_is_exact_for_real_timestamps() -> None:
    k = 1_700_000_000  # seconds since the epoch: ts_recv ~1.7e18 ns is not exact in float64
    book = L3Book(TICK)
    rows = book.apply_seconds(make_records([
        ("R", "N", 0, U, 0, S | L, k * NS - 2),
        ("A", "B", 1, px(100), 5, L, k * NS - 1),  # still second k - 1
        ("A", "A", 2, px(101), 5, L, k * NS),  # second k
    ]))
    assert rows["ts_recv"].tolist() == [k * NS]
    assert rows["add_count"].tolist() == [1]
    assert rows["ask_px"][0, 0] == U
    last = book.close_seconds()
    assert last["ts_recv"].tolist() == [(k + 1) * NS]
    assert last["add_count"].tolist() == [1]
