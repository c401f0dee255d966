"""Figures logged with every trial: a reliability (calibration) plot and a confusion matrix.

Drawn with matplotlib's Agg backend (no display needed); the caller logs and closes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from operators.learning.classes import CLASSES
from operators.learning.metrics import Evaluation, calibration_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def calibration_figure(y: np.ndarray, proba: np.ndarray, title: str) -> Figure:
    """One-vs-rest reliability curve per class: mean forecast vs observed frequency per bin."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 5.0), dpi=80)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
    for name, (mean_p, observed, count) in zip(CLASSES, calibration_curve(y, proba), strict=True):
        ax.plot(mean_p, observed, marker="o", label=f"{name} (n={int(count.sum())})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast probability", ylabel="observed frequency", title=title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def confusion_figure(evaluation: Evaluation, title: str) -> Figure:
    """Counts of true (rows) vs predicted (columns) class."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.0), dpi=80)
    ax = fig.add_subplot()
    matrix = evaluation.confusion
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(CLASSES))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=CLASSES, yticklabels=CLASSES, xlabel="predicted", ylabel="true",
           title=title)
    top = matrix.max() or 1
    for i in ticks:
        for j in ticks:
            ax.text(float(j), float(i), str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > top / 2 else "black")
    return fig
