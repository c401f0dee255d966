"""A topic partition as the items the DBN file source yields, whatever the transport.

A transport (Kafka: ``connectors.kafka.source``; Event Hubs over AMQP:
``connectors.eventhubs_amqp.source``) hands :class:`TopicPartition` its messages in offset order;
the partition's position lives in Bytewax's recovery store. :class:`TopicPartition` decodes them
(``connectors.kafka.codec``) into the items the graph already knows, so the rest of the graph
cannot tell a topic from a file:

- ``RecordChunk`` per run of good records of one message. ``source_id`` is
  ``kafka:<topic>/<partition>``; ``first_record`` is the **position** ``offset << 20 | index``
  (the index of the record within its message), so positions grow monotonically along a
  partition, survive any re-batching by the consumer, and give the Kafka offset back as
  ``position >> 20``. Those positions are what the exactly-once Delta sink deduplicates on.
- ``SourceFault`` for every undecodable span (garbage, truncated DBN, unknown rtype, JSON with a
  missing field), at its position, with ``topic/partition@offset`` in the detail and the raw
  bytes; it becomes a ``bronze.mbo_dlq`` row and the partition reads on.
- ``SourceEnd`` to close books. A file closes its (contract, session) books at its end; a
  partition carries its instruments across many sessions, so it closes every open book of
  session D (``final=False``: nothing else is marked complete) just before the first record of
  a later session date, and, in bounded mode, closes the rest with a ``final=True`` end (the
  manifest row and completion marks) at the end offset. A lone record whose timestamp jumps a
  session ahead does not close one, and a record arriving for a session the partition already
  closed lands in Bronze but feeds no book (``operators.feed_sessions``).

Instruments are learnt from definition records on the same topic (a definition is keyed, and so
partitioned, like its instrument's MBO); the partition's map rides on every chunk and in its
recovery state. MBO for an instrument the partition never saw defined becomes a dead letter
``unknown_instrument`` downstream (SPEC §2.3).

- ``SourceTick`` (tailing only) at most once per ``tick_s`` of wall time: how far the
  partition's event time has gone, so its quiet books still close their seconds, and their
  sessions once the tick's trade date is later (``connectors.topic.ticks``: lateness, the idle
  wall-clock timeout, what a late record then does).

Modes: **tailing** (default) never ends. **Bounded** (``SPYMASTER_KAFKA_STOP_AT_END=1``) reads
each partition to the end that was there when it started, and the evidence of that end is a fetch
reaching it, never one broker answer. When a partition is first built it asks the broker for its
end offset (ListOffsets), then fetches from there to the partition's EOF (librdkafka's
``_PARTITION_EOF``): that offset, never below the broker's answer, is where the read stops.
(tansu 0.6, our test broker, answers ListOffsets short of the end when a produce request held
several messages: trusting it lost the last messages of a partition, silently.) If no EOF comes
within the metadata timeout, the read stops at the first EOF it meets at or past the broker's
answer, and reads on for as long as the broker shows none: never early. Both offsets are part of
the partition's state, so a resumed bounded run stops at the same place; at its end the partition
logs which offsets it read and the manifest row's ``path`` names them (``…/<partition>#offsets=A..B``).
Bounded runs do not tick: they are replays, and their tables equal the file replay's.

Delivery: at-least-once from the source (a resume replays from the last snapshot), exactly-once
into Delta through the sink's per-stream positions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
from bytewax.connectors.kafka import KafkaError
from bytewax.inputs import StatefulSourcePartition
from typing_extensions import override

from connectors.kafka.codec import Headers, Records, Undecodable, decode_message
from connectors.topic.input import TopicInput
from connectors.topic.positions import _MAX_INDEX, Item, coalesce, position
from connectors.topic.ticks import PartitionClock
from operators.calendar import TradingCalendar, calendar_of
from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd, SourceFault, SourceTick
from operators.feed_sessions import Close, FeedSessions, FeedSessionsState, Jump
from operators.instruments import instrument_from_definition

log = logging.getLogger("spymaster.kafka")

_IDLE = timedelta(milliseconds=5)
"""Poll again this soon after an empty poll: bounded latency without spinning a core."""


class SourceMessage(Protocol):
    """What a partition's inner reader yields: Bytewax's ``KafkaSourceMessage``, or an Event Hubs
    event over AMQP (``offset`` = its sequence number, ``headers`` = its application properties)."""

    @property
    def offset(self) -> int | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers | None: ...


@dataclass(frozen=True, slots=True)
class PartitionEof:
    """librdkafka's ``_PARTITION_EOF`` event: the fetch has read every message before ``offset``
    (a bounded read's evidence that it reached the partition's end)."""

    offset: int


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message of a bounded read (see :class:`SourceMessage`)."""

    offset: int
    value: bytes | None
    headers: Headers | None


@dataclass(frozen=True, slots=True)
class KafkaPartitionState:
    """Everything a partition needs to resume exactly where its last snapshot was."""

    next_offset: int | None
    """Offset of the next message to read; None = the beginning of the partition."""
    end_offset: int | None
    """Bounded mode: the broker's end offset when the partition was first built. A Kafka
    partition never stops before it (it stops at a partition EOF at or past it); an Event Hubs
    partition over AMQP, which has no EOF event, stops at it."""
    instruments: tuple[InstrumentInfo, ...] = ()
    open_keys: tuple[str, ...] = ()
    """(contract, session) books this partition fed and has not closed: ``iid:day``."""
    day: int = -1
    """Latest session day seen (days since the epoch)."""
    records: int = 0
    faults: int = 0
    bytes_read: int = 0
    first_ts_recv: int = -1
    last_ts_recv: int = -1
    session_days: tuple[int, ...] = ()
    ended: bool = False
    first_offset: int | None = None
    """Offset of the first message read (across resumes); None while none was."""
    messages: int = 0
    eof_offset: int | None = None
    """Bounded Kafka mode: the partition's end as a fetch found it (its EOF offset), where the read stops."""
    event_ns: int = -1
    """Latest ``ts_recv`` of the partition's MBO records (its event time; -1 before any)."""
    tick_ns: int = -1
    """Event time of the partition's last ``SourceTick`` (-1 before any)."""
    closed_before: int = -1
    """Every session before this day (days since the epoch) is closed: a record of one is late."""
    late: int = 0
    """Records that arrived for a closed session (in Bronze, in no book)."""
    quotes_ns: int = -1
    """Latest ``ts_recv`` of the partition's consolidated quotes (``cmbp-1``): event time too."""

    def __setstate__(self, state: list[object]) -> None:
        """A state pickled before a field was added (a recovery store of an older build) loads
        with that field's default."""
        for i, f in enumerate(fields(self)):
            object.__setattr__(self, f.name, state[i] if i < len(state) else f.default)


def partition_source_id(prefix: str, topic: str, index: int) -> str:
    """A partition's ``source_id``: ``kafka:<topic>/<partition>`` (``eventhubs:`` over AMQP)."""
    return f"{prefix}:{topic}/{index}"


class TopicPartition(StatefulSourcePartition[Item, KafkaPartitionState]):
    """One Kafka partition: a consumer inside (Bytewax's when tailing, a :class:`_EofReader` when
    bounded), decoded items out. Counters are plain attributes (this runs per message);
    ``snapshot`` freezes them into the state.

    ``until_eof``: the inner reader yields :class:`PartitionEof` events and a bounded read ends at
    one (Kafka); otherwise a bounded read ends at ``end_offset`` (Event Hubs over AMQP). ``clock``
    is the wall clock of the ticks (tailing only).
    """

    def __init__(self, inner: StatefulSourcePartition, source: TopicInput, index: int,
                 state: KafkaPartitionState, *, prefix: str = "kafka", until_eof: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._inner, self._src, self._index = inner, source, index
        self._id = partition_source_id(prefix, source.topic, index)
        self._next, self._end_offset, self._until_eof = state.next_offset, state.end_offset, until_eof
        self._first, self._messages, self._eof = state.first_offset, state.messages, state.eof_offset
        self._instruments: dict[int, InstrumentInfo] = {i.instrument_id: i for i in state.instruments}
        self._known = np.fromiter(self._instruments, np.uint32, len(self._instruments))
        # the feed's calendar, told by its instruments' venue until a message names its dataset
        venues = sorted({i.venue for i in state.instruments})
        self._calendar: TradingCalendar = calendar_of(venues[0] if venues else "")
        self._sessions = FeedSessions(FeedSessionsState(state.day, state.closed_before, state.open_keys,
                                                        state.session_days, state.event_ns, state.late))
        self._records, self._faults, self._bytes = state.records, state.faults, state.bytes_read
        self._first_ts, self._last_ts = state.first_ts_recv, state.last_ts_recv
        self._ended = state.ended
        self._quotes_ns = state.quotes_ns
        self._awake: datetime | None = None
        self._done, self._warned = False, False
        ticking = not source.stop_at_end and source.ticks.tick_s > 0
        self._clock = PartitionClock(source.ticks, clock, state.tick_ns) if ticking else None

    @property
    def source_id(self) -> str:
        return self._id

    def _at_end(self) -> bool:
        limit = self._eof if self._until_eof else self._end_offset
        return self._done or (limit is not None and (self._next or 0) >= limit)

    @override
    def next_batch(self) -> list[Item]:
        if self._ended:
            raise StopIteration
        if self._at_end():
            return [self._finish()]
        messages = self._inner.next_batch()
        self._awake = None if messages else datetime.now(UTC) + _IDLE
        read = self._messages
        out = coalesce(self._read(messages), self._src.batch_records)
        if self._at_end():
            out.append(self._finish())
        elif self._clock is not None:
            if self._messages != read:
                self._clock.heard()
            out.extend(self._tick())
        return out

    def _read(self, messages: Iterable[Any]) -> list[Item]:
        out: list[Item] = []
        for msg in messages:
            # a class check: a runtime Protocol check walks every member, on every message
            if isinstance(msg, PartitionEof):
                if self._reached(msg.offset):
                    break
                continue
            if isinstance(msg, KafkaError):  # raise_on_errors=True makes errors raise: never today
                continue
            offset = int(msg.offset or 0)
            if self._beyond(offset):
                break
            out.extend(self._decode(offset, msg))
            self._next = offset + 1
            self._first = offset if self._first is None else self._first
            self._messages += 1
            self._bytes += len(msg.value or b"")
        return out

    def _beyond(self, offset: int) -> bool:
        """Is a message past a bounded read's end? Then the read is over (and it is not read)."""
        limit = self._eof if self._until_eof else self._end_offset
        if limit is None or offset < limit:
            return False
        self._done = True
        return True

    def _reached(self, eof: int) -> bool:
        """Does the read's partition EOF at ``eof`` end it? At or past the end found at start (or,
        if none was, the broker's end offset): before it the fetch has not shown what was there."""
        floor = self._eof if self._eof is not None else self._end_offset
        if not self._until_eof or floor is None:
            return False
        if eof >= floor:
            self._eof = floor if self._eof is not None else eof
            self._done = True
            return True
        if not self._warned:
            self._warned = True
            log.warning("%s: the read reached the partition's end at offset %d, before %d, the end known at "
                        "start; reading on until it gets there", self._id, eof, floor)
        return False

    def _tick(self) -> list[Item]:
        """Tailing: close the sessions the partition's event time has left, tell the rest how far it is.

        The tick goes out even when no book is open: the option relay hears every partition's
        event time (``flows.steps.option_relay``), and whether it is idle (one with no event time
        yet says so once its idle timeout has passed)."""
        assert self._clock is not None
        event_ns = max(self._sessions.event_ns, self._quotes_ns)
        if event_ns < 0:
            return [SourceTick(self._id, -1, (), idle=True)] if self._clock.silent() else []
        at = self._clock.tick(event_ns)
        if at is None:
            return []
        out = self._close_before(int(self._calendar.trade_date_days(np.array([at], np.int64))[0]))
        out.append(SourceTick(self._id, at, tuple(sorted(self._sessions.open)), idle=self._clock.idle()))
        return out

    def _decode(self, offset: int, msg: SourceMessage) -> list[Item]:
        out: list[Item] = []
        for piece in decode_message(msg.value, msg.headers):
            if isinstance(piece, Undecodable):
                out.append(self._fault(offset, piece.index, piece.reason, piece.detail, piece.raw))
                continue
            records = piece.records
            room = _MAX_INDEX - piece.index
            if len(records) > room:  # only a foreign producer can send this many records at once
                out.append(self._fault(offset, piece.index + room, "message_too_large",
                                       f"records past index {_MAX_INDEX} of one message are not read", b""))
                records = records[:room]
            out.extend(self._records_of(offset, piece, records))
        return out

    def _fault(self, offset: int, index: int, reason: str, detail: str, raw: bytes) -> SourceFault:
        self._faults += 1
        where = f"{self._src.topic}/{self._index}@{offset}"
        return SourceFault(self._id, position(offset, index), reason, f"{where}: {detail}", raw)

    def _records_of(self, offset: int, piece: Records, records: np.ndarray) -> list[Item]:
        if piece.schema == "definition":
            learnt = dict(self._instruments)  # a new dict: chunks already emitted keep theirs
            for row in records:
                info = instrument_from_definition(row, piece.dataset)
                learnt[info.instrument_id] = info
            self._instruments = learnt
            self._known = np.fromiter(learnt, np.uint32, len(learnt))
        if len(records):
            ts = records["ts_recv"]
            if self._first_ts < 0:
                self._first_ts = int(ts[0])
            self._last_ts = int(ts[-1])
        if piece.schema == "mbo":
            return self._mbo(offset, piece, records)
        if piece.schema == "cmbp-1" and len(records):
            self._quotes_ns = max(self._quotes_ns, int(records["ts_recv"].max()))
        self._records += len(records)
        return [RecordChunk(self._id, position(offset, piece.index), piece.schema, piece.dataset, records,
                            self._instruments)]

    def _mbo(self, offset: int, piece: Records, records: np.ndarray) -> list[Item]:
        """MBO records as chunks, with the closes of sessions the partition leaves between them and
        a dead letter for a record whose timestamp jumps (``operators.feed_sessions``)."""
        out: list[Item] = []
        self._calendar = calendar_of(piece.dataset)
        for step in self._sessions.read(records, self._known, self._calendar):
            if isinstance(step, Close):
                out.append(self._end(step.keys, final=False))
            elif isinstance(step, Jump):
                out.append(self._fault(offset, piece.index + step.index, "bad_timestamp", step.detail,
                                       records[step.index : step.index + 1].tobytes()))
            else:
                part = records[step.start : step.stop]
                self._records += len(part)
                out.append(RecordChunk(self._id, position(offset, piece.index + step.start), "mbo", piece.dataset,
                                       part, self._instruments, closed_before=step.closed_before))
        return out

    def _close_before(self, day: int) -> list[Item]:
        """A ``final=False`` end for the open books of sessions before ``day``, which it forgets."""
        closing = self._sessions.close_before(day)
        return [self._end(closing, final=False)] if closing else []

    def _end(self, keys: tuple[str, ...], *, final: bool) -> SourceEnd:
        path = f"{self._src.label or self._src.topic}/{self._index}"
        return SourceEnd(
            source_id=self._id, path=f"{path}#{self._span()}" if final else path, schema="mbo",
            records=self._records, faults=self._faults, first_ts_recv=self._first_ts, last_ts_recv=self._last_ts,
            book_keys=keys, session_days=tuple(sorted(self._sessions.days)), sha256="", size_bytes=self._bytes,
            final=final,
        )

    def _span(self) -> str:
        """The offsets read, first..last (inclusive), for the manifest's path."""
        return "offsets=none" if self._first is None else f"offsets={self._first}..{(self._next or 0) - 1}"

    def _finish(self) -> SourceEnd:
        log.info("%s", self._summary())
        if self._sessions.late:
            log.warning("%s: %d record(s) arrived for sessions already closed: they are in bronze.mbo, not in those "
                        "sessions' books (a Bronze replay recomputes them)", self._id, self._sessions.late)
        end = self._end(tuple(sorted(self._sessions.open)), final=True)
        self._sessions.open.clear()
        self._ended = True
        return end

    def _summary(self) -> str:
        """One line on how far a bounded read went, and what told it to stop there."""
        read = (f"read offsets {self._first}..{(self._next or 0) - 1} ({self._messages:,} messages)"
                if self._first is not None else "read no message")
        said = "none" if self._end_offset is None else f"{self._end_offset:,}"
        if self._until_eof:
            return (f"{self._id}: {read} to the partition's end at offset {self._eof:,}, where a fetch met "
                    f"its EOF; the broker's end offset at start said {said}")
        return f"{self._id}: {read} to the end offset the broker gave at start, {said}"

    @override
    def next_awake(self) -> datetime | None:
        return self._awake

    @override
    def snapshot(self) -> KafkaPartitionState:
        sessions = self._sessions.state()
        return KafkaPartitionState(
            next_offset=self._next, end_offset=self._end_offset, instruments=tuple(self._instruments.values()),
            open_keys=sessions.open_keys, day=sessions.day, records=self._records, faults=self._faults,
            bytes_read=self._bytes, first_ts_recv=self._first_ts, last_ts_recv=self._last_ts,
            session_days=sessions.days, ended=self._ended, first_offset=self._first,
            messages=self._messages, eof_offset=self._eof, event_ns=sessions.event_ns,
            tick_ns=-1 if self._clock is None else self._clock.tick_ns, closed_before=sessions.closed_before,
            late=sessions.late, quotes_ns=self._quotes_ns)

    @override
    def close(self) -> None:
        self._inner.close()
