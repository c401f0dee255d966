"""``group_rows``: each distinct key once, ascending, with its rows in their order."""

from __future__ import annotations

import numpy as np
import pytest

from operators.grouping import group_rows


@pytest.mark.parametrize("keys", [1, 3, 8, 9, 650])
def test_groups_equal_a_brute_force_whatever_the_number_of_keys(keys: int) -> None:
    rng = np.random.default_rng(keys)
    values = rng.choice(rng.integers(0, 2**40, keys), 5_000)
    got = group_rows(values)
    want = [(int(k), np.flatnonzero(values == k)) for k in np.unique(values)]
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, rows), (_, expected) in zip(got, want, strict=True):
        assert np.array_equal(np.arange(len(values))[rows], expected)
