"""Checks that normalisation statistics came from the training rows only.

A scaler fitted on validation or test rows leaks the future into the features. Training calls
``assert_fitted_on`` after every fit, so a pipeline fitted on the wrong rows never gets registered.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LeakageError(AssertionError):
    """Normalisation statistics do not match the rows the model was supposed to be fitted on."""


def assert_fitted_on(fitted: Any, train_vectors: np.ndarray, *, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """Raise ``LeakageError`` unless the scaling in ``fitted`` was computed from exactly ``train_vectors``.

    ``fitted`` is a pipeline with a ``scale`` step (a fitted ``StandardScaler``: ``mean_``, ``var_``,
    ``n_samples_seen_``) or a retrieval ``VectorScaling`` (``mean``, ``std``, ``rows``).
    """
    x = np.asarray(train_vectors, np.float64)
    if hasattr(fitted, "named_steps"):
        scaler = fitted.named_steps["scale"]
        mean, var, rows = scaler.mean_, scaler.var_, int(np.max(scaler.n_samples_seen_))
        what = "the model's StandardScaler"
    else:
        mean, var, rows = fitted.mean, np.asarray(fitted.std) ** 2, int(fitted.rows)
        what = "the retrieval scaling"
    if rows != x.shape[0]:
        msg = f"{what} saw {rows} rows, the train split has {x.shape[0]}"
        raise LeakageError(msg)
    finite = np.isfinite(x)
    count = np.maximum(finite.sum(axis=0), 1)
    train_mean = np.where(finite, x, 0.0).sum(axis=0) / count
    train_var = (np.where(finite, x - train_mean, 0.0) ** 2).sum(axis=0) / count
    if not (np.allclose(mean, train_mean, rtol=rtol, atol=atol) and np.allclose(var, train_var, rtol=1e-4, atol=1e-6)):
        worst = int(np.argmax(np.abs(np.asarray(mean) - train_mean)))
        msg = (f"{what} was not fitted on the train split: column {worst} has mean {float(mean[worst]):.6g}, "
               f"the train rows {float(train_mean[worst]):.6g}")
        raise LeakageError(msg)
