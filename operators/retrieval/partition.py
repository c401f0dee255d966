"""One partition's FAISS index and its episodes; pooling partitions when a query widens.

Partitions up to ``exact_max`` rows use an exact ``IndexFlatL2``; bigger ones use HNSW
(``IndexHNSWFlat``, M=32, efConstruction=80, efSearch = max(64, 2·k) at query time): a flat
search costs O(rows·144) per query, which grows with the history, while HNSW's cost grows with
its logarithm, with recall close to 1 at these sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import faiss
import numpy as np

PartitionKey = tuple[str, str, int]
"""(level_type, direction, time_bucket), e.g. ("ORH", "UP", 0)."""

EXACT_MAX_ROWS: Final = 20_000
HNSW_M: Final = 32
HNSW_EF_CONSTRUCTION: Final = 80
HNSW_EF_SEARCH: Final = 64


def partition_key(level_type: object, direction: object, time_bucket: object) -> PartitionKey:
    return (str(level_type), str(direction), int(time_bucket))  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True, eq=False)
class Partition:
    """One partition's index and, row for row, the episodes it holds (ordered by episode id)."""

    key: PartitionKey
    index: faiss.Index
    episode_ids: tuple[str, ...]
    outcomes: np.ndarray
    """int8[rows]: outcome codes (``CLASSES`` order) of the indexed episodes."""
    ids: np.ndarray = field(init=False, repr=False)
    """``episode_ids`` as an object array, for vectorised picking."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", np.array(self.episode_ids, dtype=object))

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self.index, faiss.IndexHNSW) else "flat"

    @property
    def rows(self) -> int:
        return int(self.index.ntotal)

    def search(self, row: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        """(squared distances, row numbers) of the ``want`` nearest rows."""
        if self.kind == "hnsw":
            # faiss's stub lacks SearchParametersHNSW, which the SWIG module has
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, 2 * want))  # type: ignore[attr-defined]
            squared, labels = self.index.search(row, want, params=params)
        else:
            squared, labels = self.index.search(row, want)
        found = labels[0] >= 0
        return squared[0][found], labels[0][found]


def make_index(x: np.ndarray, exact_max: int) -> faiss.Index:
    index: faiss.Index
    if x.shape[0] > exact_max:
        index = faiss.IndexHNSWFlat(x.shape[1], HNSW_M)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x, np.float32))
    return index


def pooled(parts: Sequence[Partition], key: PartitionKey) -> list[Partition]:
    """The partitions as one searchable unit when that is cheap, else unchanged.

    Flat partitions of at most ``EXACT_MAX_ROWS`` rows in all are concatenated into one exact
    index (vectors copied back out of their own indexes, bit for bit): one FAISS call per query
    instead of one per partition. Rows keep their partition order, then their id order.
    """
    if len(parts) <= 1 or any(p.kind != "flat" for p in parts) or sum(p.rows for p in parts) > EXACT_MAX_ROWS:
        return list(parts)
    index = faiss.IndexFlatL2(parts[0].index.d)
    for p in parts:
        index.add(p.index.reconstruct_n(0, p.rows))
    outcomes = np.concatenate([p.outcomes for p in parts])
    outcomes.setflags(write=False)
    return [Partition(key, index, tuple(e for p in parts for e in p.episode_ids), outcomes)]


def nearest(pool: Sequence[Partition], row: np.ndarray, k: int, skip: str | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(episode ids, squared distances, outcomes) of the ``k`` nearest rows of the pool, nearest first.

    ``skip`` (an episode id) is left out. Equal distances are ordered by partition, then row.
    """
    ids, d2, order, rows, codes = [], [], [], [], []
    for i, part in enumerate(pool):
        want = min(k + (skip is not None), part.rows)
        if want == 0:
            continue
        squared, labels = part.search(row, want)
        ids.append(part.ids[labels])
        d2.append(squared)
        order.append(np.full(len(labels), i))
        rows.append(labels)
        codes.append(part.outcomes[labels])
    if not ids:
        return np.zeros(0, object), np.zeros(0, np.float32), np.zeros(0, np.int8)
    all_ids, all_d2, all_codes = np.concatenate(ids), np.concatenate(d2), np.concatenate(codes)
    pick = np.lexsort((np.concatenate(rows), np.concatenate(order), all_d2))
    if skip is not None:
        pick = pick[all_ids[pick] != skip]
    pick = pick[:k]
    return all_ids[pick], all_d2[pick], all_codes[pick]
