"""Wall-clock ticks of a tailed topic partition, so that quiet contracts advance (SPEC §4).

A book closes a second only when an event of its own starts a later one, so on a live feed a
contract with no events would get no 1-second rows, and its session would stay open, until it
trades again. A tailed partition therefore tells its open books, at most once per ``tick_s`` of
wall time, how far its **event time** has gone (``operators.chunks.SourceTick``):

- While messages arrive, the tick's event time is the partition's latest MBO ``ts_recv`` minus
  ``lateness_s``. Records of one instrument are in ``ts_recv`` order, but a producer that batches
  per instrument (``spymaster publish``: windows of 100 ms by default) may send another
  instrument's earlier records after them; ``lateness_s`` (at least that window) keeps every
  record still to come at or after the tick. The rows a tick closes are then exactly those the
  book's next event would close, only sooner (up to the contract's last event of a session;
  after it, see below).
- Once no message has come for ``idle_timeout_s`` of wall time, event time moves on at real time:
  latest ``ts_recv`` - ``lateness_s`` + (wall time idle - ``idle_timeout_s``). That is SPEC §4's
  idle timeout. On a simulated feed faster than real time it is conservative (the feed's clock
  runs ahead of it). If a record does come later for a second a tick already closed, the book
  applies it to its open second: nothing is written twice or backwards, but that record is
  counted in a later second than its own, the price of showing a quiet market live. After a
  restart the idle clock starts when the partition is rebuilt, from the event time in its
  recovery state.

Only tailing partitions tick. A replay (files, Bronze, or a bounded topic run) never does: its
output stays a pure function of the records. Ticks carry the quiet book forward to where its
partition's clock is, so a tailed session's rows may run on past the contract's last event up to
the session's close, where a replay of the same records stops at that event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from operators.errors import ConfigError

NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TickConfig:
    """``[source] tick_s``, ``idle_timeout_s``, ``lateness_s`` (SPYMASTER_TICK_S, …)."""

    tick_s: float = 1.0
    """Wall-clock seconds between two ticks of a tailed partition; 0 turns ticks off."""
    idle_timeout_s: float = 3.0
    """Wall-clock seconds without a message after which a partition's event time follows the wall
    clock: long enough that a producer's flush or a broker's fetch wait is not mistaken for a
    quiet market, short enough that a quiet contract is at most a few seconds behind."""
    lateness_s: float = 1.0
    """How far records of different instruments on one partition may be out of ``ts_recv`` order:
    at least the producer's flush window (``spymaster publish --window-ms``)."""

    def __post_init__(self) -> None:
        if not self.tick_s >= 0:
            raise ConfigError(f"[source].tick_s (SPYMASTER_TICK_S) must be zero (no ticks) or a positive "
                              f"number of seconds, got {self.tick_s}")
        if not self.idle_timeout_s > 0:
            raise ConfigError(f"[source].idle_timeout_s (SPYMASTER_IDLE_TIMEOUT_S) must be a positive number "
                              f"of seconds, got {self.idle_timeout_s}")
        if not self.lateness_s >= 0:
            raise ConfigError(f"[source].lateness_s (SPYMASTER_LATENESS_S) must be zero or a positive number "
                              f"of seconds, got {self.lateness_s}")


class PartitionClock:
    """When one partition ticks, and to which event time. ``clock`` is the wall clock in seconds
    (``time.monotonic``; tests inject their own); ``tick_ns`` is the last tick's event time, kept
    in the partition's recovery state so a resumed partition never ticks backwards."""

    def __init__(self, cfg: TickConfig, clock: Callable[[], float], tick_ns: int = -1) -> None:
        self._cfg, self._clock = cfg, clock
        now = clock()
        self._heard = now
        self._due = now + cfg.tick_s
        self.tick_ns = tick_ns

    def heard(self) -> None:
        """A message arrived: the partition is not idle."""
        self._heard = self._clock()

    def tick(self, event_ns: int) -> int | None:
        """The event time of a tick due now (``event_ns``: the latest MBO ``ts_recv``), or None.

        At most one per ``tick_s``, and only when a whole second more has passed than at the last
        tick: nothing closes in between.
        """
        now = self._clock()
        if now < self._due:
            return None
        self._due = now + self._cfg.tick_s
        at = self.watermark(event_ns, now)
        if at < 0 or at // NS <= self.tick_ns // NS:
            return None
        self.tick_ns = at
        return at

    def silent(self) -> bool:
        """Whether a partition with no event time yet (no record read) says so now: a tick is due and
        no message has come for ``idle_timeout_s`` (the option relay then stops waiting for it)."""
        now = self._clock()
        if now < self._due or not self.idle():
            return False
        self._due = now + self._cfg.tick_s
        return True

    def idle(self) -> bool:
        """No message has come for ``idle_timeout_s``."""
        return self._clock() - self._heard >= self._cfg.idle_timeout_s

    def watermark(self, event_ns: int, now: float) -> int:
        """No record still to come starts before this event time (see the module docstring)."""
        if event_ns < 0:
            return -1
        idle = max(0.0, now - self._heard - self._cfg.idle_timeout_s)
        return event_ns - round(self._cfg.lateness_s * NS) + round(idle * NS)
