"""Level-approach episodes: a streaming numba kernel and the ``ApproachDetector`` wrapper."""

from operators.approach.dtypes import DOWN, EPISODE_DTYPE, UP, VELOCITY_WINDOW_SECONDS
from operators.approach.logic import ApproachDetector, ApproachParams, ApproachState, episode_id

__all__ = [
    "DOWN",
    "EPISODE_DTYPE",
    "UP",
    "VELOCITY_WINDOW_SECONDS",
    "ApproachDetector",
    "ApproachParams",
    "ApproachState",
    "episode_id",
]
