"""What a live session keeps for its vectors: exactly what they can still read."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.approach import EPISODE_DTYPE
from operators.vectors import LOOKBACK_NS, VECTOR_BAR_DTYPE, VECTOR_BAR_FIELDS, setup_vectors, vector_history

NS = 1_000_000_000
T0 = 1_700_000_000 * NS


@st.composite
def sessions(draw):
    """A 1-second series with gaps (some longer than the lookback), its 5-second bars, and a cut."""
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 7, 90, 400]), min_size=5, max_size=400))
    ts = T0 + np.cumsum(np.array(gaps, np.int64)) * NS
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mid = 5000.0 + 0.25 * np.cumsum(rng.integers(-3, 4, len(ts))).astype(np.float64)
    mid[rng.random(len(ts)) < 0.05] = np.nan
    closes = np.unique((ts + 5 * NS - 1) // (5 * NS) * (5 * NS))
    bars = np.zeros(len(closes), VECTOR_BAR_DTYPE)
    bars["ts"] = closes
    for name in VECTOR_BAR_FIELDS[1:]:
        bars[name] = rng.normal(size=len(closes)).astype(bars.dtype[name])
    cut = draw(st.integers(1, len(ts) - 1))
    return ts, mid, bars, cut


@settings(max_examples=80, deadline=None)
@given(sessions())
def test_the_kept_history_gives_every_later_episode_the_vector_of_the_whole_history(s) -> None:
    ts, mid, bars, cut = s
    last = int(ts[cut - 1])
    kept_ts, kept_mid, kept_bars = vector_history(ts[:cut], mid[:cut], bars[bars["ts"] <= last], last)
    assert len(kept_ts) <= int(np.count_nonzero(ts[:cut] > last - LOOKBACK_NS)) + 1
    # episodes start at later rows; the session goes on past the cut in both histories
    later_ts, later_mid, later_bars = ts[cut:], mid[cut:], bars[bars["ts"] > last]
    full = (ts, mid, bars)
    kept = (np.concatenate([kept_ts, later_ts]), np.concatenate([kept_mid, later_mid]),
            np.concatenate([kept_bars, later_bars]))
    starts = later_ts[: min(len(later_ts), 20)]
    episodes = np.zeros(len(starts), EPISODE_DTYPE)
    episodes["start_ts"], episodes["direction"] = starts, np.where(np.arange(len(starts)) % 2, 1, -1)
    episodes["distance_ticks"] = 2.0
    types = tuple("PDH" for _ in starts)
    known = np.full(len(starts), T0, np.int64)
    a = setup_vectors(episodes, types, known, *full, T0, 0.25)
    b = setup_vectors(episodes, types, known, *kept, T0, 0.25)
    assert a.tobytes() == b.tobytes()
