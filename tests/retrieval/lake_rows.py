"""Labelled episodes of a lake's ``gold.training_view`` as arrays, split by session in time order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from connectors.delta.lake import Lake
from connectors.delta.tables import GOLD_TRAINING_VIEW
from operators.learning.classes import encode
from operators.retrieval import Memory, build_memory, fit_scaling


@dataclass(frozen=True)
class Rows:
    ids: np.ndarray
    sessions: np.ndarray
    vectors: np.ndarray
    outcomes: np.ndarray
    level_type: np.ndarray
    direction: np.ndarray
    time_bucket: np.ndarray

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    def memory(self) -> Memory:
        """A memory over these rows, with scaling statistics from exactly these rows."""
        return build_memory(self.vectors, self.outcomes, tuple(self.ids), self.level_type, self.direction,
                            self.time_bucket, fit_scaling(self.vectors))

    def query(self, memory: Memory, **kw: Any) -> list:
        return memory.query(self.vectors, self.level_type, self.direction, self.time_bucket, **kw)


def training_rows(lake: Lake) -> Rows:
    t = lake.read(GOLD_TRAINING_VIEW, ["episode_id", "session_date", "feature_vector", "outcome", "level_type",
                                       "direction", "time_bucket"])
    t = t.sort_by([("session_date", "ascending"), ("episode_id", "ascending")])
    return Rows(np.array(t["episode_id"].to_pylist()), np.array(t["session_date"].to_pylist()),
                np.array(t["feature_vector"].to_pylist(), np.float32), encode(t["outcome"].to_pylist()),
                np.array(t["level_type"].to_pylist()), np.array(t["direction"].to_pylist()),
                np.array(t["time_bucket"].to_pylist(), np.int32))


def split_by_session(rows: Rows, train_sessions: int) -> tuple[Rows, Rows]:
    """The earliest ``train_sessions`` sessions, and every later one."""
    sessions = sorted(set(rows.sessions.tolist()))
    early = np.isin(rows.sessions, np.array(sessions[:train_sessions], dtype=object))
    return rows.take(early), rows.take(~early)
