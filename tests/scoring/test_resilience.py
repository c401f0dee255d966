"""Retries, backoff and the circuit breaker, driven by an injected clock and sleep (no waiting)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.scoring.resilience import CLOSED, HALF_OPEN, OPEN, Attempt, CircuitBreaker, Retrier


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _fail(status: str = "timeout", retry: bool = True) -> Attempt[None]:
    return Attempt(None, status, "x", retry=retry, healthy=False)


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_reset() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 5.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state == CLOSED
    breaker.record(True)                      # a success resets the count
    for _ in range(3):
        breaker.record(False)
    assert breaker.state == OPEN
    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow() and breaker.state == HALF_OPEN
    assert not breaker.allow()                # one probe at a time
    breaker.record(False)                     # the probe failed: open again, for a full reset period
    assert breaker.state == OPEN
    clock.now += 4.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()
    breaker.record(True)
    assert breaker.state == CLOSED and breaker.allow()


def test_retries_back_off_exponentially_with_seeded_jitter() -> None:
    slept: list[float] = []
    retrier = Retrier(retries=3, backoff_s=0.1, breaker=CircuitBreaker(10, 1.0), seed=42, sleep=slept.append)
    outcome = retrier.call(_fail)
    assert outcome is not None and outcome.attempts == 4 and outcome.attempt.status == "timeout"
    assert len(slept) == 3
    for n, delay in enumerate(slept, start=1):
        assert 0.1 * 2 ** (n - 1) <= delay <= 0.15 * 2 ** (n - 1)
    again: list[float] = []
    Retrier(retries=3, backoff_s=0.1, breaker=CircuitBreaker(10, 1.0), seed=42, sleep=again.append).call(_fail)
    assert again == slept                     # same seed, same delays


def test_success_and_permanent_failures_stop_retrying() -> None:
    slept: list[float] = []
    calls: Iterator[Attempt[Any]] = iter([_fail(), Attempt([1], "ok", "", retry=False, healthy=True)])
    retrier = Retrier(retries=5, backoff_s=0.01, breaker=CircuitBreaker(10, 1.0), sleep=slept.append)
    outcome = retrier.call(lambda: next(calls))
    assert outcome is not None and (outcome.attempt.status, outcome.attempts, len(slept)) == ("ok", 2, 1)
    outcome = retrier.call(lambda: _fail("http_error", retry=False))
    assert outcome is not None and outcome.attempts == 1


def test_open_breaker_refuses_and_half_open_probe_gets_one_attempt() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 3.0, clock=clock)
    retrier = Retrier(retries=2, backoff_s=0.0, breaker=breaker, sleep=lambda s: None)
    tries: list[int] = []

    def failing() -> Attempt[None]:
        tries.append(1)
        return _fail()

    retrier.call(failing)
    retrier.call(failing)
    assert breaker.state == OPEN and len(tries) == 6
    assert retrier.call(failing) is None and len(tries) == 6     # refused, not attempted
    clock.now += 3.0
    outcome = retrier.call(failing)
    assert outcome is not None and outcome.attempts == 1 and breaker.state == OPEN
