"""Neighbours of a stored episode: look its vector up in the lake, query a model version's memory.

Shared by ``spymaster similar`` (which prints the answer) and its tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from connectors.delta.lake import Lake
from connectors.delta.tables import GOLD_SETUP_VECTORS, GOLD_TRAINING_VIEW
from operators.errors import ConfigError
from operators.learning.classes import CLASSES
from operators.retrieval import Memory, Neighbours, partition_key

_NEIGHBOUR_COLUMNS = ["episode_id", "session_date", "contract_id", "level_type", "direction", "time_bucket"]
_QUERY_COLUMNS = ["episode_id", "model_id", "contract_id", "session_date", "level_type", "direction", "time_bucket",
                  "feature_vector"]


@dataclass(frozen=True, slots=True)
class StoredEpisode:
    episode_id: str
    model_id: str
    contract_id: str
    session_date: date
    level_type: str
    direction: str
    time_bucket: int
    vector: np.ndarray
    outcome: str | None


@dataclass(frozen=True, slots=True)
class SimilarAnswer:
    query: StoredEpisode
    model_id: str
    version: str
    neighbours: Neighbours
    scope_rows: dict[str, int]
    """Stored episodes in the query's partition, level type × direction, and direction."""
    details: dict[str, dict]
    """episode_id → session_date, contract_id, level_type, direction, time_bucket of each neighbour
    found in the lake (a memory built from another lake may name episodes this one lacks)."""
    classes: tuple[str, ...] = CLASSES

    def rows(self) -> list[tuple[str, ...]]:
        """One printable row per neighbour, nearest first."""
        n = self.neighbours
        out = []
        for rank, (eid, dist, code) in enumerate(zip(n.episode_ids, n.distances, n.outcomes, strict=True), 1):
            info = self.details.get(eid, {})
            out.append((str(rank), eid, *(str(info.get(c, "-")) for c in _NEIGHBOUR_COLUMNS[1:]),
                        f"{float(dist):.3f}", CLASSES[int(code)]))
        return out

    def title(self) -> str:
        """Where the neighbours were searched, in words (see the scopes of ``operators.retrieval.memory``)."""
        q, n, rows = self.query, self.neighbours, self.scope_rows
        where = {"partition": f"{q.level_type} {q.direction} bucket {q.time_bucket} episodes",
                 "level_direction": f"{q.level_type} {q.direction} episodes of every time bucket",
                 "direction": f"{q.direction} episodes of every level type and time bucket"}
        if n.scope == "none":
            return f"no stored {q.direction} episode to compare with"
        widened = "" if n.scope == "partition" else f" (its own partition holds only {rows['partition']})"
        return f"{n.count} nearest of {rows[n.scope]} stored {where[n.scope]}{widened}"

    @staticmethod
    def formatted(shares: np.ndarray) -> list[str]:
        return ["-" if math.isnan(float(s)) else f"{float(s):.1%}" for s in shares]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stored_episode(lake: Lake, episode_id: str) -> StoredEpisode:
    """The episode's setup vector and partition; ``ConfigError`` when the lake has no such episode."""
    rows = lake.read(GOLD_SETUP_VECTORS, _QUERY_COLUMNS, where=f'"episode_id" = {_quoted(episode_id)}')
    if rows.num_rows == 0:
        raise ConfigError(f"episode {episode_id!r} is not in gold.setup_vectors of the lake at {lake.root}")
    row = rows.slice(0, 1).to_pylist()[0]
    label = lake.read(GOLD_TRAINING_VIEW, ["outcome"], where=f'"episode_id" = {_quoted(episode_id)}')
    return StoredEpisode(row["episode_id"], row["model_id"], row["contract_id"], row["session_date"],
                         row["level_type"], row["direction"], int(row["time_bucket"]),
                         np.asarray(row["feature_vector"], np.float32),
                         label["outcome"][0].as_py() if label.num_rows else None)


def resolve_version(model_id: str, version: str | None, alias: str) -> str:
    """``version`` itself, or the version ``alias`` names; ``ConfigError`` when there is none."""
    if version is not None:
        return str(version)
    from connectors.mlflow.tracking import champion_version, tracking_uri

    ref = champion_version(model_id, alias)
    if ref is None:
        raise ConfigError(f"no model {model_id} with alias {alias!r} is registered at {tracking_uri()}; "
                          "train one with `spymaster train` or pass --version")
    return ref.version


def query_memory(memory: Memory, episode: StoredEpisode, k: int, include_self: bool) -> Neighbours:
    exclude = None if include_self else [episode.episode_id]
    return memory.query(episode.vector[None, :], episode.level_type, episode.direction, episode.time_bucket, k=k,
                        exclude=exclude)[0]


def find_similar(lake: Lake, episode_id: str, *, model_id: str | None = None, version: str | None = None,
                 alias: str = "champion", k: int = 25, include_self: bool = False,
                 memory: Memory | None = None) -> SimilarAnswer:
    """Everything ``spymaster similar`` prints (``memory`` given: use it instead of the registry's)."""
    from connectors.models.memory_store import load_memory_for

    episode = stored_episode(lake, episode_id)
    model = model_id or episode.model_id
    if memory is None:
        version = resolve_version(model, version, alias)
        memory = load_memory_for(model, version)
    found = query_memory(memory, episode, k, include_self)
    details = {}
    if found.count:
        ids = ", ".join(_quoted(e) for e in found.episode_ids)
        meta = lake.read(GOLD_SETUP_VECTORS, _NEIGHBOUR_COLUMNS, where=f'"episode_id" in ({ids})')
        details = {r["episode_id"]: r for r in meta.to_pylist()}
    rows = memory.scope_rows(partition_key(episode.level_type, episode.direction, episode.time_bucket))
    return SimilarAnswer(episode, model, str(version or "-"), found, rows, details)
