"""Hand-built MBO streams with exact top-of-book values (Databento MBO semantics)."""

from __future__ import annotations

import numpy as np

from operators.book import TOP_DTYPE, L3Book, replay_top
from operators.records import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from tests.operators.book_reference import TICK, make_records, px

L = F_LAST
S = F_SNAPSHOT
U = UNDEF_PRICE
EMPTY_SNAPSHOT = [("R", "N", 0, U, 0, S | L, 1)]


def run(rows: list[tuple], tick: int = TICK) -> tuple[L3Book, np.ndarray]:
    book = L3Book(tick)
    out = book.apply_events(make_records(rows))
    return book, out


def levels(row: np.void, side: str, n: int = 3) -> list[tuple[int | None, int, int]]:
    """The first ``n`` levels of one side as (price in ticks, size, count); UNDEF -> None."""
    p, q, c = row[f"{side}_px"], row[f"{side}_sz"], row[f"{side}_ct"]
    return [(None if p[i] == U else int(p[i]) // TICK, int(q[i]), int(c[i])) for i in range(n)]


def priorities(book: L3Book) -> dict[int, int]:
    state = book.snapshot()
    return dict(zip(state.order_id.tolist(), state.priority.tolist(), strict=True))


BASE = [
    *EMPTY_SNAPSHOT,
    ("A", "B", 1, px(100), 5, L, 2),
    ("A", "B", 2, px(100), 2, L, 3),
    ("A", "B", 3, px(99), 4, L, 4),
    ("A", "A", 4, px(102), 7, L, 5),
]


def test_add_builds_levels_best_first() -> None:
    book, out = run(BASE)
    assert out.dtype == TOP_DTYPE
    assert len(out) == 5
    last = out[-1]
    assert bool(last["book_valid"])
    assert levels(last, "bid") == [(100, 7, 2), (99, 4, 1), (None, 0, 0)]
    assert levels(last, "ask") == [(102, 7, 1), (None, 0, 0), (None, 0, 0)]
    assert last["bid_px"].tolist()[2:] == [U] * 8
    assert (book.best_bid, book.best_ask) == (px(100), px(102))
    assert out["ts_recv"].tolist() == [1, 2, 3, 4, 5]
    assert out["sequence"].tolist() == [0, 1, 2, 3, 4]
    assert out["instrument_id"].tolist() == [7] * 5
    assert book.anomalies == dict.fromkeys(book.anomalies, 0)


def test_partial_cancel_keeps_order() -> None:
    _, out = run([*BASE, ("C", "B", 1, px(100), 3, L, 6)])
    assert levels(out[-1], "bid") == [(100, 4, 2), (99, 4, 1), (None, 0, 0)]


def test_full_cancel_removes_order_and_level() -> None:
    _, out = run([*BASE, ("C", "B", 1, px(100), 5, L, 6), ("C", "B", 2, px(100), 2, L, 7)])
    assert levels(out[-2], "bid") == [(100, 2, 1), (99, 4, 1), (None, 0, 0)]
    assert levels(out[-1], "bid") == [(99, 4, 1), (None, 0, 0), (None, 0, 0)]


def test_modify_size_down_keeps_priority() -> None:
    before = priorities(run(BASE)[0])
    book, out = run([*BASE, ("M", "B", 1, px(100), 1, L, 6)])
    assert levels(out[-1], "bid") == [(100, 3, 2), (99, 4, 1), (None, 0, 0)]
    assert priorities(book) == before


def test_modify_price_change_loses_priority() -> None:
    before = priorities(run(BASE)[0])
    book, out = run([*BASE, ("M", "B", 1, px(101), 5, L, 6)])
    assert levels(out[-1], "bid") == [(101, 5, 1), (100, 2, 1), (99, 4, 1)]
    after = priorities(book)
    assert after[1] > max(before.values())
    assert {k: v for k, v in after.items() if k != 1} == {k: v for k, v in before.items() if k != 1}


def test_modify_size_up_loses_priority() -> None:
    before = priorities(run(BASE)[0])
    book, out = run([*BASE, ("M", "B", 1, px(100), 9, L, 6)])
    assert levels(out[-1], "bid") == [(100, 11, 2), (99, 4, 1), (None, 0, 0)]
    assert priorities(book)[1] > max(before.values())


def test_clear_empties_both_sides_and_invalidates_until_incremental_data() -> None:
    book, out = run([*BASE, ("R", "N", 0, U, 0, L, 6), ("A", "A", 9, px(105), 1, L, 7)])
    assert levels(out[-2], "bid") == [(None, 0, 0)] * 3
    assert levels(out[-2], "ask") == [(None, 0, 0)] * 3
    assert not out[-2]["book_valid"]
    assert bool(out[-1]["book_valid"])
    assert levels(out[-1], "ask") == [(105, 1, 1), (None, 0, 0), (None, 0, 0)]
    assert book.valid


def test_trade_fill_none_do_not_change_book() -> None:
    _, out = run([*BASE, ("T", "A", 0, px(100), 2, 0, 6), ("F", "B", 1, px(100), 2, 0, 6),
                  ("N", "N", 0, U, 0, L, 6)])
    assert out[-1]["bid_px"].tolist() == out[-2]["bid_px"].tolist()
    assert out[-1]["bid_sz"].tolist() == out[-2]["bid_sz"].tolist()
    assert out[-1]["ask_sz"].tolist() == out[-2]["ask_sz"].tolist()


def test_fill_then_partial_cancel_and_fill_then_modify_to_remaining() -> None:
    _, out = run([
        *BASE,
        ("T", "A", 0, px(100), 2, 0, 6),
        ("F", "B", 1, px(100), 2, 0, 6),
        ("C", "B", 1, px(100), 2, L, 6),
        ("T", "A", 0, px(100), 2, 0, 7),
        ("F", "B", 1, px(100), 2, 0, 7),
        ("M", "B", 1, px(100), 1, L, 7),
    ])
    assert len(out) == 7
    assert levels(out[-2], "bid") == [(100, 5, 2), (99, 4, 1), (None, 0, 0)]
    assert levels(out[-1], "bid") == [(100, 3, 2), (99, 4, 1), (None, 0, 0)]


def test_snapshot_makes_book_valid_only_when_complete() -> None:
    book = L3Book(TICK)
    out = book.apply_events(make_records([
        ("A", "B", 5, px(90), 1, L, 1),  # mid-stream: no clear yet
        ("R", "N", 0, U, 0, S, 2),
        ("A", "B", 1, px(100), 5, S, 2),
        ("A", "A", 2, px(101), 5, S | L, 2),
        ("A", "B", 3, px(99), 1, L, 3),
    ]))
    assert out["book_valid"].tolist() == [False, True, True]
    assert levels(out[1], "bid") == [(100, 5, 1), (None, 0, 0), (None, 0, 0)]
    assert levels(out[2], "ask") == [(101, 5, 1), (None, 0, 0), (None, 0, 0)]


def test_no_snapshot_or_clear_never_valid() -> None:
    book, out = run([("A", "B", 1, px(100), 5, L, 1), ("A", "A", 2, px(101), 5, L, 2)])
    assert out["book_valid"].tolist() == [False, False]
    assert levels(out[-1], "bid")[0] == (100, 5, 1)
    assert not book.valid


def test_cancel_unknown_is_counted_and_ignored() -> None:
    book, out = run([*BASE, ("C", "B", 77, px(100), 1, L, 6)])
    assert book.anomalies["cancel_unknown"] == 1
    assert levels(out[-1], "bid") == levels(out[-2], "bid")
    assert bool(out[-1]["book_valid"])


def test_cancel_oversize_removes_order() -> None:
    book, out = run([*BASE, ("C", "B", 3, px(99), 10, L, 6)])
    assert book.anomalies["cancel_oversize"] == 1
    assert levels(out[-1], "bid") == [(100, 7, 2), (None, 0, 0), (None, 0, 0)]


def test_crossed_book_is_counted_and_sampled_invalid_until_uncrossed() -> None:
    book, out = run([
        *BASE,
        ("A", "B", 10, px(102), 1, L, 6),  # locked: bid 102 == ask 102
        ("A", "B", 11, px(103), 1, L, 7),  # crossed
        ("C", "B", 10, px(102), 1, 0, 8),
        ("C", "B", 11, px(103), 1, L, 8),
    ])
    assert out["book_valid"].tolist()[-3:] == [False, False, True]
    assert book.anomalies["crossed_book"] == 2
    assert levels(out[-2], "bid")[0] == (103, 1, 1)
    assert book.valid


def test_undefined_price_add_is_bad_price() -> None:
    book, out = run([*BASE, ("A", "B", 20, U, 1, L, 6), ("M", "B", 1, U, 1, L, 7)])
    assert book.anomalies["bad_price"] == 2
    assert levels(out[-1], "bid") == [(100, 7, 2), (99, 4, 1), (None, 0, 0)]


def test_other_anomalies() -> None:
    book, out = run([
        *BASE,
        ("A", "B", 30, px(98), 0, L, 6),  # zero size: ignored
        ("M", "A", 31, px(103), 2, L, 7),  # unknown id: an add
        ("A", "A", 4, px(104), 6, L, 8),  # duplicate id: a modify
        ("X", "N", 0, U, 0, L, 9),  # unknown action
        ("A", "N", 32, px(98), 1, L, 10),  # no side
    ])
    assert book.anomalies == {
        "cancel_unknown": 0, "cancel_oversize": 0, "modify_unknown": 1, "add_duplicate": 1,
        "crossed_book": 0, "bad_price": 0, "zero_size": 1, "unknown_action": 1, "bad_side": 1,
        "price_out_of_grid": 0,
    }
    assert levels(out[-1], "ask") == [(103, 2, 1), (104, 6, 1), (None, 0, 0)]
    assert levels(out[-1], "bid") == [(100, 7, 2), (99, 4, 1), (None, 0, 0)]


def test_huge_order_ids_far_prices_and_off_tick_prices() -> None:
    big = 2**64 - 3
    half = TICK // 2
    rows = [
        *EMPTY_SNAPSHOT,
        ("A", "B", big, px(100), 1, L, 2),
        ("A", "B", 2**63, px(100) - 10**12, 2, L, 3),  # 4000 ticks below: the grid grows
        ("A", "A", 0, px(100) + half, 3, L, 4),  # off the declared tick: the grid refines
        ("A", "A", 5, px(10**5), 4, L, 5),  # far above
        ("C", "B", big, px(100), 1, L, 6),
    ]
    book, out = run(rows)
    assert out[3]["ask_px"][:2].tolist() == [px(100) + half, U]
    assert out[4]["ask_px"][:3].tolist() == [px(100) + half, px(10**5), U]
    assert out[5]["bid_px"][:2].tolist() == [px(100) - 10**12, U]
    assert out[5]["bid_sz"][0] == 2
    assert book.anomalies == dict.fromkeys(book.anomalies, 0)
    _, out0 = run(rows, tick=0)
    assert out0.tobytes() == out.tobytes()


def test_price_that_fits_no_grid_is_counted_and_ignored() -> None:
    book, out = run([*BASE, ("A", "A", 40, px(10**6) + 7, 1, L, 6), ("A", "A", 41, px(101), 1, L, 7)])
    assert book.anomalies["price_out_of_grid"] == 1
    assert levels(out[-2], "ask") == [(102, 7, 1), (None, 0, 0), (None, 0, 0)]
    assert levels(out[-1], "ask") == [(101, 1, 1), (102, 7, 1), (None, 0, 0)]


def test_many_orders_grow_the_table_and_cancel_back_to_empty() -> None:
    n = 5000
    rows = [*EMPTY_SNAPSHOT]
    rows += [("A", "B" if i % 2 else "A", 10**12 + i * 7919, px(100 - i % 50 if i % 2 else 101 + i % 50),
              1 + i % 3, L, 2) for i in range(n)]
    rows += [("C", "N", 10**12 + i * 7919, 0, 1 + i % 3, L, 3) for i in range(n)]
    book, out = run(rows)
    mid = out[n]
    assert int(mid["bid_sz"].sum() + mid["ask_sz"].sum()) > 0
    assert (mid["bid_px"][0], mid["bid_ct"][0]) == (px(99), 100)
    assert (mid["ask_px"][0], mid["ask_ct"][0]) == (px(101), 100)
    assert book.order_count == 0
    assert book.best_bid is None and book.best_ask is None
    assert out[-1]["bid_px"].tolist() == [U] * 10
    assert book.anomalies == dict.fromkeys(book.anomalies, 0)


def test_replay_top_splits_instruments_and_keeps_record_order() -> None:
    a = make_records(BASE, instrument_id=1)
    b = make_records([*EMPTY_SNAPSHOT, ("A", "A", 1, px(50), 9, L, 2)], instrument_id=2)
    mixed = np.concatenate([a[:2], b[:1], a[2:4], b[1:], a[4:]])
    out = replay_top(mixed, TICK)
    assert out["instrument_id"].tolist() == [1, 1, 2, 1, 1, 2, 1]
    only_a = out[out["instrument_id"] == 1]
    assert only_a.tobytes() == L3Book(TICK).apply_events(a).tobytes()
    assert out[5]["ask_px"][0] == px(50)
