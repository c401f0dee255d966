"""Which feature group each element of a setup vector belongs to (layout: ``operators.vectors.layout``).

Groups follow the layout's blocks, with the 96 bar features split by their registry group:
``geometry`` (20), ``ladder``, ``flow``, ``shape``, ``wall``, ``vacuum`` (each registry feature
over its four lookback windows), ``oriented`` (16) and ``options`` (12). Retrieval weights the
groups equally (see ``operators.retrieval.scaling``), so this split decides what "similar" means.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from operators.features.registry import GROUPS as BAR_GROUPS
from operators.vectors.layout import BAR_FEATURES, VECTOR_NAMES

VECTOR_GROUPS: Final = ("geometry", *BAR_GROUPS, "oriented", "options")


def _group_of(name: str) -> str:
    if name.startswith("geo_"):
        return "geometry"
    if name.startswith("oriented_"):
        return "oriented"
    if name.startswith("options_"):
        return "options"
    feature = name.rsplit("_", 1)[0]          # "<registry feature>_<window>s"
    if feature not in BAR_FEATURES:
        msg = f"vector element {name!r} belongs to no known feature group"
        raise ValueError(msg)
    group = feature.split("_", 1)[0]
    if group not in BAR_GROUPS:
        msg = f"vector element {name!r} has unknown registry group {group!r}"
        raise ValueError(msg)
    return group


def group_codes(names: tuple[str, ...] = VECTOR_NAMES) -> np.ndarray:
    """int16[len(names)]: the index into ``VECTOR_GROUPS`` of every vector element."""
    return np.array([VECTOR_GROUPS.index(_group_of(n)) for n in names], np.int16)
