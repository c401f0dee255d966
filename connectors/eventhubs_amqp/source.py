"""An event hub read over AMQP as the same Bytewax source as a Kafka topic.

Each Event Hubs partition is a Bytewax partition. Decoding, positions, session ends, dead
letters and the recovery state are the Kafka source's own (``connectors.kafka.source``'s
``TopicPartition`` over an inner reader); only the reader differs:

- **Offset = sequence number.** An event's sequence number grows by one along its partition, so
  it plays the Kafka offset's part: ``source_id`` is ``eventhubs:<hub>/<partition>``, a record's
  position is ``sequence << 20 | index`` and dead letters say ``<hub>/<partition>@<sequence>``.
  The value is the event's body, the headers its application properties (``spymaster-format``,
  ``dbn-version``, ``dataset``, ``published-ns``) as (str, bytes) pairs.
- **Resume** from the snapshot's next sequence number, *inclusive* (``starting_position=n``,
  ``starting_position_inclusive=True``): the event at ``n`` is the first not yet emitted. A
  partition read from the start uses offset ``-1`` (before the first retained event).
- **Bounded mode**: the end is ``last_enqueued_sequence_number + 1`` from
  ``get_partition_properties`` when the partition is first built (an empty partition ends at
  its beginning); it is part of the state, so a resumed bounded run stops at the same place.
  Unlike a Kafka fetch (whose partition EOF the Kafka source takes as the evidence of the end,
  not the broker's ListOffsets answer), an AMQP receive carries no end-of-partition event, so
  the hub's answer is the only evidence there is; the partition's end log line says which
  sequence numbers were read and which end the hub gave (the manifest ``path`` names the former).
- **Tailing mode** ticks like a Kafka partition (``connectors.topic.ticks``): quiet contracts'
  seconds and sessions close on the wall clock.
- The SDK's receive call blocks and calls back, so a background thread per partition runs
  ``receive_batch`` and feeds a bounded queue; ``next_batch`` drains it without waiting (Bytewax
  polls again after ``next_awake``, 5 ms, when it was empty). The thread starts at the first
  ``next_batch`` (a partition already at its end never connects). ``close`` asks it to stop and
  the thread closes its own client at its next callback (``max_wait_time`` makes one at least
  every ``STOP_POLL_S``): the SDK closed from another thread while it receives can re-open the
  link and then wait forever on its keep-alive thread, leaving threads behind at exit. The
  partition state advances only for events ``next_batch`` returned, never for what the thread
  holds, so a snapshot is exact.

Delivery: at-least-once from the source (a resume replays from the last snapshot), exactly-once
into Delta through the sink's per-stream positions, as for Kafka. No consumer-group checkpoints
(the Basic tier has one consumer group; positions live in Bytewax's recovery store).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from connectors.eventhubs_amqp.client import consumer_client, describe, end_sequence, partition_ids
from connectors.topic.input import TopicInput
from connectors.topic.partition import KafkaPartitionState, TopicPartition
from connectors.topic.positions import Item
from operators.errors import ConfigError, SourceError

log = logging.getLogger("spymaster.eventhubs")

QUEUE_BATCHES = 8
"""Received batches held per partition before the receiver waits: bounds memory, not throughput."""
_PUT_WAIT_S = 0.1
STOP_POLL_S = 0.25
"""The longest the receiving thread goes without a callback, so a stop is seen that soon."""
CLOSE_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class AmqpEvent:
    """One event as the Kafka partition logic reads messages (see ``connectors.kafka.source.SourceMessage``)."""

    offset: int
    """The event's sequence number."""
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def as_event(event: Any) -> AmqpEvent:
    """An SDK ``EventData`` → :class:`AmqpEvent` (data body joined; property values as bytes)."""
    body = event.body
    if isinstance(body, bytes | str):
        value = body.encode() if isinstance(body, str) else body
    else:
        try:
            value = b"".join(bytes(part) for part in body)
        except TypeError:  # an AMQP value or sequence body from a foreign producer
            value = str(body).encode()
    headers = tuple((_text(k), v if isinstance(v, bytes) else _text(v).encode())
                    for k, v in (event.properties or {}).items())
    return AmqpEvent(int(event.sequence_number), value, headers)


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class _Receiver(StatefulSourcePartition[AmqpEvent, int | None]):
    """One partition's events in order, read by a background ``receive_batch`` into a bounded queue."""

    def __init__(self, source: TopicInput, partition: str, next_sequence: int | None, batch: int) -> None:
        self._src, self._partition, self._next, self._batch = source, partition, next_sequence, batch
        self._queue: queue.Queue[list[AmqpEvent]] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._stop = threading.Event()
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    def _start(self) -> None:
        self._client = consumer_client(self._src)
        start: int | str = "-1" if self._next is None else self._next
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True,
                                        name=f"eventhubs-{self._src.topic}-{self._partition}")
        self._thread.start()

    def _run(self, start: int | str) -> None:
        try:
            self._client.receive_batch(on_event_batch=self._on_batch, on_error=self._on_error,
                                       partition_id=self._partition, starting_position=start,
                                       starting_position_inclusive=self._next is not None,
                                       max_batch_size=self._batch, prefetch=max(self._batch, 300),
                                       max_wait_time=STOP_POLL_S)
        except Exception as exc:  # noqa: BLE001 - surfaced by next_batch as one sentence
            if not self._stop.is_set():
                self._error = describe(exc, self._src.bootstrap, self._src.topic)

    def _on_batch(self, _context: object, events: Sequence[Any]) -> None:
        batch = [as_event(e) for e in events]
        while batch and not self._stop.is_set():
            try:
                self._queue.put(batch, timeout=_PUT_WAIT_S)
                return
            except queue.Full:
                continue
        if self._stop.is_set():
            self._client.close()  # from this thread: receive_batch returns once the callback does

    def _on_error(self, _context: object, exc: Exception) -> None:
        """The SDK reconnects by itself; say so once per failure (tailing mode rides out outages)."""
        log.warning("%s partition %s: %s", self._src.label, self._partition,
                    describe(exc, self._src.bootstrap, self._src.topic))

    @override
    def next_batch(self) -> list[AmqpEvent]:
        if self._thread is None:
            self._start()
        out: list[AmqpEvent] = []
        while len(out) < self._batch:
            try:
                out.extend(self._queue.get_nowait())
            except queue.Empty:
                break
        if not out and self._error is not None:
            raise SourceError(self._error)
        if out:
            self._next = out[-1].offset + 1
        return out

    @override
    def snapshot(self) -> int | None:
        return self._next

    @override
    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_WAIT_S)
        if self._client is not None and (self._thread is None or self._thread.is_alive()):
            self._client.close()  # the thread never got to a callback (no connection): close it here


class AmqpMboSource(FixedPartitionedSource[Item, KafkaPartitionState]):
    """Every partition of one event hub over AMQP; partitions are named ``<id>-<hub>`` like Kafka's.

    The state is the Kafka source's (``next_offset`` and ``end_offset`` hold sequence numbers).
    """

    def __init__(self, source: TopicInput) -> None:
        if source.transport != "amqp":
            raise ConfigError(f"{source.label or source.topic} is not an AMQP input")
        self._src = source

    @classmethod
    def checked(cls, source: TopicInput) -> AmqpMboSource:
        """The source, once the namespace has answered, accepted the key and shown the hub."""
        try:
            partition_ids(source)
        except SourceError as err:
            raise ConfigError(str(err)) from None
        return cls(source)

    @property
    def input(self) -> TopicInput:
        return self._src

    @override
    def list_parts(self) -> list[str]:
        return [f"{p}-{self._src.topic}" for p in partition_ids(self._src)]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: KafkaPartitionState | None) -> TopicPartition:
        partition = for_part.split("-", 1)[0]
        if resume_state is None:
            end = None
            if self._src.stop_at_end:
                client = consumer_client(self._src, checking=True)
                try:
                    end = end_sequence(client, self._src, partition)
                finally:
                    client.close()
            resume_state = KafkaPartitionState(next_offset=None, end_offset=end)
        inner = _Receiver(self._src, partition, resume_state.next_offset, self._src.batch_messages)
        return TopicPartition(inner, self._src, int(partition), resume_state, prefix="eventhubs")
