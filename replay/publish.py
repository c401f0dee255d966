"""The live-market simulator: replay DBN files onto a Kafka topic as a live feed would send them.

Order on the topic: every definition first (so consumers know the instruments before any book
event), then the MBO of all files merged by ``ts_recv`` (a stable merge: each file's own order is
kept, so every book sees exactly its file's record sequence), with the statistics and
consolidated quotes merged in by event time as a feed sends them. Messages are
keyed by instrument id (a contract stays on one partition) and batched like a feed handler
flushes: consecutive records of one instrument within a short event-time window, at most
``max_bytes`` of records (960 kB under Event Hubs' 1 MB Kafka request; 250 kB on the AMQP path,
under the Basic tier's 256 KB event, :func:`publish_files_amqp`). Each message carries the wall-clock publish time in
the ``published-ns`` header for latency measurements.

Pacing: ``speed=None`` publishes as fast as the broker takes it; ``speed=x`` sends each batch
when ``x`` × the elapsed wall time reaches the ``ts_recv`` of its last record (when a live
batch would be complete), measured from the first MBO record. ``max_idle_s`` caps the wall wait
between two batches (overnight gaps between sessions), so a multi-day replay stays watchable.

The schedule is computed up front (:func:`schedule`), so it is tested exactly, without a clock.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from connectors.dbn.reader import RAW_PIECE, BadHeader, Damage, DbnFileReader, upgrade_to_v3
from connectors.kafka.codec import (
    MAX_MESSAGE_BYTES,
    batches,
    encode_headers,
    encode_records,
    instrument_key,
)
from operators.errors import ConfigError, SourceError

log = logging.getLogger("spymaster.publish")

RECORD_BYTES_PER_MESSAGE = 960_000
"""Record payload per message: headers and Kafka framing stay under Event Hubs' 1 MB request."""
DEFAULT_WINDOW_MS = 100.0
"""A live feed handler flushes a batch at least this often in event time."""
_SCHEMA_ORDER = {"definition": 0, "mbo": 1, "statistics": 2, "cmbp-1": 3}


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish: its key, records (one instrument, one schema) and send time."""

    instrument_id: int
    schema: str
    records: np.ndarray
    due_s: float
    """Wall-clock seconds after the start at which it is due (0 for as fast as possible)."""
    raw: bytes | None = None
    """A file's undecodable bytes, sent as they are so the consumer dead-letters them (a file's
    damage travels to the topic rather than vanishing in the publisher's log)."""

    @property
    def key(self) -> bytes:
        return instrument_key(self.instrument_id)


@dataclass(frozen=True, slots=True)
class PublishReport:
    topic: str
    records: int
    messages: int
    bytes: int
    seconds: float
    by_schema: dict[str, int] = field(default_factory=dict)
    max_message_bytes: int = 0
    faults: int = 0
    """Damaged stretches of the input files, forwarded as undecodable messages."""
    failed: int = 0
    """Messages the broker did not acknowledge."""

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        return (f"published {self.records:,} records in {self.messages:,} messages ({self.bytes / 1e6:.1f} MB) to "
                f"{self.topic} in {self.seconds:.1f} s: {self.records_per_s:,.0f} records/s"
                + (f"; {self.faults} damaged stretch(es) of the files forwarded as-is (they land in the DLQ)"
                   if self.faults else "")
                + (f"; {self.failed} message(s) FAILED" if self.failed else ""))


@dataclass(frozen=True, slots=True)
class FileFault:
    """A damaged stretch of a file: where, why, and its bytes as they are."""

    path: str
    record: int
    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Loaded:
    dataset: str
    by_schema: dict[str, np.ndarray]
    faults: tuple[FileFault, ...] = ()


def load_files(paths: Sequence[Path]) -> Loaded:
    """Read every file whole, in DBN v3 layout, and merge each schema across files.

    MBO is merged by ``ts_recv`` with a stable sort on each file's running maximum, which keeps
    every file's own order; definitions and statistics likewise.
    """
    parts: dict[str, list[np.ndarray]] = {}
    faults: list[FileFault] = []
    dataset = ""
    for path in paths:
        try:
            reader = DbnFileReader(Path(path))
        except BadHeader as exc:
            log.warning("%s: %s; publishing its bytes as they are", path, exc.detail)
            faults.extend(_unreadable(Path(path)))
            continue
        try:
            h = reader.header
            if h.schema not in _SCHEMA_ORDER:
                raise SourceError(f"{path} holds {h.schema or 'mixed'} records; publish takes mbo, definition, "
                                  f"statistics and cmbp-1 files")
            schema = str(getattr(h.schema, "value", h.schema))
            if dataset and h.dataset and h.dataset != dataset:
                raise SourceError(f"{path} is {h.dataset}, the files before it {dataset}: a topic carries one "
                                  f"dataset (its calendar dates the records); publish each to its own topic")
            dataset = dataset or h.dataset
            chunks, damaged = [], 0
            while (item := reader.next(1 << 18)) is not None:
                if isinstance(item, Damage):
                    faults.append(FileFault(str(path), item.record, item.reason, item.raw))
                    damaged += 1
                    continue
                chunks.append(upgrade_to_v3(item, schema, h.version, h.ts_out))
            if damaged:
                log.warning("%s: %d damaged stretch(es), the first a %s; publishing the records, then the damaged "
                            "bytes as they are", path, damaged, faults[-damaged].reason)
            if chunks:
                parts.setdefault(schema, []).append(np.concatenate(chunks))
        finally:
            reader.close()
    return Loaded(dataset, {schema: _merge(arrays) for schema, arrays in parts.items()}, tuple(faults))


def _unreadable(path: Path) -> list[FileFault]:
    """A file without a readable DBN header, in pieces that each fit a message."""
    data = path.read_bytes()
    return [FileFault(str(path), k // RAW_PIECE, "bad_header", data[k : k + RAW_PIECE])
            for k in range(0, len(data), RAW_PIECE)]


def _merge(arrays: list[np.ndarray]) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0]
    keys = np.concatenate([np.maximum.accumulate(a["ts_recv"].astype(np.int64)) for a in arrays])
    order = np.argsort(keys, kind="stable")  # ties: earlier file first, then file order
    return np.concatenate(arrays)[order]


def schedule(loaded: Loaded, *, speed: float | None, window_ms: float = DEFAULT_WINDOW_MS,
             max_bytes: int = RECORD_BYTES_PER_MESSAGE, max_idle_s: float | None = None) -> list[Message]:
    """Every message in send order with its due time (see the module docstring)."""
    if speed is not None and not speed > 0:
        raise ConfigError(f"--speed must be a positive factor of real time, not {speed}")
    window_ns = int(window_ms * 1e6)
    out: list[Message] = []
    mbo = loaded.by_schema.get("mbo")
    t0 = int(mbo["ts_recv"].min()) if mbo is not None and len(mbo) else 0
    last_due, last_ts = 0.0, t0
    for schema, iid, batch in _in_send_order(loaded.by_schema, window_ns, max_bytes):
        due = 0.0
        if speed is not None and schema != "definition":
            ts = max(int(batch["ts_recv"].max()), last_ts)
            wait = (ts - last_ts) / 1e9 / speed
            if max_idle_s is not None:
                wait = min(wait, max_idle_s)
            due = last_due + wait
            last_due, last_ts = due, ts
        out.append(Message(iid, schema, batch, due))
    empty = np.zeros(0, np.uint8)
    out.extend(Message(0, "fault", empty, last_due, raw=f.raw) for f in loaded.faults if f.raw)
    return out


def _in_send_order(by_schema: Mapping[str, np.ndarray], window_ns: int,
                   max_bytes: int) -> Iterator[tuple[str, int, np.ndarray]]:
    """``(schema, instrument, records)`` batches as a feed sends them: definitions first, then MBO,
    statistics and consolidated quotes merged by event time (each batch at the running maximum of
    its schema's batches' last ``ts_recv``, so every schema keeps its own order; ties in
    ``_SCHEMA_ORDER``). A statistic comes when it was published: open interest before the
    session's quotes, as a chain needs it (``flows.steps.option_relay``)."""
    definitions = by_schema.get("definition")
    if definitions is not None:
        yield from (("definition", iid, b) for iid, b in batches(definitions, window_ns=2**62, max_bytes=max_bytes))
    timed = sorted((s for s in by_schema if s != "definition"), key=_SCHEMA_ORDER.__getitem__)
    streams = [_keyed_batches(s, batches(by_schema[s], window_ns=window_ns, max_bytes=max_bytes)) for s in timed]
    for _, _, schema, iid, batch in heapq.merge(*streams, key=lambda m: (m[0], m[1])):
        yield schema, iid, batch


def _keyed_batches(schema: str, parts: Iterator[tuple[int, np.ndarray]]
                   ) -> Iterator[tuple[int, int, str, int, np.ndarray]]:
    rank, seen = _SCHEMA_ORDER[schema], -(1 << 63)
    for iid, batch in parts:
        seen = max(seen, int(batch["ts_recv"].max()))
        yield seen, rank, schema, iid, batch


def ensure_topic(bootstrap: str, topic: str, partitions: int, add_config: Mapping[str, str] | None = None,
                 *, create: bool = True, timeout: float = 5.0) -> int:
    """The topic's partition count, creating it with ``partitions`` if missing (and ``create``)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap, **(add_config or {}),
              "socket.connection.setup.timeout.ms": str(int(timeout * 1000)), "log_level": "0"}
    admin = AdminClient(config)
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise SourceError(f"the Kafka broker {bootstrap} is not reachable ({exc.args[0].str()}); "
                          f"check --bootstrap and that the broker runs") from None
    found = meta.topics.get(topic)
    if found is not None and found.error is None and found.partitions:
        return len(found.partitions)
    if not create:
        raise SourceError(f"the topic {topic} does not exist on {bootstrap}; create it first (an event hub is "
                          f"created with the portal, ARM or Bicep)")
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout=timeout * 3)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise SourceError(f"cannot create the topic {topic} on {bootstrap}: {exc.args[0].str()}") from None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # metadata catches up a moment later
        found = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if found is not None and found.error is None and len(found.partitions) == partitions:
            return partitions
        time.sleep(0.05)
    raise SourceError(f"the topic {topic} was created on {bootstrap} but did not show {partitions} partitions")


Progress = Callable[[int, int], None]
"""Called with (records sent, records in total) as messages go out."""
Sent = Callable[[Message, int], None]
"""Called with each message handed to the producer and its ``published-ns`` stamp."""


def send(messages: Sequence[Message], *, bootstrap: str, topic: str, dataset: str,
         add_config: Mapping[str, str] | None = None, on_progress: Progress | None = None,
         on_sent: Sent | None = None,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> PublishReport:
    """Produce ``messages`` in order, each not before its due time; wait for every acknowledgement."""
    from connectors.kafka.producer import KafkaSink

    settings = {"linger.ms": "5", "batch.size": "1000000", "message.max.bytes": str(MAX_MESSAGE_BYTES + 46_000),
                "queue.buffering.max.kbytes": "262144", **(add_config or {})}
    return send_to_sink(messages, KafkaSink(bootstrap, topic, settings), topic=topic, dataset=dataset,
                        on_progress=on_progress, on_sent=on_sent, clock=clock, sleep=sleep)


class Sink(Protocol):
    """A producer (``connectors.databento_live.MessageSink``'s shape) that also counts what failed."""

    failed: int

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], records: int) -> None: ...
    def flush(self) -> object: ...  # waits for every acknowledgement


def send_to_sink(messages: Sequence[Message], sink: Sink, *, topic: str, dataset: str,
                 on_progress: Progress | None = None, on_sent: Sent | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> PublishReport:
    """Pace ``messages`` into any sink (Kafka's, or the AMQP producer): each message not before
    its due time, then one flush that waits for every acknowledgement."""
    total = sum(len(m.records) for m in messages)
    sent_records = sent_bytes = biggest = 0
    by_schema: dict[str, int] = {}
    started = clock()
    for m in messages:
        wait = started + m.due_s - clock()
        if wait > 0:
            sleep(wait)
        value = m.raw if m.raw is not None else encode_records(m.records)
        stamp = time.time_ns()
        sink.send(m.key, value, encode_headers(3, dataset, stamp), len(m.records))
        if on_sent is not None:
            on_sent(m, stamp)
        sent_records += len(m.records)
        sent_bytes += len(value)
        biggest = max(biggest, len(value))
        if m.raw is None:
            by_schema[m.schema] = by_schema.get(m.schema, 0) + len(m.records)
        if on_progress is not None:
            on_progress(sent_records, total)
    sink.flush()
    faults = sum(1 for m in messages if m.raw is not None)
    return PublishReport(topic, sent_records, len(messages), sent_bytes, clock() - started, by_schema, biggest,
                         faults, sink.failed)


def publish_files_amqp(paths: Sequence[Path | str], connection: str, hub: str, speed: float | None = None, *,
                       window_ms: float = DEFAULT_WINDOW_MS, max_idle_s: float | None = None,
                       max_bytes: int | None = None, on_progress: Progress | None = None) -> PublishReport:
    """:func:`publish_files` onto an event hub over AMQP (the Basic tier): same schedule and keys,
    events of at most ``max_bytes`` of records (default: under the Basic tier's 256 KB)."""
    from connectors.databento_live import IngestCounts
    from connectors.eventhubs_amqp.producer import AMQP_RECORD_BYTES, AmqpMessageSink

    loaded = load_files(_publishable(paths))
    messages = schedule(loaded, speed=speed, window_ms=window_ms, max_idle_s=max_idle_s,
                        max_bytes=max_bytes or AMQP_RECORD_BYTES)
    sink = AmqpMessageSink(connection, hub, IngestCounts())
    try:
        sink.check()
        report = send_to_sink(messages, sink, topic=hub, dataset=loaded.dataset, on_progress=on_progress)
    finally:
        sink.close()
    if report.failed:
        raise SourceError(f"{report.failed} message(s) were not accepted by the event hub {hub}; it is incomplete")
    return report


def _publishable(paths: Sequence[Path | str]) -> list[Path]:
    from connectors.dbn.source import resolve_inputs

    return [p for p in resolve_inputs([str(p) for p in paths]) if "/truth/" not in p.as_posix()]


def publish_files(paths: Sequence[Path | str], bootstrap: str, topic: str, speed: float | None = None, *,
                  partitions: int = 4, window_ms: float = DEFAULT_WINDOW_MS, max_idle_s: float | None = None,
                  add_config: Mapping[str, str] | None = None, create_topic: bool = True,
                  on_progress: Progress | None = None, max_bytes: int = RECORD_BYTES_PER_MESSAGE) -> PublishReport:
    """Replay DBN files (files, directories or globs) onto ``topic``; see the module docstring."""
    loaded = load_files(_publishable(paths))
    ensure_topic(bootstrap, topic, partitions, add_config, create=create_topic)
    messages = schedule(loaded, speed=speed, window_ms=window_ms, max_idle_s=max_idle_s, max_bytes=max_bytes)
    report = send(messages, bootstrap=bootstrap, topic=topic, dataset=loaded.dataset, add_config=add_config,
                  on_progress=on_progress)
    if report.failed:
        raise SourceError(f"{report.failed} message(s) were not acknowledged by {bootstrap}; the topic {topic} "
                          f"is incomplete")
    return report
