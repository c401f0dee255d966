"""A tiny, explicit random number generator for the simulator's numba kernels.

Why not ``np.random`` inside ``@njit``: numba keeps that generator in hidden per-thread global
state, so a file's bytes would depend on what else ran in the process. xoshiro256** keeps its state
in a 4-word array that the caller owns, which makes "same seed -> byte-identical files" a property
of the data, not of the process.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_MASK64 = (1 << 64) - 1
_INV_2_53 = 1.0 / 9007199254740992.0


def new_state(seed: int) -> np.ndarray:
    """Expand ``seed`` into a xoshiro256** state with splitmix64 (the authors' recommended seeding)."""
    x = seed & _MASK64
    words = []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        words.append(z ^ (z >> 31))
    return np.array(words, dtype=np.uint64)


@njit(cache=True, inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def next_u64(s: np.ndarray) -> np.uint64:
    """Advance the state in place and return 64 random bits."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return result


@njit(cache=True)
def uniform(s: np.ndarray) -> float:
    """Uniform on [0, 1) with 53 random bits."""
    return float(next_u64(s) >> np.uint64(11)) * _INV_2_53


@njit(cache=True)
def randint(s: np.ndarray, lo: int, hi: int) -> int:
    """Uniform integer on [lo, hi] inclusive."""
    return lo + int(uniform(s) * (hi - lo + 1))


@njit(cache=True)
def exponential(s: np.ndarray) -> float:
    """Exponential with mean 1."""
    return -math.log(1.0 - uniform(s))


@njit(cache=True)
def normal(s: np.ndarray) -> float:
    """Standard normal by Box-Muller (one draw per call; simplicity over speed)."""
    u1 = 1.0 - uniform(s)
    u2 = uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
