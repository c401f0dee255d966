"""Key levels per (contract, session) and when each becomes known: PDH/PDL, PMH/PML, ORH/ORL.

``summarize_session`` reduces one contract-session's 1-second rows to a ``SessionSummary``
(``SessionExtremes`` does the same piece by piece);
``PriorSessionJoin`` pairs each session with its prior session's summary in any arrival order;
``levels_for`` turns the pair into ``Level`` values; ``running_vwap`` and ``moving_average`` give
context series.
"""

from operators.levels.context import moving_average, running_vwap
from operators.levels.join import PriorSessionJoin, Release
from operators.levels.kernels import UNDEF
from operators.levels.summary import (
    LEVEL_TYPES,
    PRICE_SCALE,
    Level,
    LevelType,
    SessionExtremes,
    SessionSummary,
    levels_for,
    missing_levels,
    summarize_session,
)

__all__ = [
    "LEVEL_TYPES",
    "PRICE_SCALE",
    "UNDEF",
    "Level",
    "LevelType",
    "PriorSessionJoin",
    "Release",
    "SessionExtremes",
    "SessionSummary",
    "levels_for",
    "missing_levels",
    "moving_average",
    "running_vwap",
    "summarize_session",
]
