"""``BAR_DTYPE``: one ``silver.bar_5s`` row (base fields, then one f8 column per registry feature)."""

from __future__ import annotations

import numpy as np

from operators.features.registry import FEATURES

BASE_FIELDS: tuple[tuple[str, str], ...] = (
    ("ts", "<i8"),  # bar close instant (ns since the epoch), a multiple of bar_seconds
    ("instrument_id", "<u4"),
    ("n_seconds", "u1"),  # 1-second rows in the bar
    ("book_valid", "?"),  # every second of the bar had a valid book
    ("trade_open_px", "<i8"),  # 1e-9 units; UNDEF_PRICE when the bar has no trade
    ("trade_high_px", "<i8"),
    ("trade_low_px", "<i8"),
    ("trade_close_px", "<i8"),
    ("volume", "<u8"),
    ("buy_volume", "<u8"),
    ("sell_volume", "<u8"),
    ("trade_count", "<u8"),
    ("vwap", "<f8"),  # Σ notional / Σ volume (dollars); NaN without trades
    ("mid_open", "<f8"),  # dollars
    ("mid_high", "<f8"),
    ("mid_low", "<f8"),
    ("mid_close", "<f8"),
)

BAR_DTYPE = np.dtype(list(BASE_FIELDS) + [(f.name, "<f8") for f in FEATURES])
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

__all__ = ["BAR_DTYPE", "BASE_FIELDS", "FEATURE_NAMES"]
