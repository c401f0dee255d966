"""Setup vectors as the model's input frame: 144 named float64 columns.

Every backend (in-process pyfunc, ``mlflow models serve``, azmlinfsrv) receives this frame or its
JSON, so the registered signature declares ``double`` columns: float32 vectors upcast exactly,
and JSON numbers parse as float64, so all backends feed the model identical values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from operators.vectors.layout import VECTOR_NAMES, VECTOR_SIZE


def vectors_frame(vectors: np.ndarray) -> pd.DataFrame:
    """An (n, 144) array (or a list of 144-vectors) → DataFrame with the vector layout's column names."""
    values = np.asarray(vectors, dtype=np.float64)
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[1] != VECTOR_SIZE:
        msg = f"setup vectors must have {VECTOR_SIZE} values each, got shape {values.shape}"
        raise ValueError(msg)
    return pd.DataFrame(values, columns=list(VECTOR_NAMES))
