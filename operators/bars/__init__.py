"""Bars (``silver.bar_5s``) folded from the book's 1-second rows, with the registry's features."""

from operators.bars.dtypes import BAR_DTYPE, FEATURE_NAMES
from operators.bars.logic import BarBuilder, BarCarry, bars_from_seconds, empty_carry

__all__ = ["BAR_DTYPE", "FEATURE_NAMES", "BarBuilder", "BarCarry", "bars_from_seconds", "empty_carry"]
