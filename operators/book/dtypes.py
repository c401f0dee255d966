"""Output row layouts of the L3 book: top of book per event, and the 1-second snapshot row."""

from __future__ import annotations

from functools import cache

import numpy as np

from operators.records import BOOK_DEPTH, NEAR_DEPTH


@cache  # a chain builds hundreds of books: a dtype of 45 fields is slow to build each time
def top_dtype(depth: int = BOOK_DEPTH) -> np.dtype:
    """One row per F_LAST record, like Databento's MBP-10 but with (depth,) subarray fields."""
    return np.dtype(
        [
            ("ts_recv", "<u8"),
            ("ts_event", "<u8"),
            ("instrument_id", "<u4"),
            ("sequence", "<u4"),
            ("book_valid", "?"),
            ("bid_px", "<i8", (depth,)),
            ("bid_sz", "<u4", (depth,)),
            ("bid_ct", "<u4", (depth,)),
            ("ask_px", "<i8", (depth,)),
            ("ask_sz", "<u4", (depth,)),
            ("ask_ct", "<u4", (depth,)),
        ]
    )


@cache
def second_dtype(depth: int = BOOK_DEPTH, near_depth: int = NEAR_DEPTH) -> np.dtype:
    """One ``silver.book_snapshot_1s`` row: the book at ``ts_recv`` = end of the second.

    ``near_*`` list the first ``near_depth`` non-empty levels of each side (prices, sizes, orders), deeper
    than the ``depth`` visible levels the table keeps: the full book around spot, which the wall
    and vacuum surfaces are computed from (not written to the table).
    """
    return np.dtype(
        [
            ("ts_recv", "<u8"),
            ("instrument_id", "<u4"),
            ("book_valid", "?"),
            ("bid_px", "<i8", (depth,)),
            ("bid_sz", "<u4", (depth,)),
            ("bid_ct", "<u4", (depth,)),
            ("ask_px", "<i8", (depth,)),
            ("ask_sz", "<u4", (depth,)),
            ("ask_ct", "<u4", (depth,)),
            ("best_bid_px", "<i8"),
            ("best_ask_px", "<i8"),
            ("mid_px", "<f8"),
            ("spread_ticks", "<i4"),
            ("microprice", "<f8"),
            ("last_trade_px", "<i8"),
            ("last_trade_sz", "<u4"),
            ("volume", "<u8"),
            ("buy_volume", "<u8"),
            ("sell_volume", "<u8"),
            ("trade_count", "<u4"),
            ("add_count", "<u4"),
            ("cancel_count", "<u4"),
            ("modify_count", "<u4"),
            ("event_count", "<u4"),
            ("trade_open_px", "<i8"),
            ("trade_high_px", "<i8"),
            ("trade_low_px", "<i8"),
            ("trade_close_px", "<i8"),
            ("notional", "<f8"),
            ("mid_open", "<f8"),
            ("mid_high", "<f8"),
            ("mid_low", "<f8"),
            ("ofi", "<f8"),
            ("add_bid_size", "<u8"),
            ("add_ask_size", "<u8"),
            ("cancel_bid_size", "<u8"),
            ("cancel_ask_size", "<u8"),
            ("near_pulled_bid_size", "<i8"),
            ("near_pulled_ask_size", "<i8"),
            ("near_bid_px", "<i8", (near_depth,)),
            ("near_bid_sz", "<u4", (near_depth,)),
            ("near_bid_ct", "<u4", (near_depth,)),
            ("near_ask_px", "<i8", (near_depth,)),
            ("near_ask_sz", "<u4", (near_depth,)),
            ("near_ask_ct", "<u4", (near_depth,)),
        ]
    )


TOP_DTYPE = top_dtype()
SECOND_DTYPE = second_dtype()
