"""``PriorSessionJoin``: pair each session with its prior session's summary, whatever the arrival order.

Sessions of one contract may be summarized in any order (different files, different workers).
The caller declares up front the session dates it expects to summarize in this run, plus the
summaries an earlier run already wrote (``external``). The prior session of D is the latest date
before D in ``expected`` ∪ ``external``; when that date is expected, this run's summary of it is
awaited (a recomputed day wins over the stored one); otherwise the stored summary is used; when
there is no earlier date at all, the prior is None.

A pair ``(D, prior)`` is released once, as soon as D has been opened (``open``, when its first
data arrives) or summarized (``push``) and its prior is resolved, so the consumer can build D's
levels right away — live, at the start of the session. The released pairs (as a set) are the
same for every arrival order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from datetime import date

from operators.levels.summary import SessionSummary

Release = tuple[date, SessionSummary | None]


class PriorSessionJoin:
    """Pure state machine of one contract: ``push`` summaries in any order, collect releases."""

    __slots__ = ("_dates", "_expected", "_external", "_known", "_opened", "_released")

    def __init__(self, expected: Iterable[date], external: Mapping[date, SessionSummary]) -> None:
        self._expected = frozenset(expected)
        for d, s in external.items():
            if s.session_date != d:
                msg = f"external summary keyed {d} is for session {s.session_date}; key it by its session date"
                raise ValueError(msg)
        self._external = dict(external)
        self._dates = sorted(self._expected | self._external.keys())
        self._known: dict[date, SessionSummary] = {}
        self._opened: set[date] = set()
        self._released: set[date] = set()

    def prior_date(self, session_date: date) -> date | None:
        """The latest declared (expected or external) session date before ``session_date``."""
        i = bisect_left(self._dates, session_date)
        return self._dates[i - 1] if i > 0 else None

    def push(self, summary: SessionSummary) -> tuple[Release, ...]:
        """Accept one of this run's summaries; return the pairs it makes known, by date.

        Pushing an identical summary again is a no-op (at-least-once replays); a different
        summary for an already pushed date, or an undeclared date, raises ValueError.
        """
        d = summary.session_date
        if d not in self._expected:
            msg = f"session {d} was not declared in expected; declare every session date up front"
            raise ValueError(msg)
        seen = self._known.get(d)
        if seen is not None:
            if seen != summary:
                msg = f"session {d} was pushed twice with different summaries; summaries must be deterministic"
                raise ValueError(msg)
            return ()
        self._check_contract(summary)
        self._known[d] = summary
        out = [r for r in (self._try(d), self._try(self._next_date(d))) if r is not None]
        return tuple(sorted(out, key=lambda r: r[0]))

    def open(self, session_date: date) -> tuple[Release, ...]:
        """Session ``session_date`` has started: release it now if its prior is already resolved."""
        if session_date not in self._expected:
            msg = f"session {session_date} was not declared in expected; declare every session date up front"
            raise ValueError(msg)
        self._opened.add(session_date)
        found = self._try(session_date)
        return (found,) if found is not None else ()

    def finish(self) -> tuple[Release, ...]:
        """End of input: release every pushed session still waiting for an expected prior.

        The prior then falls back to the stored (external) summary of that date if there is
        one, else None. Expected sessions never pushed are not released.
        """
        out: list[Release] = []
        for d in sorted((self._known.keys() | self._opened) - self._released):
            p = self.prior_date(d)
            assert p is not None  # only sessions waiting on a prior can still be pending
            self._released.add(d)
            out.append((d, self._external.get(p)))
        return tuple(out)

    @property
    def pending(self) -> tuple[date, ...]:
        """Pushed sessions not yet released (waiting for their prior), by date."""
        return tuple(sorted((self._known.keys() | self._opened) - self._released))

    @property
    def released(self) -> frozenset[date]:
        return frozenset(self._released)

    def _next_date(self, d: date) -> date | None:
        i = bisect_left(self._dates, d) + 1
        return self._dates[i] if i < len(self._dates) else None

    def _try(self, d: date | None) -> Release | None:
        if d is None or d in self._released or (d not in self._known and d not in self._opened):
            return None
        p = self.prior_date(d)
        if p is None:
            prior = None
        elif p in self._expected:
            if p not in self._known:
                return None
            prior = self._known[p]
        else:
            prior = self._external[p]
        self._released.add(d)
        return (d, prior)

    def _check_contract(self, summary: SessionSummary) -> None:
        for other in (*self._known.values(), *self._external.values()):
            if other.contract_id != summary.contract_id:
                msg = (
                    f"summary for contract {summary.contract_id!r} pushed into the join of "
                    f"{other.contract_id!r}; use one join per contract"
                )
                raise ValueError(msg)
            return
