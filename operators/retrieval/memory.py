"""Retrieval memory: one FAISS index per partition (level type × direction × time bucket).

A partition holds the scaled training vectors of its episodes, ordered by ``episode_id`` so the
memory does not depend on the order rows arrived in (index kinds: ``operators.retrieval.partition``).

**Scope.** A query searches its own partition. A kNN answer only means something when the pool
it is drawn from is several times ``k`` (with a pool of ``k`` rows every query gets the whole
pool, i.e. the partition's base rate). So when the partition holds fewer than ``min_rows``
episodes (default ``4·k``) the query widens to the same level type and direction in every time
bucket, and if that is still too small, to the same direction for every level type and bucket.
The wider pools are made of the partitions' own rows (concatenated in memory when small, else
searched one by one and merged; nothing extra is stored); the answer says which scope it came
from (``Neighbours.scope``). ``min_rows=0`` never widens (strict partitions). With a year of
history most partitions answer on their own; with a few weeks the answer comes from the wider
scopes, which is where the neighbours still carry information (measured in
``tests/retrieval/test_signal.py``: strict partitions of ~5 rows do no better than chance).

Determinism: FAISS runs on one OpenMP thread (set on every build and query). Each query is
searched on its own, so its answer never depends on which other queries share the batch (for
big enough batches, ``faiss.cvar.distance_compute_blas_threshold``, FAISS switches to a BLAS path
whose rounding differs in the last bits). HNSW builds are then deterministic too (fixed level
seed, one thread). Equal distances are ordered by partition key, then by episode id.

Answers (``Neighbours``): ``k' = min(k, rows in scope)`` neighbours, nearest first, with
Euclidean distances in the scaled space (see ``operators.retrieval.scaling``), their outcomes,
the share of each class among them (``distribution``, in ``CLASSES`` order) and the
inverse-distance weighted share (``weighted``: weight ``1/(d + 1e-6)``, so an exact duplicate
dominates, as it should). A query with no stored episode in any scope it may use (or whose only
candidate was excluded) gets ``count = 0``, ``scope = "none"`` and NaN distributions: "no
history" is not the same statement as "all outcomes equally likely", and NaN keeps a consumer
from averaging it in by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import faiss
import numpy as np

from operators.learning.classes import N_CLASSES
from operators.retrieval.partition import (
    EXACT_MAX_ROWS,
    Partition,
    PartitionKey,
    make_index,
    nearest,
    partition_key,
    pooled,
)
from operators.retrieval.scaling import VectorScaling

SCOPES: Final = ("partition", "level_direction", "direction")
MIN_ROWS_PER_K: Final = 4
WEIGHT_EPS: Final = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class Neighbours:
    """The answer for one query vector (fields described in the module docstring)."""

    episode_ids: tuple[str, ...]
    distances: np.ndarray
    outcomes: np.ndarray
    distribution: np.ndarray
    weighted: np.ndarray
    count: int
    scope: str = "partition"
    """Where the neighbours came from: one of ``SCOPES``, or "none" when count is 0."""


@dataclass(frozen=True, slots=True, eq=False)
class Memory:
    """Scaling statistics plus the partitions' indexes; query with ``query``."""

    scaling: VectorScaling
    partitions: Mapping[PartitionKey, Partition]
    _groups: dict = field(init=False, repr=False)
    _pools: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        groups: dict[tuple, list[Partition]] = {}
        for key in sorted(self.partitions):
            groups.setdefault(("level_direction", key[0], key[1]), []).append(self.partitions[key])
            groups.setdefault(("direction", key[1]), []).append(self.partitions[key])
        object.__setattr__(self, "_groups", groups)
        object.__setattr__(self, "_pools", {})   # wider pools, built on first use

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions.values())

    def scope_rows(self, key: PartitionKey) -> dict[str, int]:
        """Stored episodes per scope around a partition key (what widening chooses from)."""
        return {scope: sum(p.rows for p in self._members(scope, key)) for scope in SCOPES}

    def query(self, vectors: np.ndarray, level_type: object, direction: object, time_bucket: object,
              k: int = 25, *, exclude: Sequence[str | None] | None = None,
              min_rows: int | None = None) -> list[Neighbours]:
        """The ``k`` nearest stored episodes of each row of ``vectors`` (scope rules above).

        ``level_type``, ``direction`` and ``time_bucket`` are one value for all rows or one per
        row. ``exclude`` (one episode id or None per row) removes that episode from the row's
        answer: pass the query's own id when it may be in the memory (``spymaster similar`` on a
        training episode), else its first neighbour is itself at distance 0. ``min_rows``: the
        smallest pool a scope must hold to answer (default ``4·k``; 0 = never widen).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        floor = MIN_ROWS_PER_K * k if min_rows is None else int(min_rows)
        scaled = self.scaling.apply(np.atleast_2d(vectors))
        m = scaled.shape[0]
        keys = [partition_key(t, d, b) for t, d, b in zip(_per_row(level_type, m), _per_row(direction, m),
                                                           _per_row(time_bucket, m), strict=True)]
        skip = list(exclude) if exclude is not None else [None] * m
        if len(skip) != m:
            raise ValueError(f"exclude has {len(skip)} entries for {m} query vectors")
        faiss.omp_set_num_threads(1)
        return [self._one(scaled[i:i + 1], keys[i], k, skip[i], floor) for i in range(m)]

    def _members(self, scope: str, key: PartitionKey) -> list[Partition]:
        if scope == "partition":
            return [self.partitions[key]] if key in self.partitions else []
        return self._groups.get(_group(scope, key), [])

    def _pool(self, scope: str, key: PartitionKey) -> list[Partition]:
        if scope == "partition":
            return self._members(scope, key)
        group = _group(scope, key)
        if group not in self._pools:
            self._pools[group] = pooled(self._members(scope, key), key)
        return self._pools[group]

    def _one(self, row: np.ndarray, key: PartitionKey, k: int, skip: str | None, floor: int) -> Neighbours:
        scope = next((s for s in SCOPES if floor == 0 or sum(p.rows for p in self._members(s, key)) >= floor),
                     SCOPES[-1])
        ids, squared, codes = nearest(self._pool(scope, key), row, k, skip)
        if len(ids) == 0:
            return _empty()
        distances = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
        return _neighbours(tuple(ids.tolist()), distances, codes.astype(np.int8), scope)


def build_memory(vectors: np.ndarray, outcomes: np.ndarray, episode_ids: Sequence[str],
                 level_type: Sequence[object] | np.ndarray, direction: Sequence[object] | np.ndarray,
                 time_bucket: Sequence[object] | np.ndarray, scaling: VectorScaling, *,
                 exact_max: int = EXACT_MAX_ROWS) -> Memory:
    """Index every row in its partition (≤ 6 level types × 2 directions × 5 buckets = 60).

    ``outcomes`` are codes 0..2 in ``CLASSES`` order; ``episode_ids`` must be unique.
    """
    x = scaling.apply(vectors)
    codes = np.asarray(outcomes)
    ids = tuple(str(e) for e in episode_ids)
    n = x.shape[0]
    if not (len(codes) == len(ids) == len(level_type) == len(direction) == len(time_bucket) == n):
        raise ValueError("vectors, outcomes, episode_ids, level_type, direction and time_bucket differ in length")
    if n and (codes.min() < 0 or codes.max() >= N_CLASSES):
        raise ValueError(f"outcome codes must lie in 0..{N_CLASSES - 1}")
    if len(set(ids)) != n:
        raise ValueError("episode_ids must be unique")
    rows: dict[PartitionKey, list[int]] = {}
    for i, key in enumerate(map(partition_key, level_type, direction, time_bucket)):
        rows.setdefault(key, []).append(i)
    faiss.omp_set_num_threads(1)
    parts = {}
    for key in sorted(rows):
        order = sorted(rows[key], key=ids.__getitem__)
        parts[key] = Partition(key, make_index(x[order], exact_max), tuple(ids[i] for i in order),
                               _frozen(codes[order].astype(np.int8)))
    return Memory(scaling, parts)


def _group(scope: str, key: PartitionKey) -> tuple:
    return ("level_direction", key[0], key[1]) if scope == "level_direction" else ("direction", key[1])


def _neighbours(ids: tuple[str, ...], distances: np.ndarray, outcomes: np.ndarray, scope: str) -> Neighbours:
    counts = np.bincount(outcomes, minlength=N_CLASSES).astype(np.float64)
    weights = 1.0 / (distances.astype(np.float64) + WEIGHT_EPS)
    weighted = np.bincount(outcomes, weights=weights, minlength=N_CLASSES)
    return Neighbours(ids, _frozen(distances), _frozen(outcomes), _frozen(counts / counts.sum()),
                      _frozen(weighted / weighted.sum()), len(ids), scope)


def _empty() -> Neighbours:
    nan = np.full(N_CLASSES, np.nan)
    return Neighbours((), _frozen(np.zeros(0, np.float32)), _frozen(np.zeros(0, np.int8)), _frozen(nan),
                      _frozen(nan.copy()), 0, "none")


def _per_row(value: Any, m: int) -> Sequence[object]:
    """``value`` for each of ``m`` rows: a scalar repeated, or one value per row (any sequence or array)."""
    if isinstance(value, (str, bytes, int, np.integer)) or np.ndim(value) == 0:
        return [value] * m
    values = list(value)
    if len(values) != m:
        raise ValueError(f"got {len(values)} partition values for {m} query vectors")
    return values


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
