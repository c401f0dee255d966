"""The radar surfaces of one (contract, session): one-shot functions and the streaming ``SurfaceBuilder``.

Input rows are ``silver.book_snapshot_1s`` rows (``operators.book.dtypes.second_dtype``); only
``ts_recv``, ``book_valid``, ``mid_px`` and the levels are read, by name. The levels are the
full book's near spot (``near_bid_px``, ``near_bid_sz``, ``near_ask_px``, ``near_ask_sz``: every
non-empty level within the surfaces' reach) when the rows have them, as the book kernel writes
them; rows with only the visible ``bid_px``/``bid_sz``/``ask_px``/``ask_sz`` levels give
surfaces of what those levels show. Column ``j`` of a surface is offset ``j - half_width`` ticks from spot; the exact
rules (spot, depth, change, depletion) are in ``operators.surfaces.kernels``, the bands in
``operators.surfaces.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from operators.surfaces import kernels as k
from operators.surfaces.calibration import DEFAULT_CALIBRATION, BandCalibration
from operators.surfaces.registry import BAND_DTYPE, BANDS, HALF_WIDTH, MAX_BAND_TICKS, normalize


def wall_dtype(half_width: int = HALF_WIDTH) -> np.dtype:
    """One ``silver.wall_surface_1s`` row: resting depth and its change per offset from spot."""
    w = 2 * half_width + 1
    return np.dtype([("ts", "<i8"), ("spot_px", "<i8"), ("depth", "<f4", (w,)), ("change", "<f4", (w,))])


def vacuum_dtype(half_width: int = HALF_WIDTH) -> np.dtype:
    """One ``silver.vacuum_surface_1s`` row: liquidity depleted since the previous second per offset."""
    w = 2 * half_width + 1
    return np.dtype([("ts", "<i8"), ("spot_px", "<i8"), ("depletion", "<f4", (w,))])


WALL_DTYPE = wall_dtype()
VACUUM_DTYPE = vacuum_dtype()

_Levels = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""The previous second's levels the kernel carries: bid prices, bid sizes, ask prices, ask sizes."""


class WallSurface(NamedTuple):
    ts: np.ndarray  # i8[n], the rows' ts_recv
    spot_px: np.ndarray  # i8[n], spot in 1e-9 units; kernels.NO_SPOT where the row has no surface
    depth: np.ndarray  # f4[n, 2*half_width+1]
    change: np.ndarray  # f4[n, 2*half_width+1]


class VacuumSurface(NamedTuple):
    ts: np.ndarray  # i8[n]
    spot_px: np.ndarray  # i8[n]
    depletion: np.ndarray  # f4[n, 2*half_width+1]


@dataclass(frozen=True, slots=True, eq=False)
class SurfaceState:
    """Compact, immutable resume state of a ``SurfaceBuilder``: the last row, by absolute price."""

    tick: int
    half_width: int
    prev_ok: bool
    prev_depth: np.ndarray  # f4[2*half_width+1], by offset from the last row's spot
    prev_bid_px: np.ndarray  # i8[depth]
    prev_bid_sz: np.ndarray  # u4[depth]
    prev_ask_px: np.ndarray  # i8[depth]
    prev_ask_sz: np.ndarray  # u4[depth]


def _check(tick: int, half_width: int) -> None:
    if tick <= 0:
        msg = f"tick must be a positive price increment in 1e-9 units, got {tick}"
        raise ValueError(msg)
    if half_width < 0:
        msg = f"half_width must be >= 0 ticks, got {half_width}"
        raise ValueError(msg)


class SurfaceBuilder:
    """Streaming wall/vacuum surfaces and physics bands of one (contract, session).

    ``feed(rows)`` returns ``(wall rows, vacuum rows, band rows)`` (``wall_dtype``,
    ``vacuum_dtype``, ``BAND_DTYPE``), one of each per input row; feeding a session in pieces
    gives exactly the rows of one call. ``snapshot()`` → ``SurfaceState``; rebuild with
    ``SurfaceBuilder(tick, calibration, resume=state)``. The calibration is not part of the
    state: the caller picks it per session (``latest_calibration``).
    """

    def __init__(
        self,
        tick: int,
        calibration: BandCalibration = DEFAULT_CALIBRATION,
        *,
        half_width: int = HALF_WIDTH,
        resume: SurfaceState | None = None,
    ) -> None:
        if resume is not None:
            if (resume.tick, resume.half_width) != (tick, half_width):
                msg = (
                    f"resume state is for tick={resume.tick}, half_width={resume.half_width}; "
                    f"got tick={tick}, half_width={half_width}"
                )
                raise ValueError(msg)
        _check(tick, half_width)
        self._tick = int(tick)
        self._hw = int(half_width)
        self._cal = calibration
        w = 2 * half_width + 1
        self._prev_ok = np.zeros(1, np.int64)
        self._prev_depth = np.zeros(w, np.float32)
        self._levels: _Levels | None = None
        if resume is not None:
            self._prev_ok[0] = int(resume.prev_ok)
            self._prev_depth[:] = resume.prev_depth
        if resume is not None and resume.prev_bid_px.shape[0] > 0:
            self._levels = (
                resume.prev_bid_px.astype(np.int64, copy=True),
                resume.prev_bid_sz.astype(np.uint32, copy=True),
                resume.prev_ask_px.astype(np.int64, copy=True),
                resume.prev_ask_sz.astype(np.uint32, copy=True),
            )

    def _state_levels(self, depth: int) -> _Levels:
        if self._levels is None:
            self._levels = (
                np.full(depth, k.EMPTY_PX, np.int64),
                np.zeros(depth, np.uint32),
                np.full(depth, k.EMPTY_PX, np.int64),
                np.zeros(depth, np.uint32),
            )
        elif self._levels[0].shape[0] != depth:  # resumed from a state of another depth: re-laid out
            self._levels = _relaid(self._levels, depth)
        return self._levels

    def surfaces(self, rows: np.ndarray) -> tuple[WallSurface, VacuumSurface]:
        """Wall and vacuum surfaces of the next rows (advances the state)."""
        n = rows.shape[0]
        near = "near_" if rows.dtype.names is not None and "near_bid_px" in rows.dtype.names else ""
        bid_px = np.ascontiguousarray(rows[f"{near}bid_px"], dtype=np.int64)
        bid_sz = np.ascontiguousarray(rows[f"{near}bid_sz"], dtype=np.uint32)
        ask_px = np.ascontiguousarray(rows[f"{near}ask_px"], dtype=np.int64)
        ask_sz = np.ascontiguousarray(rows[f"{near}ask_sz"], dtype=np.uint32)
        levels = self._state_levels(bid_px.shape[1])
        w = 2 * self._hw + 1
        spot = np.empty(n, np.int64)
        depth = np.empty((n, w), np.float32)
        change = np.empty((n, w), np.float32)
        vac = np.empty((n, w), np.float32)
        k.surface_rows(
            np.ascontiguousarray(rows["book_valid"], dtype=np.bool_),
            np.ascontiguousarray(rows["mid_px"], dtype=np.float64),
            bid_px,
            bid_sz,
            ask_px,
            ask_sz,
            self._tick,
            self._hw,
            self._prev_ok,
            self._prev_depth,
            *levels,
            spot,
            depth,
            change,
            vac,
        )
        ts = rows["ts_recv"].astype(np.int64)
        return WallSurface(ts, spot, depth, change), VacuumSurface(ts.copy(), spot.copy(), vac)

    def feed(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(wall rows, vacuum rows, band rows)`` of the next rows, one each per input row."""
        wall, vacuum = self.surfaces(rows)
        n = wall.ts.shape[0]
        w_rows = np.empty(n, wall_dtype(self._hw))
        w_rows["ts"], w_rows["spot_px"] = wall.ts, wall.spot_px
        w_rows["depth"], w_rows["change"] = wall.depth, wall.change
        v_rows = np.empty(n, vacuum_dtype(self._hw))
        v_rows["ts"], v_rows["spot_px"], v_rows["depletion"] = vacuum.ts, vacuum.spot_px, vacuum.depletion
        bands = physics_bands(wall.depth, wall.change, vacuum.depletion, self._cal, ts=wall.ts)
        return w_rows, v_rows, bands

    def snapshot(self) -> SurfaceState:
        levels = self._levels
        if levels is None:
            empty = np.zeros(0, np.int64)
            levels = (empty, empty.astype(np.uint32), empty.copy(), empty.astype(np.uint32))
        return SurfaceState(
            tick=self._tick,
            half_width=self._hw,
            prev_ok=bool(self._prev_ok[0]),
            prev_depth=self._prev_depth.copy(),
            prev_bid_px=levels[0].copy(),
            prev_bid_sz=levels[1].copy(),
            prev_ask_px=levels[2].copy(),
            prev_ask_sz=levels[3].copy(),
        )


def _relaid(levels: _Levels, depth: int) -> _Levels:
    """Carried levels cut or padded (empty levels) to ``depth`` per side: a state written before the
    rows listed the full book near spot resumes, missing only one second's deeper depletion."""
    out = []
    for i, arr in enumerate(levels):
        fill = k.EMPTY_PX if i % 2 == 0 else 0
        grown = np.full(depth, fill, arr.dtype)
        m = min(depth, arr.shape[0])
        grown[:m] = arr[:m]
        out.append(grown)
    return out[0], out[1], out[2], out[3]


def wall_surface(rows: np.ndarray, tick: int, half_width: int = HALF_WIDTH) -> WallSurface:
    """Resting depth per offset from spot, and its change from the previous row, of a whole session."""
    return SurfaceBuilder(tick, half_width=half_width).surfaces(rows)[0]


def vacuum_surface(rows: np.ndarray, tick: int, half_width: int = HALF_WIDTH) -> VacuumSurface:
    """Liquidity depleted since the previous row, by absolute price, at this row's offsets."""
    return SurfaceBuilder(tick, half_width=half_width).surfaces(rows)[1]


def _band_columns(half_width: int) -> list[np.ndarray]:
    return [np.asarray(spec.offsets, np.int64) + half_width for spec in BANDS]


def physics_bands(
    depth: np.ndarray,
    change: np.ndarray,
    vacuum: np.ndarray,
    calibration: BandCalibration = DEFAULT_CALIBRATION,
    *,
    ts: np.ndarray | None = None,
) -> np.ndarray:
    """``BAND_DTYPE`` rows: per ``registry.BANDS`` spec the raw sum of ``depth`` (wall) or ``vacuum``
    (depletion) over the band's columns, and its normalisation with ``calibration``.

    A row without a surface (NaN columns) gives NaN raw and normalised values. ``change`` is only
    checked for shape (no band uses it yet). ``ts`` defaults to zeros.
    """
    depth = np.asarray(depth)
    vacuum = np.asarray(vacuum)
    if depth.ndim != 2 or depth.shape != vacuum.shape or np.shape(change) != depth.shape or depth.shape[1] % 2 != 1:
        msg = ("depth, change and vacuum must be equal (n, 2*half_width+1) arrays, "
               f"got {depth.shape}, {np.shape(change)}, {vacuum.shape}")
        raise ValueError(msg)
    hw = depth.shape[1] // 2
    if hw < MAX_BAND_TICKS:
        msg = f"bands need half_width >= {MAX_BAND_TICKS} ticks, got surfaces of half_width {hw}"
        raise ValueError(msg)
    n = depth.shape[0]
    raw = np.empty((n, len(BANDS)), np.float64)
    for c, (spec, cols) in enumerate(zip(BANDS, _band_columns(hw), strict=True)):
        src = depth if spec.kind == "wall" else vacuum
        raw[:, c] = src[:, cols].astype(np.float64).sum(axis=1)
    norm = normalize(raw, calibration.lo, calibration.hi)
    out = np.empty(n, BAND_DTYPE)
    out["ts"] = 0 if ts is None else ts
    for c, spec in enumerate(BANDS):
        out[spec.name] = raw[:, c]
        out[spec.norm_name] = norm[:, c]
    return out
