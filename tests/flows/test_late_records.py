"""Records that reach a book after its session closed become one ``late_record`` anomaly row per
book (``flows.writes.SilverWrites.late_records``)."""

from __future__ import annotations

import numpy as np

from flows.items import CheckedChunk
from flows.plan import ReplayPlan
from flows.route import check
from flows.writes import SilverWrites
from operators.chunks import InstrumentInfo, RecordChunk
from operators.sessions import trade_date_days
from tests.connectors.dbn_files import mbo_records
from tests.typed import one

ESZ5 = InstrumentInfo(42, raw_symbol="ESZ5", underlier="ES", instrument_type="FUT", tick=250_000_000, multiplier=50.0)
ESH6 = InstrumentInfo(43, raw_symbol="ESH6", underlier="ES", instrument_type="FUT", tick=250_000_000, multiplier=50.0)


def _late_chunk(instrument_ids: list[int]) -> CheckedChunk:
    """Adds, one per id in ``instrument_ids``, all from a session the partition has closed."""
    records = mbo_records(len(instrument_ids))
    records["instrument_id"] = instrument_ids
    records["action"], records["side"] = b"A", b"B"
    day = int(trade_date_days(records["ts_recv"][:1])[0])
    chunk = RecordChunk("kafka:mbo/0", 100, "mbo", "GLBX.MDP3", records, {42: ESZ5, 43: ESH6},
                        closed_before=day + 1)
    return one(CheckedChunk, check(chunk))


def _anomalies(checked: CheckedChunk) -> list[tuple[str, str, str, int, list[int]]]:
    out = SilverWrites(ReplayPlan(files=())).late_records(checked)
    return [(stream, *(w.rows[c][0].as_py() for c in ("contract_id", "anomaly", "count")), w.positions.tolist())
            for stream, w in out]


def test_late_records_of_one_book_are_one_row_counting_them_all() -> None:
    """Every late record is the same book's (the rows of a single group come back as a slice)."""
    assert _anomalies(_late_chunk([42, 42, 42])) == [
        ("42:19675@kafka:mbo/0#g0|late", "ESZ5", "late_record", 3, [100])]


def test_late_records_of_two_books_are_a_row_each() -> None:
    assert _anomalies(_late_chunk([42, 43, 42])) == [
        ("42:19675@kafka:mbo/0#g0|late", "ESZ5", "late_record", 2, [100]),
        ("43:19675@kafka:mbo/0#g0|late", "ESH6", "late_record", 1, [101])]


def test_records_of_open_sessions_are_not_late() -> None:
    checked = _late_chunk([42])
    on_time = CheckedChunk(checked.chunk, checked.valid, checked.session_days + 1, checked.letters)
    assert _anomalies(on_time) == []
    assert np.array_equal(checked.session_days + 1, on_time.session_days)
