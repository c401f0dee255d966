"""The three outcome classes and their fixed integer codes, shared by training, retrieval and scoring.

The order is the order of ``gold.labels`` outcomes (``operators.labels.OUTCOMES``): a model's
probability column ``i`` always means ``CLASSES[i]``, whichever backend produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np

from operators.labels.dtypes import BREAK, CHOP, OUTCOMES, REJECT

CLASSES: Final = ("BREAK", "REJECT", "CHOP")
N_CLASSES: Final = len(CLASSES)
_CODES: Final = {name: code for code, name in enumerate(CLASSES)}

assert CLASSES == OUTCOMES and (_CODES["BREAK"], _CODES["REJECT"], _CODES["CHOP"]) == (BREAK, REJECT, CHOP)


def encode(outcomes: Iterable[str]) -> np.ndarray:
    """Outcome names → int8 codes 0..2; an unknown name raises ValueError naming it."""
    try:
        return np.fromiter((_CODES[o] for o in outcomes), dtype=np.int8)
    except KeyError as err:
        msg = f"unknown outcome {err.args[0]!r}; expected one of {', '.join(CLASSES)}"
        raise ValueError(msg) from None


def decode(codes: Iterable[int]) -> tuple[str, ...]:
    """int codes 0..2 → outcome names."""
    return tuple(CLASSES[int(c)] for c in codes)
