"""The book on a synthetic ES-like stream (the benchmark's generator, small): modes agree."""

from __future__ import annotations

import numpy as np

from operators.book import L3Book
from tests.operators.book_streams import ES_TICK, synthetic_stream


def test_apply_only_events_and_seconds_reach_the_same_book() -> None:
    rec = synthetic_stream(30_000, seed=3)
    only, events, seconds, unknown_tick = L3Book(ES_TICK), L3Book(ES_TICK), L3Book(ES_TICK), L3Book(0)
    only.apply_only(rec)
    rows = events.apply_events(rec)
    seconds.apply_seconds(rec)
    unknown_tick.apply_only(rec)
    states = [b.snapshot() for b in (only, events, seconds, unknown_tick)]
    for st in states[1:]:
        order = np.argsort(st.order_id)
        base = np.argsort(states[0].order_id)
        for field in ("order_id", "price", "size", "side", "priority"):
            assert getattr(st, field)[order].tolist() == getattr(states[0], field)[base].tolist()
    assert only.anomalies == dict.fromkeys(only.anomalies, 0)
    assert len(rows) == int(np.count_nonzero(rec["flags"] & 128))
    assert rows["book_valid"][-1]
    assert (rows["bid_px"][rows["book_valid"], 0] < rows["ask_px"][rows["book_valid"], 0]).all()
    assert only.order_count > 1000  # the order table grew past its initial size
