"""Event-time micro-batches: group items into windows N wide in event time, plus a wall-clock deadline.

Why windows aligned to multiples of N (as Bytewax's ``TumblingWindower`` aligns to an origin)
rather than "N after the first item": an item's batch is then a function of its own event time,
so ``close_ts`` (the end of its window, the event-time instant its score is due) is the same on
every replay, whatever split a wall-clock deadline or an out-of-order item caused elsewhere.

A batch closes when an item arrives whose event time lies outside the open batch's window (at or
after its end — or before its start, for an item out of order), when the caller says no item
before the window's end can still come (``advance``: a watermark, which closes it as soon as it
is complete instead of on a deadline), when the wall clock passes the batch's deadline (N after
it opened: a live flow never waits longer than the user allows), or when the caller ends the
input. ``N = 0`` closes every item's batch at once.

Pure: the caller passes wall-clock readings in (seconds, any monotonic origin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def window_end(event_ns: int, window_ns: int) -> int:
    """The end of the N-wide window holding ``event_ns``; ``event_ns`` itself when N is 0."""
    if window_ns <= 0:
        return event_ns
    return (event_ns // window_ns + 1) * window_ns


@dataclass(frozen=True, slots=True)
class MicroBatch(Generic[T]):
    """Items scored together; ``close_ts`` is the end of their event-time window."""

    close_ts: int
    items: tuple[T, ...]


class EventTimeBatcher(Generic[T]):
    """At most one open batch; ``add`` and ``expire`` return the batches they closed, in order."""

    def __init__(self, window_ns: int, *, pending: tuple[T, ...] = (), close_ts: int | None = None,
                 opened_at: float = 0.0) -> None:
        if window_ns < 0:
            msg = f"micro-batch window must be zero or positive, got {window_ns} ns"
            raise ValueError(msg)
        self._window_ns = window_ns
        self._items: list[T] = list(pending)
        self._close_ts = close_ts if pending else None
        self._opened_at = opened_at

    @property
    def pending(self) -> tuple[T, ...]:
        return tuple(self._items)

    @property
    def close_ts(self) -> int | None:
        """End of the open batch's window (None when no batch is open)."""
        return self._close_ts

    def deadline(self, window_s: float) -> float | None:
        """Wall-clock time by which the open batch must close (None when none is open)."""
        return None if self._close_ts is None else self._opened_at + window_s

    def add(self, event_ns: int, item: T, now: float) -> list[MicroBatch[T]]:
        due = window_end(event_ns, self._window_ns)
        closed = self.close() if self._close_ts is not None and due != self._close_ts else []
        if self._window_ns == 0:
            return [*closed, MicroBatch(due, (item,))]
        if self._close_ts is None:
            self._close_ts, self._opened_at = due, now
        self._items.append(item)
        return closed

    def advance(self, complete_before_ns: int) -> list[MicroBatch[T]]:
        """Every item with an event time before ``complete_before_ns`` has been added: close the
        open batch if its window ends at or before that (it cannot grow any more)."""
        if self._close_ts is not None and self._close_ts <= complete_before_ns:
            return self.close()
        return []

    def expire(self, now: float, window_s: float) -> list[MicroBatch[T]]:
        """Close the open batch if its wall-clock deadline has passed."""
        deadline = self.deadline(window_s)
        return self.close() if deadline is not None and now >= deadline else []

    def close(self) -> list[MicroBatch[T]]:
        if self._close_ts is None:
            return []
        batch = MicroBatch(self._close_ts, tuple(self._items))
        self._items, self._close_ts = [], None
        return [batch]
