"""Normalisation statistics must come from the train rows only; the check catches a scaler fitted on more."""

from __future__ import annotations

import numpy as np
import pytest

from operators.learning.frame import vectors_matrix
from operators.learning.leakage import LeakageError, assert_fitted_on
from operators.learning.models import make_pipeline
from operators.retrieval import fit_scaling
from tests.learning.models import tiny_training_set


@pytest.fixture(name="rows", scope="module")
def fixture_rows():
    rows = tiny_training_set(3, rows=120)
    shifted = rows.vectors.copy()
    shifted[80:] += 2.5  # the "later" rows drift: a scaler that saw them has visibly different means
    return type(rows)(shifted, rows.outcomes, rows.episode_ids, rows.session_dates, rows.level_type,
                      rows.direction, rows.time_bucket)


def test_pipeline_fitted_on_train_passes(rows) -> None:
    train = rows.vectors[:80]
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, 0).fit(vectors_matrix(train), rows.outcomes[:80])

    assert_fitted_on(pipeline, train)


def test_pipeline_fitted_on_all_rows_is_caught(rows) -> None:
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, 0).fit(vectors_matrix(rows.vectors), rows.outcomes)

    with pytest.raises(LeakageError, match="saw 120 rows, the train split has 80"):
        assert_fitted_on(pipeline, rows.vectors[:80])


def test_scaler_with_train_row_count_but_test_statistics_is_caught(rows) -> None:
    # same number of rows as train, but 40 of them are test rows: only the statistics give it away
    mixed = np.concatenate([rows.vectors[:40], rows.vectors[80:]])
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, 0).fit(vectors_matrix(mixed), rows.outcomes[:80])

    with pytest.raises(LeakageError, match="was not fitted on the train split"):
        assert_fitted_on(pipeline, rows.vectors[:80])


def test_retrieval_scaling_is_checked_the_same_way(rows) -> None:
    assert_fitted_on(fit_scaling(rows.vectors[:80]), rows.vectors[:80])
    with pytest.raises(LeakageError, match="retrieval scaling saw 120 rows"):
        assert_fitted_on(fit_scaling(rows.vectors), rows.vectors[:80])
