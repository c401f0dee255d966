"""Invariants of the L3 book over generated, consistent MBO event streams."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operators.book import L3Book
from operators.records import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from tests.operators.book_reference import (
    NS,
    TICK,
    RefBook,
    make_records,
    px,
    reference_tops,
    rows_as_tops,
)

L = F_LAST
S = F_SNAPSHOT
U = UNDEF_PRICE
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_op = st.tuples(
    st.integers(0, 9),  # kind
    st.integers(0, 10**9),  # picks an order / side / time step
    st.integers(1, 20),  # size
    st.integers(0, 30),  # price offset in ticks
    st.booleans(),  # ends an event
)


@st.composite
def mbo_streams(draw: st.DrawFn, *, uncrossed: bool = True) -> np.ndarray:
    """A consistent stream: adds, partial/full cancels and modifies of live orders, trades."""
    start = draw(st.sampled_from(["snapshot", "clear", "none"]))
    id_base = draw(st.sampled_from([1, 2**63, 2**64 - 10**6]))
    ops = draw(st.lists(_op, max_size=80))
    rows: list[tuple] = []
    live: dict[int, list] = {}  # id -> [side, ticks, size]
    ts = 10 * NS + draw(st.integers(0, NS))
    next_id = id_base

    def price_ticks(side: str, off: int) -> int:
        if uncrossed:
            return 99 - off % 12 if side == "B" else 101 + off % 12
        return 95 + off % 12

    if start == "snapshot":
        rows.append(("R", "N", 0, U, 0, S, ts))
        for k in range(draw(st.integers(0, 4))):
            side = "B" if k % 2 else "A"
            live[next_id] = [side, price_ticks(side, k), 1 + k]
            rows.append(("A", side, next_id, px(live[next_id][1]), 1 + k, S, ts))
            next_id += 1
        rows[-1] = (*rows[-1][:5], S | L, ts)
    elif start == "clear":
        rows.append(("R", "N", 0, U, 0, L, ts))
    for kind, r, size, off, last in ops:
        ts += r % (NS * 7 // 10)
        flag = L if last else 0
        ids = sorted(live)
        if kind <= 3 or not ids:
            side = "B" if r % 2 else "A"
            live[next_id] = [side, price_ticks(side, off), size]
            rows.append(("A", side, next_id, px(live[next_id][1]), size, flag, ts))
            next_id += 1 + r % 1000
        elif kind <= 5:
            oid = ids[r % len(ids)]
            side, ticks, rest = live[oid]
            cut = rest if kind == 4 or size >= rest else size
            rows.append(("C", side, oid, px(ticks), cut, flag, ts))
            if cut == rest:
                del live[oid]
            else:
                live[oid][2] -= cut
        elif kind <= 7:
            oid = ids[r % len(ids)]
            side = live[oid][0]
            ticks = live[oid][1] if kind == 6 else price_ticks(side, off)
            live[oid] = [side, ticks, size]
            rows.append(("M", side, oid, px(ticks), size, flag, ts))
        elif kind == 8:
            oid = ids[r % len(ids)]
            side, ticks, rest = live[oid]
            aggressor = "A" if side == "B" else "B"
            rows.append(("T", aggressor, 0, px(ticks), 1, 0, ts))
            rows.append(("F", side, oid, px(ticks), 1, 0, ts))
            if rest > 1:
                rows.append(("M", side, oid, px(ticks), rest - 1, flag, ts))
                live[oid][2] -= 1
            else:
                rows.append(("C", side, oid, px(ticks), 1, flag, ts))
                del live[oid]
        else:
            rows.append(("N", "N", 0, U, 0, flag, ts))
    if rows:
        rows[-1] = (*rows[-1][:5], rows[-1][5] | L, rows[-1][6])
    return make_records(rows)


@SETTINGS
@given(mbo_streams(uncrossed=False))
def test_book_matches_dict_reference(rec: np.ndarray) -> None:
    book = L3Book(TICK)
    rows = book.apply_events(rec)
    assert rows_as_tops(rows) == reference_tops(rec)
    ref = RefBook()
    for r in rec:
        ref.apply(r)
    expected = {name: n for name, n in ref.anomalies.items() if n}
    got = {name: n for name, n in book.anomalies.items() if n and name != "crossed_book"}
    assert got == expected


@SETTINGS
@given(mbo_streams())
def test_valid_book_is_never_crossed(rec: np.ndarray) -> None:
    book = L3Book(TICK)
    rows = book.apply_events(rec)
    both = (rows["bid_px"][:, 0] != U) & (rows["ask_px"][:, 0] != U)
    assert (rows["bid_px"][both, 0] < rows["ask_px"][both, 0]).all()
    assert book.anomalies == dict.fromkeys(book.anomalies, 0)


@SETTINGS
@given(mbo_streams(uncrossed=False), st.sampled_from([0, 3 * TICK, TICK // 5]))
def test_unknown_or_wrong_tick_gives_the_same_book(rec: np.ndarray, tick: int) -> None:
    assert L3Book(tick).apply_events(rec)[["book_valid", "bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz",
                                            "ask_ct"]].tobytes() == \
        L3Book(TICK).apply_events(rec)[["book_valid", "bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz",
                                        "ask_ct"]].tobytes()


@SETTINGS
@given(mbo_streams(uncrossed=False), st.floats(0, 1))
def test_snapshot_resume_is_identical(rec: np.ndarray, where: float) -> None:
    cut = int(where * len(rec))
    whole = L3Book(TICK).apply_events(rec)
    first = L3Book(TICK)
    head = first.apply_events(rec[:cut])
    tail = L3Book(TICK, resume=first.snapshot()).apply_events(rec[cut:])
    assert np.concatenate([head, tail]).tobytes() == whole.tobytes()

    one = L3Book(TICK)
    expected = np.concatenate([one.apply_seconds(rec), one.close_seconds()])
    first = L3Book(TICK)
    head = first.apply_seconds(rec[:cut])
    resumed = L3Book(TICK, resume=first.snapshot())
    got = np.concatenate([head, resumed.apply_seconds(rec[cut:]), resumed.close_seconds()])
    assert got.tobytes() == expected.tobytes()
    assert resumed.anomalies == one.anomalies


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30), st.integers(1, 50)), min_size=1, max_size=200),
       st.randoms(use_true_random=False))
def test_add_then_cancel_all_leaves_an_empty_book(orders: list, rnd) -> None:
    rows = [("R", "N", 0, U, 0, S | L, 1)]
    for i, (is_bid, off, size) in enumerate(orders):
        rows.append(("A", "B" if is_bid else "A", 10**15 + i, px(100 - off if is_bid else 101 + off), size, L, 2))
    order = list(range(len(orders)))
    rnd.shuffle(order)
    for i in order:
        rows.append(("C", "N", 10**15 + i, 0, orders[i][2], L, 3))
    book = L3Book(TICK)
    out = book.apply_events(make_records(rows))
    assert book.order_count == 0
    assert book.best_bid is None and book.best_ask is None
    assert out[-1]["bid_px"].tolist() == [U] * 10 and out[-1]["ask_px"].tolist() == [U] * 10
    peak = out[len(orders)]
    for is_bid, name in ((True, "bid_sz"), (False, "ask_sz")):
        best10 = sorted({o for b, o, _ in orders if b == is_bid})[:10]
        assert int(peak[name].sum()) == sum(s for b, o, s in orders if b == is_bid and o in best10)
    assert book.anomalies == dict.fromkeys(book.anomalies, 0)
