"""Setup vectors: one fixed-length vector per level-approach episode, from data at or before its start."""

from operators.vectors.layout import (
    LOOKBACK_SPEC,
    VECTOR_NAMES,
    VECTOR_SIZE,
    VECTOR_VERSION,
    feature_hash,
    model_id_for,
)
from operators.vectors.setup import setup_vectors

__all__ = ["LOOKBACK_SPEC", "VECTOR_NAMES", "VECTOR_SIZE", "VECTOR_VERSION", "feature_hash", "model_id_for",
           "setup_vectors"]
