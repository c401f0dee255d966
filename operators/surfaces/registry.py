"""The one definition of the radar's physics bands: edges, sides, quantiles, defaults, normalisation.

Columns of a surface row are price offsets from spot in ticks, ``-half_width..+half_width``
(column ``j`` is offset ``j - half_width``). Spot is the mid rounded *down* to the tick grid
(see ``operators.surfaces.kernels``), so bid levels always land at offsets <= 0 and ask levels
at offsets >= +1 (with a one-tick spread the best bid is at 0 and the best ask at +1; with a
two-tick spread offset 0 is empty).

A band covers ``min_ticks <= |offset| <= max_ticks``. Its **bid/below** side takes the offsets
<= 0 of that range, its **ask/above** side the offsets >= +1. So offset 0 belongs to the bid
side: AT-bid = offsets {-1, 0} (two columns) and AT-ask = {+1} (one column); every other band
has the same number of columns on both sides.

Every raw band value (sum of wall depth, or of vacuum depletion, over the band's columns) is
normalised with ``normalize``: ``clip((raw - lo) / (hi - lo), 0, 1)``, where ``lo``/``hi`` come
from a ``BandCalibration`` (quantiles ``q_lo``/``q_hi`` of that raw feature over a full day) or,
without one, from ``default_lo``/``default_hi`` below. Change any of this => bump
``SURFACE_REGISTRY_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.records import NEAR_DEPTH

SURFACE_REGISTRY_VERSION = "surfaces.v2"
"""v2: surfaces from the full book near spot (v1 saw only the 10 visible levels per side, so the
FAR bands were often empty); v1 calibrations are not used for v2 surfaces."""

HALF_WIDTH = 20
"""Default surface half-width in ticks: 41 columns, offsets -20..+20."""
assert NEAR_DEPTH >= HALF_WIDTH + 1, "the book rows must list every level a side can have within reach"

Q_LO = 0.05
Q_HI = 0.95
"""Robust quantiles of a raw band feature over one full session, used as the normalisation span."""

MIN_SPAN = 1.0
"""Smallest ``hi - lo`` a calibration may have (contracts); a flat feature gets ``hi = lo + MIN_SPAN``."""

DEFAULT_WALL_HI_PER_TICK = 400.0
DEFAULT_VACUUM_HI_PER_TICK = 100.0
"""Uncalibrated defaults (contracts per price column): ``lo = 0``, ``hi = per_tick * columns``."""

KINDS = ("wall", "vacuum")
SIDES = ("bid", "ask")
BAND_TICKS = (
    ("at", 0, 1),
    ("near", 2, 4),
    ("mid", 5, 10),
    ("far", 11, 20),
)
"""``(band, min |offset|, max |offset|)`` in ticks, inclusive. THE band edges."""


@dataclass(frozen=True, slots=True)
class BandSpec:
    """One raw band feature: ``kind`` (wall/vacuum) summed over ``band`` on ``side``."""

    kind: str
    band: str
    side: str
    min_ticks: int
    max_ticks: int
    q_lo: float
    q_hi: float
    default_lo: float
    default_hi: float

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.band}_{self.side}"

    @property
    def norm_name(self) -> str:
        return f"{self.name}_norm"

    @property
    def offsets(self) -> tuple[int, ...]:
        """Signed offsets (ticks from spot) the band sums over, ascending."""
        return band_offsets(self.min_ticks, self.max_ticks, self.side)


def band_offsets(min_ticks: int, max_ticks: int, side: str) -> tuple[int, ...]:
    """Bid/below side: offsets in ``[-max, -min]`` that are <= 0; ask/above: ``[min, max]`` that are >= 1."""
    if side == "bid":
        return tuple(o for o in range(-max_ticks, -min_ticks + 1) if o <= 0)
    return tuple(o for o in range(min_ticks, max_ticks + 1) if o >= 1)


def _spec(kind: str, band: str, side: str, lo_t: int, hi_t: int) -> BandSpec:
    per_tick = DEFAULT_WALL_HI_PER_TICK if kind == "wall" else DEFAULT_VACUUM_HI_PER_TICK
    cols = len(band_offsets(lo_t, hi_t, side))
    return BandSpec(kind, band, side, lo_t, hi_t, Q_LO, Q_HI, 0.0, per_tick * cols)


BANDS: tuple[BandSpec, ...] = tuple(
    _spec(kind, band, side, lo_t, hi_t) for kind in KINDS for band, lo_t, hi_t in BAND_TICKS for side in SIDES
)
"""The 16 raw features in their fixed order (kind, then band, then side). Calibration arrays use it."""

RAW_NAMES: tuple[str, ...] = tuple(s.name for s in BANDS)
NORM_NAMES: tuple[str, ...] = tuple(s.norm_name for s in BANDS)
N_BANDS = len(BANDS)
MAX_BAND_TICKS = max(t[2] for t in BAND_TICKS)

BAND_DTYPE = np.dtype(
    [("ts", "<i8")] + [(s.name, "<f4") for s in BANDS] + [(s.norm_name, "<f4") for s in BANDS]
)
"""One ``silver.physics_bands_1s`` row: ``ts`` then the 16 raw values, then the 16 normalised ones."""


def normalize(raw: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``clip((raw - lo) / (hi - lo), 0, 1)`` in float64, broadcast over the last axis; NaN stays NaN."""
    return np.clip((np.asarray(raw, np.float64) - lo) / (hi - lo), 0.0, 1.0)
