"""Items that travel between the flow's steps (after the source)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd, SourceFault, SourceTick
from operators.normalize import DeadLetter, ValidChunk


@dataclass(frozen=True, slots=True)
class CheckedChunk:
    """An MBO chunk after validation: good records with their session dates, and dead letters."""

    chunk: RecordChunk
    valid: ValidChunk | None
    session_days: np.ndarray  # int32 days since epoch, one per valid record
    letters: tuple[DeadLetter, ...]


@dataclass(frozen=True, slots=True)
class BookSlice:
    """One (contract, session)'s records from one chunk, in source order."""

    source_id: str
    records: np.ndarray
    info: InstrumentInfo
    session_day: int


@dataclass(frozen=True, slots=True)
class BookRows:
    """Closed 1-second rows of one (contract, session) book."""

    key: str
    source_id: str
    rows: np.ndarray
    info: InstrumentInfo
    session_day: int
    anomalies: dict[str, int] | None = None
    """Set only on the book's last rows (its session is closed): the anomaly counts."""

    @property
    def final(self) -> bool:
        return self.anomalies is not None


Checked = CheckedChunk | RecordChunk | SourceFault | SourceEnd | SourceTick
"""What the check step emits: checked MBO chunks, and everything else passed through."""


def book_key(instrument_id: int, session_day: int) -> str:
    """The state key of a (contract, session) book: ``instrument_id:days-since-epoch``."""
    return f"{instrument_id}:{session_day}"
