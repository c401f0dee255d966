"""``group_rows``: each distinct key once, ascending, with its rows in their order."""

from __future__ import annotations

import numpy as np
import pytest

from operators.grouping import among, group_rows


@pytest.mark.parametrize("keys", [1, 3, 8, 9, 650])
def test_groups_equal_a_brute_force_whatever_the_number_of_keys(keys: int) -> None:
    rng = np.random.default_rng(keys)
    values = rng.choice(rng.integers(0, 2**40, keys), 5_000)
    got = group_rows(values)
    want = [(int(k), np.flatnonzero(values == k)) for k in np.unique(values)]
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, rows), (_, expected) in zip(got, want, strict=True):
        assert np.array_equal(np.arange(len(values))[rows], expected)


def test_among_is_isin_for_a_sorted_set() -> None:
    rng = np.random.default_rng(5)
    members = np.unique(rng.integers(0, 2**31, 650))
    values = np.concatenate([rng.choice(members, 3_000), rng.integers(0, 2**31, 3_000),
                             [members[0], members[-1], members[-1] + 1, 0]]).astype(np.uint32)
    assert np.array_equal(among(values, members), np.isin(values, members))
    assert not among(values, np.zeros(0, np.int64)).any()
    assert among(values[:0], members).shape == (0,)


def test_among_in_runs_of_one_instrument_is_isin() -> None:
    """A futures chunk: long runs of a few ids, members and not, in every order of change."""
    rng = np.random.default_rng(6)
    members = np.array([3, 7, 11], np.int64)
    for _ in range(50):
        values = np.repeat(rng.integers(0, 14, 12), rng.integers(1, 5, 12)).astype(np.uint32)
        assert np.array_equal(among(values, members), np.isin(values, members)), values
