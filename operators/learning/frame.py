"""Setup vectors as the model's input: one (n, 144) float64 array, no column names.

The registered signature is a single tensor ``float64 (-1, 144)``, so every backend validates one
array instead of 144 named columns (``mlflow models serve`` casts and checks a named frame column by
column, which made one request about ten times slower than the tensor). On the wire the
vector travels as the one cell of the column ``FEATURE_COLUMN`` (``connectors/scoring/wire.py``).

float64 because float32 vectors upcast exactly and JSON numbers parse as float64: in-process,
``mlflow models serve`` and azmlinfsrv all feed the model identical values. Pipelines are fitted on
this array too, so they carry no feature names; which element is which is ``VECTOR_NAMES``, logged
with every registered model (``connectors/mlflow/registry.py``).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from operators.vectors.layout import VECTOR_SIZE

FEATURE_COLUMN: Final = "feature_vector"
"""The single input column of the wire formats; each cell holds one whole 144-value vector."""


def vectors_matrix(vectors: np.ndarray) -> np.ndarray:
    """An (n, 144) array (or a list of 144-vectors, or one vector) → a C-contiguous (n, 144) float64 array."""
    values = np.ascontiguousarray(vectors, dtype=np.float64)
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[1] != VECTOR_SIZE:
        msg = f"setup vectors must have {VECTOR_SIZE} values each, got shape {values.shape}"
        raise ValueError(msg)
    return values
