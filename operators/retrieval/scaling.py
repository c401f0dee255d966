"""Group-weighted z-scoring of setup vectors, with statistics from training rows only.

Every element is z-scored with its own mean and standard deviation (elements of one group still
have different units: lots, ticks, ratios). Then every element of group ``g`` is multiplied by
``1 / sqrt(n_g)``, where ``n_g`` is the number of *active* elements of that group (non-zero
spread in the training rows). Two unrelated z-scored vectors differ by about 2 per element in
squared distance, so without the weight a group's share of the squared L2 distance grows with its
size (24 flow elements would outweigh 12 options elements two to one). With it, every active
group contributes about 2 however many elements it has: the distance is the sum over groups of
the *mean* squared difference within the group. Guards:

- an element whose training spread is zero (or below 1e-9 of its magnitude), or that has fewer
  than two finite training values, is inactive: its scale is 0, so it never affects a distance
  (the reserved options block, the level one-hot inside one partition);
- NaN and ±inf in the training rows are left out of the statistics; in the vectors being scaled
  they are replaced by the element's mean, i.e. they scale to 0 ("typical"), never to NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.retrieval.groups import VECTOR_GROUPS, group_codes

_MIN_RELATIVE_STD = 1e-9


@dataclass(frozen=True, slots=True, eq=False)
class VectorScaling:
    """Per-element centre and multiplier: ``scaled = (x - mean) * scale`` (float32 out)."""

    mean: np.ndarray
    """float64[d]: training mean of each element (0 when it had no finite value)."""
    std: np.ndarray
    """float64[d]: training standard deviation (population, ddof=0) of each element."""
    scale: np.ndarray
    """float64[d]: group weight / std for active elements, 0 for inactive ones."""
    groups: np.ndarray
    """int16[d]: the group of each element (index into ``group_names``)."""
    group_names: tuple[str, ...]
    group_weights: np.ndarray
    """float64[len(group_names)]: 1/sqrt(active elements of the group), 0 for a group with none."""
    rows: int
    """How many training rows the statistics came from."""

    @property
    def size(self) -> int:
        return int(self.mean.shape[0])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """float32[m, d]: the scaled rows (C-contiguous, as FAISS wants them)."""
        x = np.asarray(vectors, np.float64)
        if x.ndim != 2 or x.shape[1] != self.size:
            msg = f"expected vectors of shape (m, {self.size}), got {x.shape}"
            raise ValueError(msg)
        x = np.where(np.isfinite(x), x, self.mean)
        return np.ascontiguousarray((x - self.mean) * self.scale, dtype=np.float32)


def fit_scaling(vectors: np.ndarray, *, groups: np.ndarray | None = None,
                group_names: tuple[str, ...] = VECTOR_GROUPS) -> VectorScaling:
    """Statistics from exactly the rows passed (pass the training rows, never the test rows).

    ``groups`` gives each column's group (default: the setup-vector layout's groups, which needs
    the 144-column layout); tests pass their own for tiny vectors.
    """
    x = np.asarray(vectors, np.float64)
    codes = group_codes() if groups is None else np.asarray(groups, np.int16)
    if x.ndim != 2 or x.shape[1] != codes.shape[0]:
        msg = f"expected training vectors of shape (n, {codes.shape[0]}), got {x.shape}"
        raise ValueError(msg)
    if codes.size and (codes.min() < 0 or codes.max() >= len(group_names)):
        raise ValueError("group codes must index group_names")
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    total = np.where(finite, x, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.zeros(x.shape[1]), where=count > 0)
    sq = np.where(finite, x - mean, 0.0) ** 2
    std = np.sqrt(np.divide(sq.sum(axis=0), count, out=np.zeros(x.shape[1]), where=count > 0))
    active = (count >= 2) & (std > _MIN_RELATIVE_STD * np.maximum(1.0, np.abs(mean)))
    per_group = np.bincount(codes[active], minlength=len(group_names)).astype(np.float64)
    weights = np.divide(1.0, np.sqrt(per_group), out=np.zeros(len(group_names)), where=per_group > 0)
    scale = np.where(active, weights[codes] / np.where(active, std, 1.0), 0.0)
    mean, std, scale, codes, weights = (_frozen(a) for a in (mean, std, scale, codes, weights))
    return VectorScaling(mean, std, scale, codes, tuple(group_names), weights, int(x.shape[0]))


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy."""
    out = a.copy()
    out.setflags(write=False)
    return out
