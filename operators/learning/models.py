"""The two model families the search chooses between, and the Hyperopt space over them.

A model is always ``Pipeline([("scale", StandardScaler()), ("model", classifier)])``: the scaler is
part of the fitted object, so fitting the pipeline on the train rows is what makes the
normalisation statistics come from train only, and every backend that loads the registered
pipeline applies exactly those statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperopt import hp
from hyperopt.pyll import scope
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FAMILIES = ("logreg", "hgb")
HGB_BINS = 63
"""Histogram bins of the boosted trees: a few hundred to a few thousand episodes do not support 255."""

SEARCH_SPACE: Any = hp.choice("family", [
    {
        "family": "logreg",
        "C": hp.loguniform("logreg_C", np.log(1e-3), np.log(10.0)),
    },
    {
        "family": "hgb",
        "learning_rate": hp.loguniform("hgb_learning_rate", np.log(0.02), np.log(0.3)),
        "max_depth": scope.int(hp.quniform("hgb_max_depth", 2, 5, 1)),
        "max_iter": scope.int(hp.quniform("hgb_max_iter", 20, 120, 10)),
        "min_samples_leaf": scope.int(hp.quniform("hgb_min_samples_leaf", 10, 60, 5)),
        "l2_regularization": hp.loguniform("hgb_l2_regularization", np.log(1e-3), np.log(10.0)),
    },
])
"""Hyperopt space: a ``hp.choice`` of multinomial logistic regression and gradient-boosted trees."""


def make_pipeline(params: dict[str, Any], seed: int) -> Pipeline:
    """The unfitted pipeline for one point of ``SEARCH_SPACE`` (``params`` as Hyperopt passes it)."""
    family = params["family"]
    if family == "logreg":
        model = LogisticRegression(C=float(params["C"]), max_iter=2000, random_state=seed)
    elif family == "hgb":
        model = HistGradientBoostingClassifier(
            learning_rate=float(params["learning_rate"]), max_depth=int(params["max_depth"]),
            max_iter=int(params["max_iter"]), min_samples_leaf=int(params["min_samples_leaf"]),
            l2_regularization=float(params["l2_regularization"]), max_bins=HGB_BINS, early_stopping=False,
            random_state=seed)
    else:
        msg = f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}"
        raise ValueError(msg)
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def flat_params(params: dict[str, Any]) -> dict[str, str | int | float]:
    """The chosen point as flat MLflow params: ``family`` plus that family's values."""
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in sorted(params.items())}


def predict_proba3(pipeline: Pipeline, frame: Any) -> np.ndarray:
    """(n, 3) probabilities in ``CLASSES`` order even when a walk-forward fold lacked a class
    (sklearn then returns only the classes it saw; the missing ones get probability 0)."""
    proba = np.asarray(pipeline.predict_proba(frame), np.float64)
    classes = np.asarray(pipeline.classes_, np.int64)
    if classes.shape[0] == 3 and (classes == np.arange(3)).all():
        return proba
    out = np.zeros((proba.shape[0], 3))
    out[:, classes] = proba
    return out
