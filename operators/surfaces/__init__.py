"""The radar heads-up display: wall and vacuum surfaces per tick around spot, and physics bands.

- ``wall_surface`` / ``vacuum_surface``: one-shot surfaces of a (contract, session)'s 1-second
  book rows; ``SurfaceBuilder``: the same, streamed, with ``snapshot()``/``resume``.
- ``physics_bands``: AT/NEAR/MID/FAR sums per side, normalised with a ``BandCalibration``.
- ``registry``: the one definition of band edges, quantiles, defaults and normalisation.
"""

from operators.surfaces.calibration import (
    DEFAULT_CALIBRATION,
    BandCalibration,
    calibrate,
    latest_calibration,
)
from operators.surfaces.kernels import EMPTY_PX, NO_SPOT
from operators.surfaces.logic import (
    VACUUM_DTYPE,
    WALL_DTYPE,
    SurfaceBuilder,
    SurfaceState,
    VacuumSurface,
    WallSurface,
    physics_bands,
    vacuum_dtype,
    vacuum_surface,
    wall_dtype,
    wall_surface,
)
from operators.surfaces.registry import (
    BAND_DTYPE,
    BANDS,
    HALF_WIDTH,
    NORM_NAMES,
    RAW_NAMES,
    SURFACE_REGISTRY_VERSION,
    BandSpec,
    normalize,
)

__all__ = [
    "BANDS",
    "BAND_DTYPE",
    "DEFAULT_CALIBRATION",
    "EMPTY_PX",
    "HALF_WIDTH",
    "NORM_NAMES",
    "NO_SPOT",
    "RAW_NAMES",
    "SURFACE_REGISTRY_VERSION",
    "VACUUM_DTYPE",
    "WALL_DTYPE",
    "BandCalibration",
    "BandSpec",
    "SurfaceBuilder",
    "SurfaceState",
    "VacuumSurface",
    "WallSurface",
    "calibrate",
    "latest_calibration",
    "normalize",
    "physics_bands",
    "vacuum_dtype",
    "vacuum_surface",
    "wall_dtype",
    "wall_surface",
]
