"""The ``mbo_raw`` topic as a Bytewax source that yields what the DBN file source yields.

Built on ``bytewax.connectors.kafka.KafkaSource``: each Kafka partition is a Bytewax partition
whose consumer is Bytewax's own (``assign()``, no consumer group, no offset commits); the
partition's position lives in Bytewax's recovery store. This module wraps each of those
partitions to decode messages (``connectors.kafka.codec``) into the items the graph already
knows, so the rest of the graph cannot tell a topic from a file:

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
  manifest row and completion marks) at the end offset. Records arriving for a session the
  partition already closed (out of ``ts_recv`` order across a session boundary) open that book
  again; producers keep a partition in ``ts_recv`` order, as Databento's feed is.

Instruments are learnt from definition records on the same topic (a definition is keyed, and so
partitioned, like its instrument's MBO); the partition's map rides on every chunk and in its
recovery state. MBO for an instrument the partition never saw defined becomes a dead letter
``unknown_instrument`` downstream (SPEC §2.3).

Modes: **tailing** (default) never ends. **Bounded** (``SPYMASTER_KAFKA_STOP_AT_END=1``) stops
each partition at the high watermark it had when the partition was first built; that end offset
is part of the partition's state, so a resumed bounded run stops at the same place.

Delivery: at-least-once from the source (a resume replays from the last snapshot), exactly-once
into Delta through the sink's per-stream positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np
from bytewax.connectors.kafka import KafkaError, KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from connectors.kafka.codec import Records, Undecodable, decode_message
from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd, SourceFault
from operators.errors import ConfigError, SourceError
from operators.instruments import instrument_from_definition
from operators.sessions import trade_date_days

Item = RecordChunk | SourceFault | SourceEnd

INDEX_BITS = 20
"""Low bits of a position: a record's index within its message (messages hold < 2^20 records)."""
_MAX_INDEX = (1 << INDEX_BITS) - 1
_IDLE = timedelta(milliseconds=5)
"""Poll again this soon after an empty poll: bounded latency without spinning a core."""
_UNDEF_TS = 2**63


def coalesce(items: list[Item], max_records: int) -> list[Item]:
    """Join runs of adjacent chunks of one schema (and one instrument map) into single chunks
    with explicit positions: the graph's cost is per item, a live message is often small."""
    out: list[Item] = []
    run: list[RecordChunk] = []

    def close() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first = run[0]
            out.append(RecordChunk(first.source_id, first.first_record, first.schema, first.dataset,
                                   np.frombuffer(b"".join([c.records.tobytes() for c in run]),
                                                 dtype=first.records.dtype), first.instruments,
                                   np.concatenate([c.record_positions() for c in run])))
        run.clear()

    size = 0
    for item in items:
        joinable = (isinstance(item, RecordChunk) and run and item.schema == run[0].schema
                    and item.instruments is run[0].instruments and item.dataset == run[0].dataset
                    and size + len(item.records) <= max_records)
        if not joinable:
            close()
            size = 0
        if isinstance(item, RecordChunk):
            run.append(item)
            size += len(item.records)
        else:
            out.append(item)
    close()
    return out


def position(offset: int, index: int) -> int:
    """The monotonic position of record ``index`` of the message at ``offset``."""
    return (offset << INDEX_BITS) | index


def offset_of(pos: int) -> int:
    """The Kafka offset of the message a position belongs to."""
    return pos >> INDEX_BITS


class SourceMessage(Protocol):
    """What a partition's inner reader yields: Bytewax's ``KafkaSourceMessage``, or an Event Hubs
    event over AMQP (``offset`` = its sequence number, ``headers`` = its application properties)."""

    @property
    def offset(self) -> int | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicInput:
    """Where to read: brokers, topic, client settings (Event Hubs SASL, …), bounded or tailing."""

    bootstrap: str
    topic: str
    add_config: Mapping[str, str] = field(default_factory=dict, repr=False)
    stop_at_end: bool = False
    batch_messages: int = 1000
    batch_records: int = 65_536
    """Consecutive messages read in one poll join into chunks of at most this many records."""
    fetch_wait_ms: int | None = None
    """``fetch.wait.max.ms``: how long the broker may hold a fetch that found no data (None:
    librdkafka's 500 ms; settings in ``add_config`` win). A broker that answers a held fetch as
    soon as data arrives makes this irrelevant to latency. One that does not (tansu, our test
    broker, measured: 131 ms median delivery at 500 ms, 6 ms at 10 ms) puts it under a tailing
    flow's latency, but tansu also returns *nothing* when it cannot gather a fetch in time, and on
    a long partition it never can at 10–25 ms: choose it per broker (``?fetch_wait_ms=N``)."""
    label: str = ""
    """``kafka://host:port/topic`` or ``eventhubs://namespace/hub``, for messages and the manifest."""
    transport: Literal["kafka", "amqp"] = "kafka"
    """``amqp``: an event hub read with azure-eventhub (``connectors.eventhubs_amqp``): the Basic tier."""
    connection: str = field(default="", repr=False)
    """AMQP only: the namespace's connection string (a secret)."""


def parse_topic_url(url: str, *, connection_string: str = "", stop_at_end: bool = False) -> TopicInput:
    """``kafka://HOST:PORT[,HOST:PORT]/TOPIC`` or ``eventhubs://NAMESPACE/HUB[?transport=amqp]`` → a :class:`TopicInput`.

    ``?fetch_wait_ms=N`` sets the consumer's ``fetch.wait.max.ms`` (see ``TopicInput``).

    The Event Hubs form needs ``connection_string`` (EVENTHUBS_CONNECTION_STRING); the namespace
    may be given short (``myns``) or as the host name. ``transport=amqp`` reads over AMQP with
    azure-eventhub (the Basic tier has no Kafka endpoint; emulator strings are valid there).
    """
    parts = urlsplit(url)
    topic = parts.path.strip("/")
    query = parse_qs(parts.query, keep_blank_values=True)
    transport = (query.pop("transport", ["kafka"]) or ["kafka"])[-1]
    fetch_wait = (query.pop("fetch_wait_ms", [""]) or [""])[-1]
    if query or transport not in ("kafka", "amqp"):
        raise ConfigError(f"{url!r}: the query parameters are transport=kafka|amqp and fetch_wait_ms=N")
    if fetch_wait and (not fetch_wait.isdigit() or transport == "amqp"):
        raise ConfigError(f"{url!r}: fetch_wait_ms takes whole milliseconds and the Kafka transport")
    wait = int(fetch_wait) if fetch_wait else None
    if transport == "amqp":
        if parts.scheme != "eventhubs":
            raise ConfigError(f"{url!r}: transport=amqp is for eventhubs://NAMESPACE/HUB inputs")
        from connectors.eventhubs_amqp.client import amqp_input

        return amqp_input(parts.netloc, topic, connection_string, stop_at_end=stop_at_end)
    if parts.scheme == "kafka":
        if not parts.netloc or not topic or "/" in topic:
            raise ConfigError(f"{url!r} is not kafka://HOST:PORT/TOPIC")
        return TopicInput(bootstrap=parts.netloc, topic=topic, stop_at_end=stop_at_end, fetch_wait_ms=wait,
                          label=f"kafka://{parts.netloc}/{topic}")
    if parts.scheme == "eventhubs":
        from connectors.kafka.eventhubs import kafka_config, parse_connection_string, topic_for

        if not connection_string:
            raise ConfigError(f"{url} needs EVENTHUBS_CONNECTION_STRING (a SAS connection string of the namespace)")
        conn = parse_connection_string(connection_string)
        host = parts.netloc if "." in parts.netloc else f"{parts.netloc}.servicebus.windows.net"
        if parts.netloc and host.lower() != conn.namespace_host.lower():
            raise ConfigError(f"{url} names namespace {host}, but the connection string is for {conn.namespace_host}")
        settings = kafka_config(conn, "consumer")
        bootstrap = settings.pop("bootstrap.servers")
        return TopicInput(bootstrap=bootstrap, topic=topic_for(conn, topic or None), add_config=settings,
                          stop_at_end=stop_at_end, fetch_wait_ms=wait, label=f"eventhubs://{conn.namespace_host}/{topic_for(conn, topic or None)}")
    raise ConfigError(f"{url!r} is not a topic input; use kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB")


def is_topic_input(inputs: tuple[str, ...] | list[str]) -> bool:
    return len(inputs) == 1 and str(inputs[0]).startswith(("kafka://", "eventhubs://"))


@dataclass(frozen=True, slots=True)
class KafkaPartitionState:
    """Everything a partition needs to resume exactly where its last snapshot was."""

    next_offset: int | None
    """Offset of the next message to read; None = the beginning of the partition."""
    end_offset: int | None
    """Bounded mode: stop before this offset (the high watermark at the first build)."""
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


class _TopicPartition(StatefulSourcePartition[Item, KafkaPartitionState]):
    """One Kafka partition: Bytewax's consumer inside, decoded items out. Counters are plain
    attributes (this runs per message); ``snapshot`` freezes them into the state."""

    def __init__(self, inner: StatefulSourcePartition, source: TopicInput, index: int,
                 state: KafkaPartitionState, *, prefix: str = "kafka") -> None:
        self._inner, self._src, self._index = inner, source, index
        self._id = f"{prefix}:{source.topic}/{index}"
        self._next = state.next_offset
        self._end_offset = state.end_offset
        self._instruments: dict[int, InstrumentInfo] = {i.instrument_id: i for i in state.instruments}
        self._known = np.fromiter(self._instruments, np.uint32, len(self._instruments))
        self._open: set[str] = set(state.open_keys)
        self._day = state.day
        self._records, self._faults, self._bytes = state.records, state.faults, state.bytes_read
        self._first_ts, self._last_ts = state.first_ts_recv, state.last_ts_recv
        self._days: set[int] = set(state.session_days)
        self._ended = state.ended
        self._awake: datetime | None = None

    @property
    def source_id(self) -> str:
        return self._id

    def _at_end(self) -> bool:
        return self._end_offset is not None and (self._next or 0) >= self._end_offset

    @override
    def next_batch(self) -> list[Item]:
        if self._ended:
            raise StopIteration
        if self._at_end():
            return [self._finish()]
        messages = self._inner.next_batch()
        self._awake = None if messages else datetime.now(UTC) + _IDLE
        out: list[Item] = []
        for msg in messages:
            # raise_on_errors=True makes errors raise, so this skips nothing today; a class check
            # because a runtime Protocol check costs about 19 µs a message
            if isinstance(msg, KafkaError):
                continue
            offset = int(msg.offset or 0)
            if self._end_offset is not None and offset >= self._end_offset:
                break
            out.extend(self._decode(offset, msg))
            self._next = offset + 1
            self._bytes += len(msg.value or b"")
        out = coalesce(out, self._src.batch_records)
        if self._at_end():
            out.append(self._finish())
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
        out: list[Item] = []
        if piece.schema == "definition":
            learnt = dict(self._instruments)  # a new dict: chunks already emitted keep theirs
            for row in records:
                info = instrument_from_definition(row)
                learnt[info.instrument_id] = info
            self._instruments = learnt
            self._known = np.fromiter(learnt, np.uint32, len(learnt))
        elif piece.schema == "mbo":
            out.extend(self._sessions(records))
        if len(records):
            ts = records["ts_recv"]
            if self._first_ts < 0:
                self._first_ts = int(ts[0])
            self._last_ts = int(ts[-1])
            self._records += len(records)
        out.append(RecordChunk(self._id, position(offset, piece.index), piece.schema, piece.dataset, records,
                               self._instruments))
        return out

    def _sessions(self, records: np.ndarray) -> list[Item]:
        """Close books of sessions this partition has moved past; note the books these records open."""
        ts = records["ts_recv"]
        plausible = (ts > 0) & (ts < _UNDEF_TS)
        if not plausible.all():
            if not plausible.any():
                return []
            records, ts = records[plausible], ts[plausible]
        ends = trade_date_days(np.array([ts.min(), ts.max()]))
        days = np.full(len(ts), ends[0], np.int32) if ends[0] == ends[1] else trade_date_days(ts)
        out: list[Item] = []
        latest = int(ends[1])
        if latest > self._day:
            closing = sorted(k for k in self._open if int(k.split(":")[1]) < latest)
            if closing:
                out.append(self._end(tuple(closing), final=False))
                self._open.difference_update(closing)
            self._day = latest
        ids = records["instrument_id"]
        if ends[0] == ends[1] and ids[0] == ids[-1] and (ids == ids[0]).all():  # the usual message
            if int(ids[0]) in self._instruments:
                self._open.add(f"{int(ids[0])}:{int(ends[0])}")
                self._days.add(int(ends[0]))
            return out
        known = np.isin(ids, self._known)
        if known.any():
            pairs = np.unique((ids[known].astype(np.int64) << 32) | days[known].astype(np.int64))
            self._open.update(f"{int(p >> 32)}:{int(p & 0xFFFFFFFF)}" for p in pairs)
            self._days.update(int(p & 0xFFFFFFFF) for p in pairs)
        return out

    def _end(self, keys: tuple[str, ...], *, final: bool) -> SourceEnd:
        return SourceEnd(
            source_id=self._id, path=f"{self._src.label or self._src.topic}/{self._index}", schema="mbo",
            records=self._records, faults=self._faults, first_ts_recv=self._first_ts, last_ts_recv=self._last_ts,
            book_keys=keys, session_days=tuple(sorted(self._days)), sha256="", size_bytes=self._bytes,
            final=final,
        )

    def _finish(self) -> SourceEnd:
        end = self._end(tuple(sorted(self._open)), final=True)
        self._open.clear()
        self._ended = True
        return end

    @override
    def next_awake(self) -> datetime | None:
        return self._awake

    @override
    def snapshot(self) -> KafkaPartitionState:
        return KafkaPartitionState(
            next_offset=self._next, end_offset=self._end_offset, instruments=tuple(self._instruments.values()),
            open_keys=tuple(sorted(self._open)), day=self._day, records=self._records, faults=self._faults,
            bytes_read=self._bytes, first_ts_recv=self._first_ts, last_ts_recv=self._last_ts,
            session_days=tuple(sorted(self._days)), ended=self._ended)

    @override
    def close(self) -> None:
        self._inner.close()


class KafkaMboSource(FixedPartitionedSource[Item, KafkaPartitionState]):
    """Every partition of one topic; partitions are named like Bytewax's (``<index>-<topic>``)."""

    def __init__(self, source: TopicInput, *, metadata_timeout: float = 5.0) -> None:
        self._src = source
        self._timeout = metadata_timeout
        self._kafka = KafkaSource([source.bootstrap], [source.topic], tail=True,
                                  add_config={**_fetch_settings(source), **source.add_config},
                                  batch_size=source.batch_messages,
                                  raise_on_errors=True)

    @property
    def input(self) -> TopicInput:
        return self._src

    def _client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self._src.bootstrap, **self._src.add_config}

    @override
    def list_parts(self) -> list[str]:
        return [f"{i}-{self._src.topic}" for i in partitions_of(self._src, self._timeout)]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: KafkaPartitionState | None) -> _TopicPartition:
        index = int(for_part.split("-", 1)[0])
        if resume_state is None:
            end = self._high_watermark(index) if self._src.stop_at_end else None
            resume_state = KafkaPartitionState(next_offset=None, end_offset=end)
        inner = self._kafka.build_part(step_id, for_part, resume_state.next_offset)
        return _TopicPartition(inner, self._src, index, resume_state)

    def _high_watermark(self, index: int) -> int:
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        consumer = Consumer({**self._client_config(), "group.id": "spymaster-watermarks", "enable.auto.commit": "false"})
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(self._src.topic, index), timeout=self._timeout)
            return int(high)
        except KafkaException as exc:
            raise SourceError(f"cannot read the end offsets of {self._src.label or self._src.topic}: {exc.args[0].str()}") from None
        finally:
            consumer.close()


def _fetch_settings(source: TopicInput) -> dict[str, str]:
    return {} if source.fetch_wait_ms is None else {"fetch.wait.max.ms": str(source.fetch_wait_ms)}


def partitions_of(source: TopicInput, timeout: float = 5.0) -> list[int]:
    """The topic's partition indices; one clear :class:`SourceError` if the broker or topic is not there."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    where = source.label or f"{source.bootstrap}/{source.topic}"
    admin = AdminClient({"bootstrap.servers": source.bootstrap, **source.add_config,
                         "socket.connection.setup.timeout.ms": str(int(timeout * 1000)), "log_level": "0"})
    try:
        meta = admin.list_topics(timeout=timeout)  # all topics: asking for one may auto-create it
    except KafkaException as exc:
        raise SourceError(f"the Kafka broker {source.bootstrap} for {where} is not reachable "
                          f"({exc.args[0].str()}); check the address and that the broker runs") from None
    topic = meta.topics.get(source.topic)
    if topic is None or topic.error is not None or not topic.partitions:
        raise SourceError(f"the topic {source.topic} does not exist on {source.bootstrap}; "
                          f"create it (spymaster publish does) or fix the input {where}")
    return sorted(topic.partitions)


def kafka_source(cfg: object) -> FixedPartitionedSource[Item, KafkaPartitionState]:
    """The topic source for an ``AppConfig`` whose input is ``kafka://…`` or ``eventhubs://…``
    (``?transport=amqp``: :class:`connectors.eventhubs_amqp.source.AmqpMboSource`).

    Checks at once that the broker answers and the topic exists (one sentence otherwise).
    """
    src_cfg = cfg.source  # type: ignore[attr-defined]
    if not is_topic_input(src_cfg.inputs):
        raise ConfigError(f"the input {src_cfg.inputs!r} is not one kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB")
    topic = parse_topic_url(src_cfg.inputs[0], connection_string=getattr(src_cfg, "eventhubs_connection", ""),
                            stop_at_end=getattr(src_cfg, "kafka_stop_at_end", False))
    if topic.transport == "amqp":
        from connectors.eventhubs_amqp.source import AmqpMboSource

        return AmqpMboSource.checked(topic)
    try:
        partitions_of(topic)
    except SourceError as err:
        raise ConfigError(str(err)) from None
    return KafkaMboSource(topic)
