"""Brute-force first-crossing labels in plain Python, independent of the streaming kernel.

It shares nothing with ``operators.labels.kernels``/``logic`` but the dtypes and the params, and
exists so the streaming ``Labeler`` can be checked against it on whole sessions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from operators.labels.dtypes import LABEL_DTYPE

if TYPE_CHECKING:
    from operators.labels.logic import LabelParams


def _to_units(dollars: float) -> int:
    return int(np.rint(dollars * 1e9))


def label_reference(ts: np.ndarray, mid: np.ndarray, episodes: np.ndarray,
                    params: LabelParams) -> np.ndarray:
    """Labels of ``episodes`` (``LABEL_EPISODE_DTYPE``) over a whole session (``ts``, ``mid``).

    Same rows and order as ``Labeler``: add all, feed all, then close.
    """
    ts_list = [int(t) for t in np.asarray(ts).tolist()]
    mid_list = [float(x) for x in np.asarray(mid).tolist()]
    tick = params.tick
    horizon = params.horizon_seconds * 1_000_000_000
    last_ts = ts_list[-1] if ts_list else None
    found = []  # (resolved_ts, truncated, input index, row)
    for pos, ep in enumerate(episodes.tolist()):
        key, start, level, direction, start_mid = ep
        start_units = _to_units(start_mid)
        end = start + horizon
        excursions = []
        outcome = None
        resolved = None
        for t, x in zip(ts_list, mid_list, strict=True):
            if t <= start:
                continue
            if t > end:
                outcome, resolved = 2, end
                break
            if not math.isnan(x) and not math.isinf(x):
                units = _to_units(x)
                excursions.append(direction * (units - start_units) / tick)
                through = direction * (units - level)
                back = direction * (level - units)
                if through >= params.break_ticks * tick:
                    outcome, resolved = 0, t
                    break
                if back >= params.reject_ticks * tick:
                    outcome, resolved = 1, t
                    break
            if t == end:
                outcome, resolved = 2, end
                break
        truncated = outcome is None
        if truncated:
            outcome = 2
            resolved = start if last_ts is None else max(start, last_ts)
        mfe = max(excursions) if excursions else 0.0
        mae = max(0.0 - e for e in excursions) if excursions else 0.0
        row = (key, start, level, direction, outcome, resolved, resolved - start, mfe, mae,
               truncated)
        found.append((resolved, truncated, pos, row))
    found.sort(key=lambda r: (r[1], r[0], r[2]))
    return np.array([r[3] for r in found], dtype=LABEL_DTYPE)
