"""Setup vectors: one fixed-length vector per level-approach episode, from data at or before its start."""

from operators.vectors.layout import (
    LOOKBACK_SPEC,
    VECTOR_NAMES,
    VECTOR_SIZE,
    VECTOR_VERSION,
    feature_hash,
    model_id_for,
)
from operators.vectors.setup import (
    LOOKBACK_NS,
    VECTOR_BAR_DTYPE,
    VECTOR_BAR_FIELDS,
    setup_vectors,
    vector_bars,
    vector_history,
)

__all__ = ["LOOKBACK_NS", "LOOKBACK_SPEC", "VECTOR_BAR_DTYPE", "VECTOR_BAR_FIELDS", "VECTOR_NAMES", "VECTOR_SIZE",
           "VECTOR_VERSION", "feature_hash", "model_id_for", "setup_vectors", "vector_bars",
           "vector_history"]
