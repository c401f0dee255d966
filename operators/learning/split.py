"""Time-ordered splits by session: train, validation and test, and walk-forward folds inside train.

Never random. Rows of one session stay together (a session's episodes share a market regime and
overlapping lookback windows), every split's sessions are later than the previous split's, and the
test split holds the latest sessions: the model is judged on days after everything it saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class SessionSplit:
    """Disjoint, time-ordered session sets."""

    train: tuple[date, ...]
    validation: tuple[date, ...]
    test: tuple[date, ...]

    def __post_init__(self) -> None:
        check_time_ordered((self.train, self.validation, self.test))


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward step: fit on ``fit`` sessions, score on the next ``score`` sessions."""

    fit: tuple[date, ...]
    score: tuple[date, ...]


def split_sessions(sessions: Sequence[date], *, validation_fraction: float = 0.2, test_fraction: float = 0.3,
                   min_train: int = 3) -> SessionSplit:
    """Oldest sessions → train, then validation, latest → test (at least one session each).

    Fractions are rounded half up; when that leaves train fewer than ``min_train`` sessions, test
    and validation give sessions back (down to one each). With 10 sessions and the defaults:
    5 train, 2 validation, 3 test; with 7: 4, 1, 2; with 5: 3, 1, 1.
    """
    days = tuple(sorted(set(sessions)))
    n = len(days)
    if n < min_train + 2:
        msg = (f"{n} sessions cannot be split into >= {min_train} train, 1 validation and 1 test session; "
               f"snapshot more sessions (at least {min_train + 2})")
        raise ValueError(msg)
    n_test = max(1, math.floor(n * test_fraction + 0.5))
    n_val = max(1, math.floor(n * validation_fraction + 0.5))
    while n - n_test - n_val < min_train:  # short histories: give train its minimum first
        if n_test >= n_val and n_test > 1:
            n_test -= 1
        else:
            n_val -= 1
    n_train = n - n_test - n_val
    return SessionSplit(days[:n_train], days[n_train:n_train + n_val], days[n_train + n_val:])


def walk_forward(train: Sequence[date], *, min_fit: int = 2, max_folds: int = 4) -> tuple[Fold, ...]:
    """Expanding-window folds over the train sessions: fit on the first k, score on session k+1.

    The last ``max_folds`` steps are kept (the ones with the most history). Needs at least
    ``min_fit + 1`` sessions.
    """
    days = tuple(sorted(set(train)))
    if len(days) < min_fit + 1:
        msg = f"walk-forward validation needs at least {min_fit + 1} train sessions, got {len(days)}"
        raise ValueError(msg)
    folds = tuple(Fold(days[:k], (days[k],)) for k in range(min_fit, len(days)))
    return folds[-max_folds:]


def check_time_ordered(parts: Sequence[Sequence[date]]) -> None:
    """Raise ``ValueError`` unless the parts are disjoint and each one ends before the next begins."""
    seen: set[date] = set()
    previous_end: date | None = None
    for i, part in enumerate(parts):
        overlap = seen.intersection(part)
        if overlap:
            msg = f"session {min(overlap)} appears in split {i} and in an earlier split"
            raise ValueError(msg)
        seen.update(part)
        if part:
            if previous_end is not None and min(part) <= previous_end:
                msg = f"split {i} starts at {min(part)}, not after the previous split's last session {previous_end}"
                raise ValueError(msg)
            previous_end = max(part)
