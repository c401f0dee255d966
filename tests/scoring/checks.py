"""Assertions shared by the scoring tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from connectors.scoring.base import STATUSES, ScoreRequest, ScoreResult


def one_each(batch: Sequence[ScoreRequest], results: Sequence[ScoreResult]) -> None:
    """Exactly one result per request, in order, each with a known status and consistent fields."""
    assert [r.episode_id for r in results] == [q.episode_id for q in batch]
    for r in results:
        assert r.status in STATUSES
        assert (r.probabilities is not None) == (r.status == "ok"), r
        assert r.latency_ns > 0


def statuses(results: Sequence[ScoreResult]) -> list[str]:
    return [r.status for r in results]


def probs(results: Sequence[ScoreResult]) -> np.ndarray:
    return np.array([r.probabilities for r in results], dtype=np.float64)
