"""A live partition's sessions: a new session closes the last one, a lone damaged timestamp does
not, and a record for a closed session goes to Bronze only."""

from __future__ import annotations

from datetime import date

import numpy as np

from operators.feed_sessions import Close, FeedSessions, FeedSessionsState, Jump, Stretch
from operators.sessions import date_to_day, new_york_instant_ns
from tests.connectors.dbn_files import mbo_records

IID = 42
KNOWN = np.array([IID], np.uint32)
MON, TUE, FRI = date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 7)


def at(*stamps: tuple[date, int]) -> np.ndarray:
    """One record per (trade date, hour in New York) — hours after 18:00 belong to the next date."""
    rec = mbo_records(len(stamps), instrument_id=IID)
    rec["ts_recv"] = [new_york_instant_ns(d, h) for d, h in stamps]
    return rec


def key(d: date) -> str:
    return f"{IID}:{date_to_day(d)}"


def test_the_usual_message_is_one_stretch_of_the_current_session() -> None:
    feed = FeedSessions(FeedSessionsState())
    assert feed.read(at((MON, 10), (MON, 11)), KNOWN) == [Stretch(0, 2, -1)]
    assert feed.read(at((MON, 12)), KNOWN) == [Stretch(0, 1, -1)]
    assert (feed.day, feed.open, feed.late) == (date_to_day(MON), {key(MON)}, 0)


def test_two_records_of_a_later_session_close_the_current_one() -> None:
    feed = FeedSessions(FeedSessionsState())
    feed.read(at((MON, 10)), KNOWN)
    steps = feed.read(at((MON, 16), (MON, 19), (MON, 20)), KNOWN)  # 19:00 on Monday is Tuesday's session
    assert steps == [Stretch(0, 1, -1), Close((key(MON),)), Stretch(1, 3, date_to_day(TUE))]
    assert (feed.day, feed.open) == (date_to_day(TUE), {key(TUE)})


def test_a_lone_jump_is_a_damaged_timestamp_not_a_new_session() -> None:
    feed = FeedSessions(FeedSessionsState())
    feed.read(at((MON, 10)), KNOWN)
    steps = feed.read(at((MON, 11), (FRI, 11), (MON, 12)), KNOWN)
    assert steps == [Stretch(0, 1, -1), Jump(1, "ts_recv jumps to session 2025-11-07 between records of session "
                                                  "2025-11-03: a damaged timestamp"), Stretch(2, 3, -1)]
    assert (feed.day, feed.open) == (date_to_day(MON), {key(MON)})
    assert feed.event_ns == new_york_instant_ns(MON, 12)  # the jump moves no clock


def test_a_record_for_a_closed_session_feeds_no_book() -> None:
    feed = FeedSessions(FeedSessionsState())
    feed.read(at((MON, 10)), KNOWN)
    feed.read(at((TUE, 10), (TUE, 11)), KNOWN)
    steps = feed.read(at((MON, 15)), KNOWN)
    assert steps == [Stretch(0, 1, date_to_day(TUE))]
    assert (feed.open, feed.late) == ({key(TUE)}, 1)


def test_a_session_closed_by_the_clock_stays_closed() -> None:
    feed = FeedSessions(FeedSessionsState())
    feed.read(at((MON, 10)), KNOWN)
    assert feed.close_before(date_to_day(TUE)) == (key(MON),)
    assert feed.read(at((MON, 16)), KNOWN) == [Stretch(0, 1, date_to_day(TUE))]
    assert (feed.open, feed.late) == (set(), 1)


def test_records_validation_refuses_say_nothing_of_sessions() -> None:
    feed = FeedSessions(FeedSessionsState())
    feed.read(at((MON, 10)), KNOWN)
    stranger = at((FRI, 10), (FRI, 11))
    stranger["instrument_id"] = 7  # no definition: a dead letter downstream
    assert feed.read(stranger, KNOWN) == [Stretch(0, 2, -1)]
    assert (feed.day, feed.open) == (date_to_day(MON), {key(MON)})


def test_state_round_trips() -> None:
    feed = FeedSessions(FeedSessionsState())
    feed.read(at((MON, 10)), KNOWN)
    feed.read(at((TUE, 10), (TUE, 11)), KNOWN)
    feed.read(at((MON, 15)), KNOWN)
    again = FeedSessions(feed.state())
    assert again.state() == feed.state() == FeedSessionsState(
        date_to_day(TUE), date_to_day(TUE), (key(TUE),), (date_to_day(MON), date_to_day(TUE)),
        new_york_instant_ns(TUE, 11), 1)
