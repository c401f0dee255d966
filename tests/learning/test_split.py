"""Splits are by session, in time order, never shared; walk-forward folds only look back."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from operators.learning.split import Fold, SessionSplit, check_time_ordered, split_sessions, walk_forward
from tests.learning.models import tiny_training_set

DAYS = tuple(date(2025, 11, 3) + timedelta(days=i) for i in range(10))


def test_ten_sessions_split_five_two_three_oldest_first() -> None:
    split = split_sessions(list(reversed(DAYS)))  # input order does not matter

    assert split.train == DAYS[:5]
    assert split.validation == DAYS[5:7]
    assert split.test == DAYS[7:]


@pytest.mark.parametrize("n", range(5, 31))
def test_every_split_is_disjoint_and_strictly_later_than_the_one_before(n: int) -> None:
    days = DAYS[:1] + tuple(DAYS[0] + timedelta(days=3 * i + 1) for i in range(n - 1))
    split = split_sessions(days)

    assert set(split.train) | set(split.validation) | set(split.test) == set(days)
    assert len(split.train) + len(split.validation) + len(split.test) == n
    assert max(split.train) < min(split.validation) <= max(split.validation) < min(split.test)
    assert split.test == tuple(sorted(days))[-len(split.test):]


def test_rows_of_a_session_land_in_exactly_one_split() -> None:
    rows = tiny_training_set(0, rows=300)
    rows = rows.subset(np.arange(300))
    dates = np.array([np.datetime64(DAYS[i // 30], "D") for i in range(300)])
    rows = type(rows)(rows.vectors, rows.outcomes, rows.episode_ids, dates, rows.level_type, rows.direction,
                      rows.time_bucket)
    split = split_sessions(rows.sessions)
    parts = [rows.in_sessions(s) for s in (split.train, split.validation, split.test)]

    assert [len(p) for p in parts] == [150, 60, 90]
    ids = [set(p.episode_ids) for p in parts]
    assert not (ids[0] & ids[1] or ids[1] & ids[2] or ids[0] & ids[2])
    assert parts[0].session_dates.max() < parts[1].session_dates.min()
    assert parts[1].session_dates.max() < parts[2].session_dates.min()


def test_overlapping_or_out_of_order_splits_are_refused() -> None:
    with pytest.raises(ValueError, match="appears in split 1"):
        SessionSplit(DAYS[:5], DAYS[4:7], DAYS[7:])
    with pytest.raises(ValueError, match="not after the previous split"):
        SessionSplit(DAYS[:5], DAYS[8:], DAYS[5:8])
    with pytest.raises(ValueError, match="not after"):
        check_time_ordered([DAYS[2:4], DAYS[:2]])


def test_too_few_sessions_are_refused_with_the_minimum() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        split_sessions(DAYS[:4])
    assert split_sessions(DAYS[:5]) == SessionSplit(DAYS[:3], DAYS[3:4], DAYS[4:5])
    assert split_sessions(DAYS[:7]) == SessionSplit(DAYS[:4], DAYS[4:5], DAYS[5:7])


def test_walk_forward_folds_expand_and_score_the_next_session_only() -> None:
    folds = walk_forward(DAYS[:5])

    assert folds == (Fold(DAYS[:2], (DAYS[2],)), Fold(DAYS[:3], (DAYS[3],)), Fold(DAYS[:4], (DAYS[4],)))
    for fold in folds:
        assert max(fold.fit) < min(fold.score)
    assert walk_forward(DAYS, max_folds=2) == (Fold(DAYS[:8], (DAYS[8],)), Fold(DAYS[:9], (DAYS[9],)))
