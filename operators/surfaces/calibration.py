"""Per-session normalisation spans of the physics bands (``gold.physics_norm_calibration``).

A session's bands are normalised with the calibration of the latest *earlier* session
(``latest_calibration``), never its own: no look-ahead. Without any earlier one of the current
``SURFACE_REGISTRY_VERSION``, ``DEFAULT_CALIBRATION`` (built from the registry's fixed
``default_lo``/``default_hi``) is used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from operators.surfaces.registry import BANDS, MIN_SPAN, N_BANDS, RAW_NAMES, SURFACE_REGISTRY_VERSION


@dataclass(frozen=True, eq=False)
class BandCalibration:
    """``lo``/``hi`` float64[16] in ``registry.BANDS`` order; ``hi > lo`` everywhere, all finite.

    ``session_date`` is the session whose full day of raw bands produced it (``date.min`` for the
    default). The arrays are private read-only copies.
    """

    session_date: dt.date
    lo: np.ndarray
    hi: np.ndarray
    registry_version: str = SURFACE_REGISTRY_VERSION

    def __post_init__(self) -> None:
        lo = np.array(self.lo, dtype=np.float64).reshape(-1)
        hi = np.array(self.hi, dtype=np.float64).reshape(-1)
        if lo.shape != (N_BANDS,) or hi.shape != (N_BANDS,):
            msg = f"calibration lo/hi must have {N_BANDS} values (registry.BANDS order), got {lo.size} and {hi.size}"
            raise ValueError(msg)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
            msg = "calibration lo/hi must be finite with hi > lo for every band; build it with calibrate()"
            raise ValueError(msg)
        lo.flags.writeable = False
        hi.flags.writeable = False
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def as_dict(self) -> dict[str, tuple[float, float]]:
        """``{raw band name: (lo, hi)}`` for tables and dashboards."""
        return {name: (float(a), float(b)) for name, a, b in zip(RAW_NAMES, self.lo, self.hi, strict=True)}


DEFAULT_CALIBRATION = BandCalibration(
    session_date=dt.date.min,
    lo=np.array([s.default_lo for s in BANDS]),
    hi=np.array([s.default_hi for s in BANDS]),
)


def raw_matrix(bands: np.ndarray) -> np.ndarray:
    """float64[n, 16] of the raw band columns, from ``BAND_DTYPE`` rows or an already 2-D array."""
    if bands.dtype.names is not None:
        return np.stack([np.asarray(bands[name], np.float64) for name in RAW_NAMES], axis=1).reshape(-1, N_BANDS)
    out = np.asarray(bands, np.float64)
    if out.ndim != 2 or out.shape[1] != N_BANDS:
        msg = f"raw bands must be BAND_DTYPE rows or a (n, {N_BANDS}) array, got shape {out.shape}"
        raise ValueError(msg)
    return out


def calibrate(raw_bands_of_full_day: np.ndarray, session_date: dt.date = dt.date.min) -> BandCalibration:
    """Quantiles ``q_lo``/``q_hi`` (``registry.BANDS``) of every raw band over one full session.

    NaN rows (no book) are ignored (``np.nanquantile``, linear interpolation). A column with no
    finite value falls back to its registry default; a flat one (``hi - lo < MIN_SPAN``) gets
    ``hi = lo + MIN_SPAN``.
    """
    raw = raw_matrix(raw_bands_of_full_day)
    lo = np.empty(N_BANDS)
    hi = np.empty(N_BANDS)
    for c, spec in enumerate(BANDS):
        col = raw[:, c]
        col = col[np.isfinite(col)]
        if col.size == 0:
            lo[c], hi[c] = spec.default_lo, spec.default_hi
            continue
        lo[c], hi[c] = np.quantile(col, [spec.q_lo, spec.q_hi])
        if hi[c] - lo[c] < MIN_SPAN:
            hi[c] = lo[c] + MIN_SPAN
    return BandCalibration(session_date=session_date, lo=lo, hi=hi)


def latest_calibration(calibrations: Iterable[BandCalibration], session_date: dt.date) -> BandCalibration:
    """The calibration of the latest session strictly before ``session_date`` with the current
    registry version; ``DEFAULT_CALIBRATION`` if there is none."""
    best: BandCalibration | None = None
    for cal in calibrations:
        if cal.registry_version != SURFACE_REGISTRY_VERSION or cal.session_date >= session_date:
            continue
        if best is None or cal.session_date > best.session_date:
            best = cal
    return DEFAULT_CALIBRATION if best is None else best
