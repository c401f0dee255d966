"""Record layouts and constants shared by every operator.

The dtypes mirror Databento's own numpy layouts (``DBNStore.to_ndarray``) field for field, so a
decoded chunk is used as-is, without copying. They are declared here rather than imported from
``databento`` because ``operators`` must not depend on any I/O library.
"""

from __future__ import annotations

from typing import Final

import numpy as np

F_LAST: Final = 1 << 7
"""Last record of an event for one instrument: the book may be sampled only after it."""
F_SNAPSHOT: Final = 1 << 5
"""Record belongs to a book snapshot (an ``R`` then ``A`` records)."""
F_BAD_TS_RECV: Final = 1 << 3

UNDEF_PRICE: Final = np.iinfo(np.int64).max
"""Databento's "no price" sentinel (i64 max) in 1e-9 units."""
PRICE_SCALE: Final = 1_000_000_000

RTYPE_MBP_10: Final = 0x0A
RTYPE_DEFINITION: Final = 0x13
RTYPE_STATISTICS: Final = 0x18
RTYPE_CMBP_1: Final = 0xB1
"""Consolidated top of book (``cmbp-1``): OPRA's quotes and trades, one record per update."""
RTYPE_MBO: Final = 0xA0

# Actions and sides as the single ASCII byte Databento uses.
ACTION_ADD: Final = ord("A")
ACTION_CANCEL: Final = ord("C")
ACTION_MODIFY: Final = ord("M")
ACTION_CLEAR: Final = ord("R")
ACTION_TRADE: Final = ord("T")
ACTION_FILL: Final = ord("F")
ACTION_NONE: Final = ord("N")
SIDE_BID: Final = ord("B")
SIDE_ASK: Final = ord("A")
SIDE_NONE: Final = ord("N")

MBO_DTYPE: Final = np.dtype(
    [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("order_id", "<u8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("flags", "u1"),
        ("channel_id", "u1"),
        ("action", "S1"),
        ("side", "S1"),
        ("ts_recv", "<u8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
)
"""One DBN MBO record (rtype 0xA0), 56 bytes, identical in DBN v1, v2 and v3."""

BOOK_DEPTH: Final = 10
NEAR_DEPTH: Final = 42
"""Levels per side the 1-second book rows list for the surfaces (not the table): every tick within
the surfaces' +-20 of spot is among a side's first 21 non-empty levels (a bid is at or below spot,
an ask above it), with room to spare; ``operators.surfaces.registry`` checks the bound."""


def structured_fields(dtype: np.dtype) -> dict[str, tuple[np.dtype, int]]:
    """A structured dtype's fields in order: name → (field dtype, byte offset)."""
    if dtype.fields is None or dtype.names is None:
        msg = f"{dtype} is not a structured dtype"
        raise TypeError(msg)
    fields = dtype.fields
    return {name: (fields[name][0], fields[name][1]) for name in dtype.names}


def _mbp10_fields() -> list[tuple[str, str]]:
    fields = [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("action", "S1"),
        ("side", "S1"),
        ("flags", "u1"),
        ("depth", "u1"),
        ("ts_recv", "<u8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
    for i in range(BOOK_DEPTH):
        fields += [
            (f"bid_px_{i:02d}", "<i8"),
            (f"ask_px_{i:02d}", "<i8"),
            (f"bid_sz_{i:02d}", "<u4"),
            (f"ask_sz_{i:02d}", "<u4"),
            (f"bid_ct_{i:02d}", "<u4"),
            (f"ask_ct_{i:02d}", "<u4"),
        ]
    return fields


MBP10_DTYPE: Final = np.dtype(_mbp10_fields())
"""One DBN MBP-10 record (rtype 0x0A), 368 bytes: the layout of the simulator's true book."""
