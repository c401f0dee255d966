"""The prior-session join for a topic source: sessions become expected as they open."""

from __future__ import annotations

from datetime import date

from flows.items import PriorSession, SessionOpened, SessionSeries
from flows.steps.prior_sessions import PriorSessionLogic
from operators.chunks import InstrumentInfo
from operators.levels import SessionSummary
from operators.sessions import date_to_day

INFO = InstrumentInfo(7, "ESZ5", "ES", "FUT", tick=250_000_000)
D1, D2, D3 = date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 5)


def _opened(d: date) -> SessionOpened:
    return SessionOpened(f"7:{date_to_day(d)}", INFO, date_to_day(d))


def _closed(d: date, high: int) -> SessionSeries:
    summary = SessionSummary("ESZ5", d, rth_high=high, rth_low=high - 10, complete=True)
    return SessionSeries(f"7:{date_to_day(d)}", "kafka:mbo_raw/0", INFO, date_to_day(d), summary)


def _pairs(out: list[PriorSession]) -> list[tuple[str, int | None]]:
    return [(p.key, None if p.prior is None else p.prior.rth_high) for p in out]


def test_each_session_waits_for_the_one_opened_before_it() -> None:
    join = PriorSessionLogic(frozenset(), {}, None, grow=True)
    assert _pairs(join.on_item(_opened(D1))[0]) == [(f"7:{date_to_day(D1)}", None)]  # nothing before it
    assert join.on_item(_opened(D2))[0] == []  # D1 is still open: wait for its summary
    assert _pairs(join.on_item(_closed(D1, 100))[0]) == [(f"7:{date_to_day(D2)}", 100)]
    assert _pairs(join.on_item(_closed(D2, 200))[0]) == []
    assert _pairs(join.on_item(_opened(D3))[0]) == [(f"7:{date_to_day(D3)}", 200)]


def test_a_stored_summary_is_the_prior_of_the_first_session_seen() -> None:
    stored = {7: {D1: SessionSummary("ESZ5", D1, rth_high=50, rth_low=40, complete=True)}}
    join = PriorSessionLogic(frozenset(), stored, None, grow=True)
    assert _pairs(join.on_item(_opened(D2))[0]) == [(f"7:{date_to_day(D2)}", 50)]


def test_resumed_join_still_waits_for_an_open_session() -> None:
    join = PriorSessionLogic(frozenset(), {}, None, grow=True)
    join.on_item(_opened(D1))
    state = join.snapshot()
    resumed = PriorSessionLogic(frozenset(), {}, state, grow=True)
    assert resumed.on_item(_opened(D2))[0] == []
    assert _pairs(resumed.on_item(_closed(D1, 100))[0]) == [(f"7:{date_to_day(D2)}", 100)]


def test_a_resume_skips_sessions_whose_files_were_finished_before_the_crash() -> None:
    """A file replay: D1 opened and closed before the crash, and its file was ingested whole, so the
    resumed run's plan expects only D2 and finds D1's summary stored in the lake."""
    join = PriorSessionLogic(frozenset({D1, D2}), {}, None)
    join.on_item(_opened(D1))
    join.on_item(_closed(D1, 100))
    state = join.snapshot()
    stored = {7: {D1: SessionSummary("ESZ5", D1, rth_high=100, rth_low=90, complete=True)}}
    resumed = PriorSessionLogic(frozenset({D2}), stored, state)
    assert resumed.snapshot().opened == () and resumed.snapshot().summaries == ()
    assert _pairs(resumed.on_item(_opened(D2))[0]) == [(f"7:{date_to_day(D2)}", 100)]


def test_a_session_waiting_for_a_file_finished_after_the_snapshot_is_released_on_resume() -> None:
    """The snapshot saw D2 open and waiting for D1's summary; D1 then closed, D2 was released, and
    D1's file was finished before the crash. The resumed plan skips D1's file, so nothing will
    push D1 again: the resumed join owes D2's release from the stored summary and sends it when
    Bytewax wakes it (``notify_at``), before any item, and never twice."""
    join = PriorSessionLogic(frozenset({D1, D2}), {}, None)
    assert _pairs(join.on_item(_opened(D1))[0]) == [(f"7:{date_to_day(D1)}", None)]
    assert join.on_item(_opened(D2))[0] == []
    state = join.snapshot()
    assert _pairs(join.on_item(_closed(D1, 100))[0]) == [(f"7:{date_to_day(D2)}", 100)]  # lost in the crash

    stored = {7: {D1: SessionSummary("ESZ5", D1, rth_high=100, rth_low=90, complete=True)}}
    resumed = PriorSessionLogic(frozenset({D2}), stored, state)
    assert resumed.notify_at() is not None
    assert _pairs(resumed.on_notify()[0]) == [(f"7:{date_to_day(D2)}", 100)]
    assert resumed.notify_at() is None and resumed.on_notify()[0] == []
    assert _pairs(resumed.on_item(_closed(D2, 200))[0]) == []
    again = PriorSessionLogic(frozenset({D2}), stored, resumed.snapshot())
    assert again.notify_at() is None and again.on_eof()[0] == []


def test_a_resume_that_owes_a_release_sends_it_before_the_next_item_and_a_snapshot_does_not_count_it() -> None:
    join = PriorSessionLogic(frozenset({D1, D2}), {}, None)
    join.on_item(_opened(D1))
    join.on_item(_opened(D2))
    state = join.snapshot()
    stored = {7: {D1: SessionSummary("ESZ5", D1, rth_high=100, rth_low=90, complete=True)}}
    resumed = PriorSessionLogic(frozenset({D2}), stored, state)
    unsent = resumed.snapshot()
    assert unsent.released == (D1,)
    assert _pairs(PriorSessionLogic(frozenset({D2}), stored, unsent).on_notify()[0]) == [(f"7:{date_to_day(D2)}", 100)]
    assert _pairs(resumed.on_item(_closed(D2, 200))[0]) == [(f"7:{date_to_day(D2)}", 100)]
