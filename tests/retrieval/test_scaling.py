"""Group-weighted z-scoring: exact values on hand-built vectors, guards, and train-only statistics."""

from __future__ import annotations

import numpy as np
import pytest

from operators.retrieval import VECTOR_GROUPS, fit_scaling, group_codes
from operators.vectors import VECTOR_NAMES, VECTOR_SIZE

GROUPS_3 = np.array([0, 0, 1], np.int16)  # two elements in group "a", one in group "b"
NAMES = ("a", "b")


def test_layout_groups_cover_every_element_in_order() -> None:
    codes = group_codes()
    assert codes.shape == (VECTOR_SIZE,)
    sizes = {g: int((codes == i).sum()) for i, g in enumerate(VECTOR_GROUPS)}
    assert sizes == {"geometry": 20, "ladder": 20, "flow": 24, "shape": 16, "wall": 16, "vacuum": 20,
                     "oriented": 16, "options": 12}
    assert VECTOR_GROUPS[codes[VECTOR_NAMES.index("flow_ofi_30s")]] == "flow"
    assert VECTOR_GROUPS[codes[VECTOR_NAMES.index("oriented_depth_ahead_300s")]] == "oriented"


def test_fit_gives_per_element_zscore_times_group_weight() -> None:
    x = np.array([[0.0, 10.0, 1.0], [2.0, 30.0, 3.0]])  # means 1, 20, 2; stds 1, 10, 1
    s = fit_scaling(x, groups=GROUPS_3, group_names=NAMES)
    assert s.mean.tolist() == [1.0, 20.0, 2.0]
    assert s.std.tolist() == [1.0, 10.0, 1.0]
    assert s.group_weights.tolist() == pytest.approx([1 / np.sqrt(2), 1.0])
    assert s.rows == 2
    out = s.apply(np.array([[3.0, 40.0, 0.0]]))
    assert out.dtype == np.float32
    assert out[0].tolist() == pytest.approx([2 / np.sqrt(2), 2 / np.sqrt(2), -2.0])


def test_a_big_group_does_not_outweigh_a_small_one() -> None:
    rng = np.random.default_rng(0)
    groups = np.array([0] * 16 + [1], np.int16)
    s = fit_scaling(rng.normal(size=(400, 17)), groups=groups, group_names=NAMES)
    centre = s.apply(s.mean[None, :])
    big = s.mean + np.where(groups == 0, s.std, 0.0)     # one standard deviation in all 16 elements of a
    small = s.mean + np.where(groups == 1, s.std, 0.0)   # one standard deviation in b's single element
    d_big = float(np.sum((s.apply(big[None, :]) - centre) ** 2))
    d_small = float(np.sum((s.apply(small[None, :]) - centre) ** 2))
    assert d_big == pytest.approx(1.0, rel=1e-5)
    assert d_small == pytest.approx(1.0, rel=1e-5)


def test_constant_and_all_nan_elements_are_inactive_and_nan_inputs_scale_to_zero() -> None:
    x = np.array([[5.0, np.nan, 1.0], [5.0, np.nan, 3.0], [5.0, np.nan, np.nan]])
    s = fit_scaling(x, groups=np.array([0, 0, 1], np.int16), group_names=NAMES)
    assert s.scale[:2].tolist() == [0.0, 0.0]
    assert s.group_weights.tolist() == [0.0, 1.0]           # group a has no active element
    assert s.mean[2] == 2.0 and s.std[2] == 1.0              # the NaN row is left out
    out = s.apply(np.array([[123.0, 7.0, np.nan], [5.0, np.inf, 4.0]]))
    assert np.isfinite(out).all()
    assert out.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]


def test_statistics_come_only_from_the_rows_passed() -> None:
    train = np.array([[0.0, 0.0], [2.0, 2.0]])
    later = np.array([[100.0, 0.0], [-100.0, 2.0]])
    only_train = fit_scaling(train, groups=np.array([0, 1], np.int16), group_names=NAMES)
    with_later = fit_scaling(np.vstack([train, later]), groups=np.array([0, 1], np.int16), group_names=NAMES)
    assert only_train.std[0] == 1.0
    assert with_later.std[0] > 50.0
    assert only_train.apply(np.array([[3.0, 1.0]]))[0, 0] != with_later.apply(np.array([[3.0, 1.0]]))[0, 0]


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        fit_scaling(np.zeros((3, 5)))
    s = fit_scaling(np.zeros((3, 2)), groups=np.array([0, 1], np.int16), group_names=NAMES)
    with pytest.raises(ValueError, match="shape"):
        s.apply(np.zeros((1, 3)))
