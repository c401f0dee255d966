"""First-crossing labels (BREAK / REJECT / CHOP), emitted when they resolve."""

from operators.labels.dtypes import (
    BREAK,
    CHOP,
    LABEL_DTYPE,
    LABEL_EPISODE_DTYPE,
    OUTCOMES,
    REJECT,
)
from operators.labels.logic import Labeler, LabelParams, LabelState, from_approach, label_session
from operators.labels.reference import label_reference

__all__ = [
    "BREAK",
    "CHOP",
    "LABEL_DTYPE",
    "LABEL_EPISODE_DTYPE",
    "OUTCOMES",
    "REJECT",
    "LabelParams",
    "LabelState",
    "Labeler",
    "from_approach",
    "label_reference",
    "label_session",
]
