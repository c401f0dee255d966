"""Latency percentiles as the benchmarks print them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Percentiles:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @staticmethod
    def of(latency_ns: np.ndarray | list[int], digits: int = 1) -> Percentiles:
        """p50/p95/p99 in milliseconds of nanosecond latencies (NaN when there are none)."""
        ms = np.asarray(latency_ns, np.float64) / 1e6
        if not len(ms):
            return Percentiles(0, float("nan"), float("nan"), float("nan"))
        p = np.percentile(ms, [50, 95, 99])
        return Percentiles(len(ms), *(round(float(v), digits) for v in p))
