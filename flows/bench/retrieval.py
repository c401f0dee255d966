"""Retrieval throughput: queries per second of a memory on given vectors (for ``spymaster bench``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from operators.retrieval import Memory


def retrieval_qps(memory: Memory, vectors: np.ndarray, level_type: Sequence[object] | str,
                  direction: Sequence[object] | str, time_bucket: Sequence[object] | int, *, k: int = 25,
                  batch: int = 64, min_seconds: float = 0.5,
                  clock: Callable[[], float] = time.perf_counter) -> float:
    """Queries per second of ``memory.query`` over the rows, in batches of ``batch`` rows.

    Whole passes over the rows repeat until ``min_seconds`` of wall-clock time have gone by, after
    one warm-up query, so a small sample still gives a stable figure. One FAISS thread, as in
    production (``operators.retrieval.memory``).
    """
    x = np.atleast_2d(np.asarray(vectors, np.float32))
    m = x.shape[0]
    if m == 0:
        raise ValueError("retrieval_qps needs at least one query vector")
    per_row = [_rows(v, m) for v in (level_type, direction, time_bucket)]
    memory.query(x[:1], per_row[0][0], per_row[1][0], per_row[2][0], k=k)
    done, start = 0, clock()
    while True:
        for lo in range(0, m, batch):
            hi = min(lo + batch, m)
            memory.query(x[lo:hi], per_row[0][lo:hi], per_row[1][lo:hi], per_row[2][lo:hi], k=k)
        done += m
        elapsed = clock() - start
        if elapsed >= min_seconds:
            return done / elapsed


def _rows(value: Any, m: int) -> list[object]:
    """``value`` for each of ``m`` rows: a scalar repeated, or one value per row."""
    if isinstance(value, (str, int, np.integer)):
        return [value] * m
    values = list(value)
    if len(values) != m:
        raise ValueError(f"got {len(values)} partition values for {m} query vectors")
    return values
