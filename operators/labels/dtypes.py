"""Row layouts of first-crossing labels (``gold.labels``)."""

from __future__ import annotations

import numpy as np

BREAK = 0
REJECT = 1
CHOP = 2
OUTCOMES = ("BREAK", "REJECT", "CHOP")
"""Outcome names, indexed by ``LABEL_DTYPE.outcome``."""

LABEL_EPISODE_DTYPE = np.dtype(
    [
        ("key", "i8"),  # opaque id chosen by the caller, copied to the label
        ("start_ts", "i8"),  # episode start (ns); only rows strictly after it count
        ("level_price", "i8"),  # level, 1e-9 units
        ("direction", "i1"),  # +1 UP (approach from below), -1 DOWN (from above)
        ("start_mid", "f8"),  # mid (dollars) at start_ts; must be finite
    ]
)
"""What a ``Labeler`` needs of an episode."""

LABEL_DTYPE = np.dtype(
    [
        ("key", "i8"),  # the episode's ``key``
        ("start_ts", "i8"),  # the episode's ``start_ts``
        ("level_price", "i8"),  # the episode's ``level_price``
        ("direction", "i1"),  # the episode's ``direction``
        ("outcome", "i1"),  # BREAK 0, REJECT 1, CHOP 2 (``OUTCOMES``)
        # BREAK/REJECT: ts of the crossing row; CHOP: start_ts + horizon; truncated CHOP: the
        # last row fed (start_ts if no row after the start was fed).
        ("resolved_ts", "i8"),
        ("time_to_resolution_ns", "i8"),  # resolved_ts - start_ts
        # max over rows in (start_ts, resolved_ts] with a valid mid of
        # direction * (mid - start_mid) / tick (raw, may be negative); 0.0 if there is no such row
        ("mfe_ticks", "f8"),
        ("mae_ticks", "f8"),  # same with -direction (max adverse excursion)
        ("truncated", "?"),  # CHOP because the input ended before start_ts + horizon
    ]
)
"""One row per labelled episode, emitted when it resolves."""
