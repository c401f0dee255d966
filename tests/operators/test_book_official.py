"""The book on Databento's official MBO test file (2 records: cancels of unknown orders)."""

from __future__ import annotations

from pathlib import Path

import databento

from operators.book import L3Book, replay_top
from operators.records import MBO_DTYPE, UNDEF_PRICE

# the repository's copy (see tests/data/dbn-official/metadata.json): always there, never skipped
OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "dbn-official" / "test_data.mbo.v3.dbn"


def test_official_mbo_file_cancels_unknown_orders_and_stays_invalid() -> None:
    records = databento.DBNStore.from_file(OFFICIAL).to_ndarray()
    assert records.dtype == MBO_DTYPE
    assert len(records) == 2
    book = L3Book(0)
    rows = book.apply_events(records)
    assert book.anomalies["cancel_unknown"] == 2
    assert sum(book.anomalies.values()) == 2
    assert not book.valid
    assert not rows["book_valid"].any()
    assert (rows["bid_px"] == UNDEF_PRICE).all() and (rows["ask_px"] == UNDEF_PRICE).all()
    assert replay_top(records, 0).tobytes() == rows.tobytes()
    seconds = L3Book(0)
    assert len(seconds.apply_seconds(records)) == 0
    assert len(seconds.close_seconds()) == 0
