"""``retrieval_qps``: the benchmark's figure, with an injected clock so the arithmetic is checked exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from flows.bench.retrieval import retrieval_qps
from operators.retrieval import build_memory, fit_scaling
from operators.vectors import VECTOR_SIZE


def memory_and_queries(n: int = 600, m: int = 50):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(n, VECTOR_SIZE)).astype(np.float32)
    lt = [("ORH", "ORL")[i % 2] for i in range(n)]
    memory = build_memory(x, rng.integers(0, 3, n).astype(np.int8), tuple(f"q{i}" for i in range(n)), lt,
                          ["UP"] * n, [i % 5 for i in range(n)], fit_scaling(x))
    return memory, rng.normal(size=(m, VECTOR_SIZE)).astype(np.float32)


def test_qps_counts_whole_passes_over_the_elapsed_clock_time() -> None:
    memory, q = memory_and_queries()
    ticks = itertools.count(start=0.0, step=0.25)
    qps = retrieval_qps(memory, q, "ORH", "UP", 0, k=10, batch=16, min_seconds=0.5, clock=lambda: next(ticks))
    assert qps == pytest.approx(2 * len(q) / 0.5)     # start at 0.0; passes end at 0.25 and 0.5


def test_qps_is_positive_with_the_real_clock_and_refuses_no_queries() -> None:
    memory, q = memory_and_queries()
    assert retrieval_qps(memory, q, ["ORL"] * len(q), "UP", [1] * len(q), min_seconds=0.05) > 0
    with pytest.raises(ValueError, match="at least one"):
        retrieval_qps(memory, q[:0], "ORH", "UP", 0)
