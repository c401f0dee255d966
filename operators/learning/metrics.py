"""Scores of 3-class probability forecasts (numpy only), and the majority-class baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.learning.classes import CLASSES, N_CLASSES

EPS = 1e-15
CALIBRATION_BINS = 10


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """How well ``proba`` forecast ``y`` (codes in ``CLASSES`` order)."""

    rows: int
    log_loss: float
    accuracy: float
    balanced_accuracy: float
    brier: float
    """Multi-class Brier score: mean over rows of the squared distance to the one-hot outcome (0..2)."""
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    confusion: np.ndarray
    """int64[3, 3]: rows = true class, columns = predicted class."""

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat metric names for MLflow (``{prefix}log_loss``, ``{prefix}recall_BREAK`` …)."""
        out = {f"{prefix}log_loss": self.log_loss, f"{prefix}accuracy": self.accuracy,
               f"{prefix}balanced_accuracy": self.balanced_accuracy, f"{prefix}brier": self.brier}
        for name, p, r in zip(CLASSES, self.precision, self.recall, strict=True):
            out[f"{prefix}precision_{name}"] = p
            out[f"{prefix}recall_{name}"] = r
        return out


def evaluate(y: np.ndarray, proba: np.ndarray) -> Evaluation:
    """All scores of one forecast. Precision/recall of a class never predicted/present is 0."""
    y = np.asarray(y, np.int64)
    p = np.asarray(proba, np.float64)
    if p.shape != (y.shape[0], N_CLASSES):
        msg = f"probabilities must have shape ({y.shape[0]}, {N_CLASSES}), got {p.shape}"
        raise ValueError(msg)
    onehot = np.eye(N_CLASSES)[y]
    pred = p.argmax(axis=1)
    confusion = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    np.add.at(confusion, (y, pred), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    diag = np.diag(confusion).astype(np.float64)
    recall = np.divide(diag, support, out=np.zeros(N_CLASSES), where=support > 0)
    precision = np.divide(diag, predicted, out=np.zeros(N_CLASSES), where=predicted > 0)
    present = support > 0
    return Evaluation(
        rows=int(y.shape[0]),
        log_loss=float(-np.mean(np.log(np.clip(p[np.arange(y.shape[0]), y], EPS, 1.0)))),
        accuracy=float(np.mean(pred == y)),
        balanced_accuracy=float(recall[present].mean()) if present.any() else 0.0,
        brier=float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        confusion=confusion,
    )


def class_prior(y_train: np.ndarray) -> np.ndarray:
    """float64[3]: class shares of the training labels (what a model that ignores its input predicts)."""
    counts = np.bincount(np.asarray(y_train, np.int64), minlength=N_CLASSES).astype(np.float64)
    return counts / counts.sum()


def majority_baseline(y_train: np.ndarray, y_eval: np.ndarray) -> Evaluation:
    """The baseline a model must beat: always the train majority class, with the train class shares
    as its probabilities (ties in the argmax go to the majority class)."""
    prior = class_prior(y_train)
    proba = np.tile(prior, (len(y_eval), 1))
    return evaluate(y_eval, proba)


def calibration_curve(
    y: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class (one-vs-rest): mean forecast, observed frequency and row count of each non-empty bin."""
    y = np.asarray(y, np.int64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    curves = []
    for c in range(N_CLASSES):
        p = np.asarray(proba)[:, c]
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        count = np.bincount(which, minlength=bins)
        mean_p = np.bincount(which, weights=p, minlength=bins)
        hits = np.bincount(which, weights=(y == c).astype(np.float64), minlength=bins)
        keep = count > 0
        curves.append((mean_p[keep] / count[keep], hits[keep] / count[keep], count[keep]))
    return curves
