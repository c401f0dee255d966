"""Log one evaluation (metrics + calibration and confusion figures) into the active MLflow run."""

from __future__ import annotations

import numpy as np

from connectors.mlflow.plots import calibration_figure, confusion_figure
from operators.learning.metrics import Evaluation


def log_evaluation(evaluation: Evaluation, y: np.ndarray, proba: np.ndarray, *, prefix: str,
                   figures: bool = True) -> None:
    """Metrics as ``{prefix}log_loss`` …; figures as ``plots/{prefix}calibration.png`` and
    ``plots/{prefix}confusion.png``."""
    import mlflow

    mlflow.log_metrics(evaluation.metrics(prefix))
    if not figures:
        return
    label = prefix.rstrip("_") or "evaluation"
    mlflow.log_figure(calibration_figure(y, proba, f"calibration ({label}, n={evaluation.rows})"),
                      f"plots/{prefix}calibration.png")
    mlflow.log_figure(confusion_figure(evaluation, f"confusion ({label})"), f"plots/{prefix}confusion.png")
