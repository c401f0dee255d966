"""Per-instrument L3 (market-by-order) book: numba kernels, the ``L3Book`` wrapper, 1-second rows."""

from operators.book.dtypes import SECOND_DTYPE, TOP_DTYPE, second_dtype, top_dtype
from operators.book.kernels import ANOMALY_NAMES
from operators.book.logic import MAX_LEVELS, BookState, L3Book, replay_top

__all__ = [
    "ANOMALY_NAMES",
    "MAX_LEVELS",
    "SECOND_DTYPE",
    "TOP_DTYPE",
    "BookState",
    "L3Book",
    "replay_top",
    "second_dtype",
    "top_dtype",
]
