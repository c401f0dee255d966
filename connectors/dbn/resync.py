"""Find where whole records start again after damaged bytes in a DBN record stream.

A Databento historical file holds one schema, so its records sit on a fixed grid. Damage either
keeps the grid (a flipped byte in one record's header: the next record starts one record size
later) or moves it (bytes inserted or lost: the rest of the file is shifted). The reader steps
over the damage to the first offset from which ``RUN`` consecutive slots look like records of
the file's schema, or from which the stream ends cleanly after at least one such slot. Requiring
a run, and for MBO a plausible action and side as well as the length and rtype bytes, makes a
false start inside random or shifted bytes vanishingly rare; one that slipped through would only
cost dead letters, since every record is validated downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

RUN: Final = 4
"""Consecutive plausible slots that mark the grid found again."""
_MBO_ACTIONS: Final = np.frombuffer(b"ACMRTFN", np.uint8)
_MBO_SIDES: Final = np.frombuffer(b"ABN", np.uint8)
_MBO_ACTION_AT: Final = 38
_MBO_SIDE_AT: Final = 39


@dataclass(frozen=True, slots=True)
class RecordShape:
    """What every record of one file looks like: its size in bytes and its rtype."""

    size: int
    rtype: int
    mbo: bool = False

    def slot_ok(self, data: np.ndarray, at: int) -> bool:
        """Whether the ``size`` bytes of ``data`` (uint8) from ``at`` look like one record."""
        if int(data[at]) * 4 != self.size or data[at + 1] != self.rtype:
            return False
        if not self.mbo:
            return True
        return bool(np.isin(data[at + _MBO_ACTION_AT], _MBO_ACTIONS) and np.isin(data[at + _MBO_SIDE_AT], _MBO_SIDES))


def resync_point(window: bytes | memoryview, shape: RecordShape, *, at_end: bool, first: int = 1) -> int | None:
    """The smallest offset ``p >= first`` in ``window`` where records start again, or None.

    ``window`` starts at a damaged slot (``first=1``), or inside damage already stepped over
    (``first=0``). ``at_end`` says the stream ends with ``window``; if not,
    offsets whose run would reach past the window are left for a longer window (None).
    One record size is tried first: damage that keeps the grid is by far the most common.
    """
    data = np.frombuffer(window, np.uint8)
    if len(data) < 2:
        return None
    candidates = np.flatnonzero((data[:-1] == shape.size // 4) & (data[1:] == shape.rtype))
    candidates = candidates[candidates >= first]
    if first == 1 and shape.size in candidates and _run_ok(data, shape.size, shape, at_end) is True:
        return shape.size
    for p in candidates:
        found = _run_ok(data, int(p), shape, at_end)
        if found is None:
            return None
        if found:
            return int(p)
    return None


def _run_ok(data: np.ndarray, p: int, shape: RecordShape, at_end: bool) -> bool | None:
    """True if records start at ``p``; None if the window is too short to tell."""
    for k in range(RUN):
        at = p + k * shape.size
        if at + shape.size > len(data):
            if not at_end:
                return None
            return k >= 1  # the stream ends (cleanly or inside a record) after k good slots
        if not shape.slot_ok(data, at):
            return False
    return True
