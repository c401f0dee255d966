"""``in_halves``: a kernel's range cut in two, one half on a helper thread; the GEX kernels give
the same numbers cut or not."""

from __future__ import annotations

import numpy as np
import pytest

from operators.halves import SPLIT_MIN, in_halves
from operators.options.gex import GexConfig
from operators.options.surface import gex_second, gex_seconds
from tests.operators.test_gex import SECOND, SPOT, es_chain


@pytest.fixture(autouse=True)
def _cores_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut as on a machine with cores to spare (this one may have two, where nothing is cut)."""
    from operators import halves

    monkeypatch.setattr(halves, "CORES", halves.SPLIT_CORES)


def test_two_cores_cut_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from operators import halves

    monkeypatch.setattr(halves, "CORES", 2)
    cuts: list[tuple[int, int]] = []
    in_halves(10, lambda lo, hi: cuts.append((lo, hi)), units=SPLIT_MIN)
    assert cuts == [(0, 10)]


def test_the_halves_cover_the_range_once_and_small_work_stays_on_the_caller() -> None:
    seen = np.zeros(10, np.int64)
    cuts: list[tuple[int, int]] = []

    def work(lo: int, hi: int) -> None:
        cuts.append((lo, hi))
        seen[lo:hi] += 1

    in_halves(10, work, units=SPLIT_MIN)
    assert sorted(cuts) == [(0, 5), (5, 10)] and seen.tolist() == [1] * 10
    cuts.clear()
    in_halves(10, work, units=SPLIT_MIN - 1)
    assert cuts == [(0, 10)]


def test_an_error_in_the_helpers_half_reaches_the_caller() -> None:
    def work(lo: int, hi: int) -> None:
        if lo == 0:
            raise ValueError("first half")

    with pytest.raises(ValueError, match="first half"):
        in_halves(10, work, units=SPLIT_MIN)


def test_many_seconds_in_two_halves_equal_the_seconds_one_by_one() -> None:
    """30 seconds × 366 options is cut in two (options for σ, seconds for zero gamma); one second
    at a time is not: every number the same, bit for bit."""
    chain, cfg = es_chain(), GexConfig()
    rng = np.random.default_rng(9)
    m = 30
    assert m * len(chain.strike) >= SPLIT_MIN > len(chain.strike)
    seconds = SECOND + np.arange(m, dtype=np.int64) * 1_000_000_000
    spots = SPOT + np.cumsum(rng.normal(0.0, 0.5, m))
    mids = chain.mid[None, :] * (1.0 + rng.normal(0.0, 0.002, (m, len(chain.strike))))
    underlying = np.repeat(spots[:, None], len(chain.strike), axis=1)
    surface, summaries, per = gex_seconds("ES", seconds, spots, chain, mids, underlying, "black76", cfg)
    guess = None
    for j in range(m):
        one = type(chain)(chain.expiration_ns, chain.strike, chain.is_call, mids[j], chain.open_interest,
                          chain.multiplier, underlying[j])
        _, summary, numbers = gex_second("ES", int(seconds[j]), float(spots[j]), one, "black76", cfg, guess=guess)
        for name, values in numbers.items():
            assert np.array_equal(values, per[name][j], equal_nan=True), (j, name)
        assert summary == summaries[j]
        guess = numbers["iv"]


def test_a_helper_serves_many_calls_and_an_idle_one_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """One helper thread for a thread's calls, not one per call; after ``IDLE_S`` without work it
    has ended, and the next call starts another (its work still done, once)."""
    import threading

    from operators import halves

    monkeypatch.setattr(halves, "IDLE_S", 0.2)
    seen = np.zeros(10, np.int64)
    helpers: list[threading.Thread] = []

    def work(lo: int, hi: int) -> None:
        seen[lo:hi] += 1
        if lo == 0 and threading.current_thread() not in helpers:
            helpers.append(threading.current_thread())

    for _ in range(20):
        in_halves(10, work, units=SPLIT_MIN)
    assert seen.tolist() == [20] * 10 and len(helpers) == 1
    helpers[0].join(timeout=10.0)  # it ends by itself once idle
    assert not helpers[0].is_alive()
    in_halves(10, work, units=SPLIT_MIN)
    assert seen.tolist() == [21] * 10 and len(helpers) == 2 and helpers[1] is not threading.current_thread()
