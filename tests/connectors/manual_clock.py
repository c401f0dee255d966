"""A commit clock (``connectors.delta.clock.CommitClock``) that moves only when a test says so.

``advance`` moves the time, wakes every thread waiting on the clock and returns once each of
them has looked at its state again and is back waiting (or has ended). After it returns, what the
committers do at that moment is done: a test asserts on the table without sleeping.
"""

from __future__ import annotations

import threading
import time


class ManualClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._state = threading.Condition()
        self._generation = 0  # bumped by every advance: a waiter parked at an older one owes a look
        self._parked: dict[threading.Thread, tuple[threading.Condition, int]] = {}
        self._looked: dict[threading.Thread, int] = {}  # the generation each waiter last woke at
        self._seen: set[threading.Thread] = set()

    def now(self) -> float:
        with self._state:
            return self._now

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """Wait on ``cond`` until notified: by its owner, or by ``advance`` (``timeout`` is ignored:
        this clock's time passes only in ``advance``, which wakes every waiter to look again).

        A waiter that has not looked at its state since the last ``advance`` (or ever) returns at
        once instead, as a spurious wake-up: it may have decided to wait on the old time."""
        me = threading.current_thread()
        with self._state:
            self._seen.add(me)
            if self._looked.get(me) != self._generation:
                self._looked[me] = self._generation
                return
            self._parked[me] = (cond, self._generation)
            self._state.notify_all()
        try:
            cond.wait()
        finally:
            with self._state:
                self._parked.pop(me, None)
                self._looked[me] = self._generation

    def advance(self, seconds: float, *, timeout_s: float = 60.0) -> None:
        """Move the clock on by ``seconds`` and wait until every waiter has acted on it."""
        with self._state:
            self._now += seconds
            self._generation += 1
            waiting = [cond for cond, _ in self._parked.values()]
        for cond in waiting:
            with cond:
                cond.notify_all()
        self._settle(timeout_s)

    def _settle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._state:
            while not all(self._caught_up(t) for t in self._seen):
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = f"a thread waiting on the clock did not come back within {timeout_s} s"
                    raise TimeoutError(msg)
                self._state.wait(min(left, 0.05))  # parks notify; the bound notices threads that ended

    def _caught_up(self, thread: threading.Thread) -> bool:
        parked = self._parked.get(thread)
        return not thread.is_alive() or (parked is not None and parked[1] == self._generation)
