"""The ``prior_sessions`` step (key: contract): pairs every session with the summary of the session
before it as soon as that is known, whatever order sessions run in (``PriorSessionJoin``): it waits
for a prior session that this run replays, takes one an earlier run wrote to the lake, or says there
is none. ``session_series`` feeds it the sessions as they open and close; ``session_episodes``
reads its releases.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.items import PriorSession, SessionOpened, SessionSeries, book_key
from operators.levels import PriorSessionJoin, SessionSummary
from operators.sessions import day_to_date

log = logging.getLogger("spymaster.analytics")


@dataclass(frozen=True, slots=True)
class _JoinState:
    opened: tuple[date, ...]
    summaries: tuple[SessionSummary, ...]
    instrument_id: int
    released: tuple[date, ...] = ()
    """Sessions already released downstream (a resume owes the others it can now release)."""


class PriorSessionLogic(StatefulLogic[SessionOpened | SessionSeries, PriorSession, _JoinState]):
    """Per contract: releases each session, as soon as it opens, with its prior session's summary.

    ``grow=True`` is for a topic source, whose sessions are not known up front: a session that
    opens becomes expected then, so the prior of D is the latest session of the contract opened
    earlier in this run (awaited until it closes; a partition closes D-1 before D's first
    record), else the latest one stored in the lake.
    """

    def __init__(self, expected: frozenset[date], stored: Mapping[int, Mapping[date, SessionSummary]],
                 resume: _JoinState | None, grow: bool = False) -> None:
        self._expected, self._stored, self._grow = expected, stored, grow
        self._join: PriorSessionJoin | None = None
        self._opened: list[date] = []
        self._pushed: list[SessionSummary] = []
        self._instrument = -1
        self._released: set[date] = set()
        self._owed: list[tuple[date, PriorSession]] = []
        if resume is not None:
            self._resume(resume)

    def _resume(self, resume: _JoinState) -> None:
        """Rebuild the join from the state, and owe the releases it now makes that were not made
        before the snapshot.

        A session this run's plan no longer expects had its file finished whole before the crash
        (the plan skips it now): its summary is stored in the lake and none of it comes again.
        So a session that opened before the snapshot and waited for that summary is released
        here, from the lake, and nothing that comes later would release it: the owed releases
        leave at once (``notify_at``; Bytewax asks a resumed logic when to wake it, items or not).
        """
        if self._grow:
            self._expected = self._expected | frozenset(resume.opened)
        self._start(resume.instrument_id)
        self._released = set(resume.released)
        for d in resume.opened:
            if d in self._expected:
                self._open(d)
        for summary in resume.summaries:
            if summary.session_date in self._expected:
                self._push(summary)
        if self._owed:
            log.info("instrument %d resumed owing the prior of %s (their prior's file was finished before the crash)",
                     self._instrument, ", ".join(str(d) for d, _ in self._owed))

    def _start(self, instrument_id: int) -> None:
        self._instrument = instrument_id
        self._join = PriorSessionJoin(self._expected, self._stored.get(instrument_id, {}))

    def _open(self, d: date) -> None:
        assert self._join is not None
        self._opened.append(d)
        self._owe(self._join.open(d))

    def _push(self, summary: SessionSummary) -> None:
        assert self._join is not None
        self._pushed.append(summary)
        self._owe(self._join.push(summary))

    def _owe(self, releases: tuple) -> None:
        from operators.sessions import date_to_day

        self._owed += [(d, PriorSession(book_key(self._instrument, date_to_day(d)), prior))
                       for d, prior in releases if d not in self._released]

    def _send(self) -> list[PriorSession]:
        """The releases made and not sent yet, each session once in the logic's whole life (a
        rebuilt join, after a resume or a new date, makes again releases already sent)."""
        out = []
        for d, release in self._owed:
            if d not in self._released:
                self._released.add(d)
                out.append(release)
        self._owed = []
        return out

    @override
    def on_item(self, value: SessionOpened | SessionSeries) -> tuple[list[PriorSession], bool]:
        if self._join is None:
            self._start(value.info.instrument_id)
        if isinstance(value, SessionOpened):
            d = day_to_date(value.session_day)
            if self._grow and d not in self._expected:
                self._expect(d)
            self._open(d)
        else:
            if self._grow and value.summary.session_date not in self._expected:
                self._expect(value.summary.session_date)
            self._push(value.summary)
        return self._send(), StatefulLogic.RETAIN

    def _expect(self, d: date) -> None:
        """Declare ``d`` and rebuild the join from its history; releases it already sent are not
        sent again (a later date cannot change an earlier date's prior)."""
        self._expected = self._expected | {d}
        opened, pushed = self._opened, self._pushed
        self._opened, self._pushed = [], []
        self._start(self._instrument)
        for o in opened:
            self._open(o)
        for summary in pushed:
            self._push(summary)

    @override
    def on_eof(self) -> tuple[list[PriorSession], bool]:
        if self._join is None:
            return [], StatefulLogic.DISCARD
        self._owe(self._join.finish())
        return self._send(), StatefulLogic.RETAIN

    @override
    def notify_at(self) -> datetime | None:
        return datetime.min.replace(tzinfo=UTC) if self._owed else None

    @override
    def on_notify(self) -> tuple[list[PriorSession], bool]:
        return self._send(), StatefulLogic.RETAIN

    @override
    def snapshot(self) -> _JoinState:
        """Only releases sent count as made (a snapshot may come before the owed ones leave)."""
        return _JoinState(tuple(self._opened), tuple(self._pushed), self._instrument, tuple(sorted(self._released)))
