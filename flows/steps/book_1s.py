"""The Bytewax adapter around the per-(contract, session) L3 book."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.items import BookRows, BookSlice, book_key
from operators.book import BookState, L3Book
from operators.chunks import InstrumentInfo, SourceEnd, SourceTick
from operators.instruments import book_tick


@dataclass(frozen=True, slots=True)
class BookLogicState:
    """Recovery snapshot: the book's compact arrays and who it belongs to."""

    book: BookState
    info: InstrumentInfo
    session_day: int
    source_id: str


class BookSecondsLogic(StatefulLogic[BookSlice | SourceEnd | SourceTick, BookRows, BookLogicState]):
    """Feeds one (contract, session) book and emits its closed 1-second rows.

    The book is closed by the ``SourceEnd`` of the partition that fed it (not by Bytewax's EOF),
    so a session's last second is emitted the same way whatever else the worker is reading. The
    last rows carry the session's anomaly counts and tell the sink the book is fully written.
    State is then discarded: a session is fed by one source.

    A ``SourceTick`` (a tailed topic only) closes the seconds its partition's event time has
    passed, so a quiet contract's rows appear on the wall clock instead of at its next event.
    """

    def __init__(self, depth: int, resume: BookLogicState | None) -> None:
        self._depth = depth
        self._key = ""
        self._book: L3Book | None = None
        self._info: InstrumentInfo | None = None
        self._day = 0
        self._source = ""
        if resume is not None:
            self._book = L3Book(resume.book.tick, depth=depth, resume=resume.book)
            self._info, self._day, self._source = resume.info, resume.session_day, resume.source_id
            self._key = book_key(resume.info.instrument_id, resume.session_day)

    @override
    def on_item(self, value: BookSlice | SourceEnd | SourceTick) -> tuple[list[BookRows], bool]:
        if isinstance(value, SourceEnd):
            return self._close(value)
        if isinstance(value, SourceTick):
            return self._advance(value)
        if self._book is None:
            self._book = L3Book(value.info.tick, depth=self._depth)
            self._info, self._day, self._source = value.info, value.session_day, value.source_id
            self._key = book_key(value.info.instrument_id, value.session_day)
        rows = self._book.apply_seconds(value.records)
        out = [self._rows(rows)] if len(rows) else []
        return out, StatefulLogic.RETAIN

    def _advance(self, tick: SourceTick) -> tuple[list[BookRows], bool]:
        if self._book is None:  # a tick for a book none of whose records was valid: no state
            return [], StatefulLogic.DISCARD
        rows = self._book.advance_seconds(tick.event_ns)
        return ([self._rows(rows)] if len(rows) else []), StatefulLogic.RETAIN

    def _close(self, _end: SourceEnd) -> tuple[list[BookRows], bool]:
        if self._book is None or self._info is None:  # an end for a book that never saw a record
            return [], StatefulLogic.DISCARD
        rows = self._book.close_seconds()
        self._resolve_tick(rows)
        last = BookRows(self._key, self._source, rows, self._info, self._day, dict(self._book.anomalies))
        return [last], StatefulLogic.DISCARD

    def _rows(self, rows: np.ndarray) -> BookRows:
        self._resolve_tick(rows)
        assert self._info is not None
        return BookRows(self._key, self._source, rows, self._info, self._day)

    def _resolve_tick(self, rows: np.ndarray) -> None:
        """Every step after the book counts ticks on the instrument's own price grid: its
        definition's, else the one its first sampled second shows (``book_tick``), fixed once."""
        assert self._info is not None
        if self._info.tick == 0 and len(rows):
            self._info = replace(self._info, tick=book_tick(self._info, rows[:1]))

    @override
    def snapshot(self) -> BookLogicState:
        assert self._book is not None and self._info is not None
        return BookLogicState(self._book.snapshot(), self._info, self._day, self._source)
