"""The items that flow out of every source: batches of decoded records, or faults.

Sources (DBN files today, Kafka tomorrow) produce these; nothing downstream knows which source
made them. A chunk carries its own provenance (``source_id`` and the offset of its first record)
so that sinks can be idempotent and dead letters can point at the exact input position.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

Schema = Literal["mbo", "definition", "statistics", "cmbp-1"]
InstrumentType = Literal["FUT", "OPT", "STK", "SPREAD", "UNKNOWN"]


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """What the flow needs to know about one instrument id.

    ``tick`` is the minimum price increment in 1e-9 units, 0 when unknown (a file with no
    definitions). ``source`` says where the facts came from: ``definition`` or ``symbology``.
    An option also knows its underlying instrument (``underlying_id``, 0 when not given) and its
    right (``"C"`` or ``"P"``); every instrument its venue (``venue``), hence its calendar.
    """

    instrument_id: int
    raw_symbol: str
    underlier: str
    instrument_type: InstrumentType
    tick: int = 0
    multiplier: float = 0.0
    expiration_ns: int = 0
    strike_price: int = 0
    source: Literal["definition", "symbology"] = "definition"
    underlying_id: int = 0
    option_right: Literal["C", "P", ""] = ""
    venue: str = ""
    """The venue code of the feed it came from (``XNAS`` from ``XNAS.ITCH``; ``GLBX``): which
    trading calendar its sessions follow (``operators.calendar.calendar_of``). Empty: CME Globex."""

    def __setstate__(self, state: list[object]) -> None:
        """Unpickle, also a recovery snapshot taken before the last fields existed (their defaults)."""
        for f, value in zip(_INFO_FIELDS, [*state, *_INFO_DEFAULTS[len(state):]], strict=True):
            object.__setattr__(self, f, value)

    def __getstate__(self) -> list[object]:
        return [getattr(self, f) for f in _INFO_FIELDS]


_INFO_FIELDS = tuple(f.name for f in fields(InstrumentInfo))
_INFO_DEFAULTS = tuple(f.default for f in fields(InstrumentInfo))


@dataclass(frozen=True, slots=True)
class RecordChunk:
    """A batch of consecutive records from one source partition.

    ``records`` is a numpy structured array in Databento's own layout for ``schema``
    (``operators.records.MBO_DTYPE`` for MBO). ``first_record`` is the offset of
    ``records[0]`` in its source (a record index in a file, or a message offset on a topic).
    ``instruments`` maps every instrument id the source knows about to its facts.
    """

    source_id: str
    first_record: int
    schema: Schema
    dataset: str
    records: np.ndarray
    instruments: dict[int, InstrumentInfo] = field(default_factory=dict)
    positions: np.ndarray | None = None
    """Each record's position (int64, strictly increasing) when they are not consecutive
    integers from ``first_record``: a topic chunk that joins several messages, positioned
    ``offset << 20 | index``. None means ``first_record + arange(len(records))``."""
    ts_bounds: tuple[int, int] | None = None
    """``[first, end)`` of the ``ts_recv`` its records may have, when the source knows (a file's
    metadata names the sessions it covers); validation dead-letters records outside it."""
    closed_before: int = -1
    """A live partition has closed every session before this day (days since the epoch): records
    of those sessions land in Bronze but feed no book (``operators.feed_sessions``)."""

    @property
    def end_record(self) -> int:
        """Offset one past the last record: the resume position after this chunk."""
        return self.first_record + len(self.records)

    def record_positions(self) -> np.ndarray:
        """Every record's position in its source, for idempotent sinks and dead letters."""
        if self.positions is not None:
            return self.positions
        return np.arange(self.first_record, self.end_record, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class SourceFault:
    """Input that could not be decoded: a truncated file, a corrupt record, garbage on a topic.

    It becomes a dead letter; the flow goes on. ``raw`` holds the undecodable bytes (possibly
    truncated to a bounded length) so nothing is silently lost.
    """

    source_id: str
    record_offset: int
    reason: str
    detail: str
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class SourceEnd:
    """The last item of a finite source partition: what was read, for the manifest.

    ``book_keys`` are the ``instrument_id:YYYYMMDD`` (contract, session) keys that the partition
    fed, so the end can be fanned out to exactly the books it closes.
    """

    source_id: str
    path: str
    schema: str
    records: int
    faults: int
    first_ts_recv: int
    last_ts_recv: int
    book_keys: tuple[str, ...]
    session_days: tuple[int, ...]
    sha256: str
    size_bytes: int
    final: bool = True
    """False for a topic partition that closes the books of a session it has moved past but reads
    on: it closes ``book_keys`` and nothing else (no manifest row, no completion marks)."""


@dataclass(frozen=True, slots=True)
class SourceTick:
    """A tailed partition's event time has moved on, whether or not its books had records.

    No record still to come on the partition starts an event before ``event_ns``, so each book
    in ``book_keys`` may close every second that ends by then: a quiet contract advances on the
    wall clock (SPEC §4, live only). Only a tailing topic partition emits it; a replay never does.
    """

    source_id: str
    event_ns: int
    book_keys: tuple[str, ...]
    idle: bool = False
    """No message has come for the idle timeout: the option relay stops waiting for the partition
    until it speaks again (``flows.steps.option_relay``). ``event_ns`` -1: it has read none yet."""
