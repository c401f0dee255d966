"""Forecast scores on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.learning.classes import CLASSES, decode, encode
from operators.learning.metrics import calibration_curve, evaluate, majority_baseline


def test_scores_of_a_small_forecast() -> None:
    y = np.array([0, 1, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.2, 0.5, 0.3]])
    ev = evaluate(y, p)

    assert ev.log_loss == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.2) + math.log(0.5)) / 4)
    assert ev.accuracy == 0.75  # row 2 predicted BREAK
    assert ev.confusion.tolist() == [[1, 0, 0], [0, 2, 0], [1, 0, 0]]
    assert ev.recall == (1.0, 1.0, 0.0) and ev.precision == (0.5, 1.0, 0.0)
    assert ev.balanced_accuracy == pytest.approx(2 / 3)
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.2**2 + 0.1**2) + (0.5**2 + 0.3**2 + 0.8**2)
             + (0.2**2 + 0.5**2 + 0.3**2)) / 4
    assert ev.brier == pytest.approx(brier)
    assert ev.metrics("test_")["test_recall_CHOP"] == 0.0


def test_majority_baseline_uses_train_shares() -> None:
    base = majority_baseline(np.array([1, 1, 1, 0, 2]), np.array([1, 0, 1, 2]))

    assert base.accuracy == 0.5
    assert base.log_loss == pytest.approx(-(2 * math.log(0.6) + 2 * math.log(0.2)) / 4)


def test_calibration_bins_count_every_row_once_per_class() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, 200)
    for mean_p, observed, count in calibration_curve(y, p):
        assert count.sum() == 200
        assert ((0 <= mean_p) & (mean_p <= 1) & (0 <= observed) & (observed <= 1)).all()


def test_classes_encode_in_contract_order() -> None:
    assert CLASSES == ("BREAK", "REJECT", "CHOP")
    assert encode(["CHOP", "BREAK", "REJECT"]).tolist() == [2, 0, 1]
    assert decode([1, 2]) == ("REJECT", "CHOP")
    with pytest.raises(ValueError, match="unknown outcome 'UP'"):
        encode(["UP"])
