"""Row layout of level-approach episodes (``silver.level_approach`` before enrichment)."""

from __future__ import annotations

import numpy as np

UP = 1
"""Approach from below: the price was under the level at the episode start."""
DOWN = -1
"""Approach from above: the price was over the level at the episode start."""

EPISODE_DTYPE = np.dtype(
    [
        # Time of the 1-second row at which the episode started (ns since the epoch). The row at
        # ``start_ts`` is the first one where an armed level had |mid - level| <= approach ticks.
        ("start_ts", "i8"),
        # Position of the level in the ``levels`` sequence given to ``ApproachDetector``.
        ("level_index", "i2"),
        # Level price (1e-9 units), copied from the level definition.
        ("level_price", "i8"),
        # +1 UP (mid below the level at the start), -1 DOWN (mid above the level at the start);
        # mid exactly at the level: the side of the last second the level was reset-away.
        ("direction", "i1"),
        # Signed distance at the start: (mid - level) / tick. Negative for UP, positive for DOWN,
        # |distance_ticks| <= approach_ticks.
        ("distance_ticks", "f8"),
        # Whole seconds from the last second at which the price was >= reset_ticks away from the
        # level (the level was armed then) to ``start_ts``: how long the approach took (>= 1).
        ("approach_seconds", "i4"),
        # Velocity toward the level in ticks/second: direction * (mid[start] - mid[ref]) / tick /
        # seconds(start - ref), where ``ref`` is the oldest row with a valid mid within the 30 s
        # before the start (exactly 30 s back when available); 0.0 when there is no earlier
        # valid mid in that window. Positive = moving toward the level.
        ("velocity_tps", "f8"),
        # Largest |mid - level| / tick seen from the second the level was armed up to the start.
        ("max_distance_ticks", "f8"),
        # Mid (dollars) at ``start_ts``; the ``start_mid`` a ``Labeler`` needs.
        ("start_mid", "f8"),
    ]
)
"""One row per episode, in order of ``start_ts`` then ``level_index``."""

VELOCITY_WINDOW_SECONDS = 30
"""Lookback of ``velocity_tps``."""
