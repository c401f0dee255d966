"""Retries with exponential backoff and jitter, and a circuit breaker, for calls to a model service.

The breaker counts consecutive failed *calls* (a call = one batch, retries included):

- closed: calls go through; ``failures`` failed calls in a row open it;
- open: calls are refused at once (``circuit_open``) until ``reset_s`` has passed;
- half-open: one probe call, with a single attempt; success closes, failure re-opens.

The clock, the sleep and the jitter's random generator are injected so that tests and replays are
deterministic (the jitter RNG is seeded).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt(Generic[T]):
    """What one try produced: a value, or a failure status; ``retry`` says whether trying again can help."""

    value: T | None
    status: str
    detail: str
    retry: bool
    healthy: bool          # False when the failure says the service is unwell (counts for the breaker)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    attempt: Attempt[T]
    attempts: int


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failed calls; half-open after ``reset_s``."""

    def __init__(self, failures: int, reset_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit, self._reset_s, self._clock = failures, reset_s, clock
        self._state, self._count, self._opened_at = CLOSED, 0, 0.0

    @property
    def state(self) -> str:
        return self._state

    def allow(self) -> bool:
        """May a call go out now? Moves open → half-open once ``reset_s`` has passed."""
        if self._state == OPEN and self._clock() - self._opened_at >= self._reset_s:
            self._state = HALF_OPEN
            return True
        return self._state == CLOSED

    def record(self, healthy: bool) -> None:
        if healthy:
            self._state, self._count = CLOSED, 0
            return
        self._count += 1
        if self._state == HALF_OPEN or self._count >= self._limit:
            self._state, self._opened_at = OPEN, self._clock()


class Retrier:
    """Runs one call with retries, backoff and the breaker. Not thread-safe: one caller at a time."""

    def __init__(self, *, retries: int, backoff_s: float, breaker: CircuitBreaker, seed: int = 0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._retries, self._backoff_s, self.breaker, self._sleep = retries, backoff_s, breaker, sleep
        self._rng = random.Random(seed)

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): backoff·2^(retry−1), times 1..1.5 jitter."""
        return self._backoff_s * (2 ** (retry - 1)) * (1.0 + 0.5 * self._rng.random())

    def call(self, once: Callable[[], Attempt[T]]) -> Outcome[T] | None:
        """``None`` when the breaker refused the call; otherwise the last attempt and how many were made."""
        if not self.breaker.allow():
            return None
        tries = 1 if self.breaker.state == HALF_OPEN else 1 + self._retries
        n, attempt = 1, once()
        while attempt.status != "ok" and attempt.retry and n < tries:
            self._sleep(self.delay(n))
            n, attempt = n + 1, once()
        self.breaker.record(attempt.healthy)
        return Outcome(attempt, n)
