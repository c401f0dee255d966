"""The rows a model learns from, as plain arrays, and the retrieval memory built from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from operators.retrieval import Memory, build_memory, fit_scaling


@dataclass(frozen=True, slots=True, eq=False)
class TrainingSet:
    """Row-aligned arrays of labelled episodes, in time order (session, vector time, episode id)."""

    vectors: np.ndarray
    """float32[n, 144]: setup vectors."""
    outcomes: np.ndarray
    """int8[n]: outcome codes in ``CLASSES`` order."""
    episode_ids: tuple[str, ...]
    session_dates: np.ndarray
    """datetime64[D][n]: the session of each row (what splits are made of)."""
    level_type: tuple[str, ...]
    direction: tuple[str, ...]
    time_bucket: np.ndarray
    """int32[n]."""

    def __len__(self) -> int:
        return len(self.episode_ids)

    @property
    def sessions(self) -> tuple[date, ...]:
        """The distinct sessions, oldest first."""
        return tuple(d.astype(date) for d in np.unique(self.session_dates))

    def subset(self, mask: np.ndarray) -> TrainingSet:
        """The rows where ``mask`` is true (boolean mask or integer positions), order kept."""
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask, np.int64)
        pick = idx.tolist()
        return TrainingSet(self.vectors[idx], self.outcomes[idx], tuple(self.episode_ids[i] for i in pick),
                           self.session_dates[idx], tuple(self.level_type[i] for i in pick),
                           tuple(self.direction[i] for i in pick), self.time_bucket[idx])

    def in_sessions(self, sessions: tuple[date, ...]) -> TrainingSet:
        """The rows of the given sessions."""
        return self.subset(np.isin(self.session_dates, np.array(sessions, dtype="datetime64[D]")))


def memory_from(rows: TrainingSet) -> Memory:
    """Retrieval memory over ``rows`` with scaling statistics from exactly these rows (pass train)."""
    return build_memory(rows.vectors, rows.outcomes, rows.episode_ids, rows.level_type, rows.direction,
                        rows.time_bucket, fit_scaling(rows.vectors))
