"""The clock a Delta sink partition's committer keeps time by (``commit_every_s``).

The committer thread reads the time when rows arrive and sleeps until they are due. Both go
through a :class:`CommitClock`, so a test can hand the sink a clock it moves itself and check
what happens at a given moment instead of sleeping through real seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class CommitClock(Protocol):
    """Monotonic seconds, and a wait on a condition that the clock's time can end."""

    def now(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """``cond.wait(timeout)`` (``cond`` is held), ``timeout`` measured on this clock.

        Returns when ``cond`` is notified or ``timeout`` has passed, or spuriously: the caller
        re-checks its condition.
        """
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``Condition.wait``."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        cond.wait(timeout)


MONOTONIC = MonotonicClock()
