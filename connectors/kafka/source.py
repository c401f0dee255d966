"""The Kafka transport of the topic input: Bytewax's ``KafkaSource`` consumers when tailing, an
EOF-aware consumer when bounded, each wrapped in a ``connectors.topic.partition.TopicPartition``.

Each Kafka partition is a Bytewax partition whose consumer uses ``assign()`` (no consumer group, no
offset commits); the partition's position lives in Bytewax's recovery store. Bounded reads and what
they stop at: ``connectors.topic.partition``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import KafkaError as _FetchError
from confluent_kafka import Message
from typing_extensions import override

from connectors.topic.input import TopicInput
from connectors.topic.partition import (  # KafkaPartitionState: recovery stores name it here
    FetchedMessage,
    KafkaPartitionState,
    PartitionEof,
    TopicPartition,
)
from connectors.topic.positions import Item
from operators.errors import SourceError

log = logging.getLogger("spymaster.kafka")


class KafkaMboSource(FixedPartitionedSource[Item, KafkaPartitionState]):
    """Every partition of one topic; partitions are named like Bytewax's (``<index>-<topic>``)."""

    def __init__(self, source: TopicInput, *, metadata_timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._src = source
        self._timeout = metadata_timeout
        self._clock = clock
        self._kafka = KafkaSource([source.bootstrap], [source.topic], tail=True,
                                  add_config={**_fetch_settings(source), **source.add_config},
                                  batch_size=source.batch_messages,
                                  raise_on_errors=True)

    @property
    def input(self) -> TopicInput:
        return self._src

    def _client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self._src.bootstrap, **_fetch_settings(self._src), **self._src.add_config}

    @override
    def list_parts(self) -> list[str]:
        return [f"{i}-{self._src.topic}" for i in partitions_of(self._src, self._timeout)]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: KafkaPartitionState | None) -> TopicPartition:
        index = int(for_part.split("-", 1)[0])
        bounded = self._src.stop_at_end
        if resume_state is None:
            resume_state = self._bounds(index) if bounded else KafkaPartitionState(next_offset=None, end_offset=None)
        inner = (_EofReader(self._client_config(), self._src, index, resume_state.next_offset) if bounded
                 else self._kafka.build_part(step_id, for_part, resume_state.next_offset))
        return TopicPartition(inner, self._src, index, resume_state, until_eof=bounded, clock=self._clock)

    def _bounds(self, index: int) -> KafkaPartitionState:
        """A bounded read's first state: the broker's end offset (ListOffsets) and the end a fetch
        from there finds (its EOF), which is where the read will stop."""
        listed = self._high_watermark(index)
        return KafkaPartitionState(next_offset=None, end_offset=listed, eof_offset=self._fetched_end(index, listed))

    def _fetched_end(self, index: int, listed: int) -> int | None:
        """The partition's end as a fetch from ``listed`` finds it: the offset of its EOF (at least
        ``listed``). None, said in a warning, when no EOF came within the metadata timeout: the
        read then stops at the first EOF it meets at or past ``listed``."""
        reader = _EofReader(self._client_config(), self._src, index, listed, wait_s=0.1)
        deadline = time.monotonic() + self._timeout
        try:
            while time.monotonic() < deadline:
                found = [m.offset for m in reader.next_batch() if isinstance(m, PartitionEof) and m.offset >= listed]
                if found:
                    return found[0]
        finally:
            reader.close()
        log.warning("%s/%d: no partition EOF within %.0f s of reading from offset %d (the broker's end offset); "
                    "the read will stop at the first EOF it meets at or past it", self._src.label or self._src.topic,
                    index, self._timeout, listed)
        return None

    def _high_watermark(self, index: int) -> int:
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        consumer = Consumer(
            {**self._client_config(), "group.id": "spymaster-watermarks", "enable.auto.commit": "false"}
        )
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(self._src.topic, index), timeout=self._timeout)
            return int(high)
        except KafkaException as exc:
            name = self._src.label or self._src.topic
            raise SourceError(f"cannot read the end offsets of {name}: {exc.args[0].str()}") from None
        finally:
            consumer.close()


class _EofReader(StatefulSourcePartition[FetchedMessage | PartitionEof, int | None]):
    """A bounded read of one partition: ``assign()`` (no group, no commits, like Bytewax's own
    consumer) with ``enable.partition.eof``, whose EOF events it passes on as :class:`PartitionEof`
    (Bytewax's partition stops at the first one and does not say where it was)."""

    def __init__(self, config: dict[str, str], source: TopicInput, index: int, start: int | None, *,
                 wait_s: float = 0.001) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._consumer = Consumer({**config, "group.id": "spymaster-bounded", "enable.auto.commit": "false",
                                   "enable.partition.eof": "true"})
        self._consumer.assign([TopicPartition(source.topic, index, OFFSET_BEGINNING if start is None else start)])
        self._where, self._batch, self._next = f"{source.label or source.topic}/{index}", source.batch_messages, start
        self._wait = wait_s

    @override
    def next_batch(self) -> list[FetchedMessage | PartitionEof]:
        out: list[FetchedMessage | PartitionEof] = []
        for msg in self._consumer.consume(self._batch, self._wait):
            error = msg.error()
            if error is None:
                out.append(FetchedMessage(self._offset(msg), msg.value(), msg.headers()))
                self._next = self._offset(msg) + 1
            elif error.code() == _FetchError._PARTITION_EOF:
                out.append(PartitionEof(self._offset(msg)))
            else:
                raise SourceError(f"reading {self._where} failed: {error.str()}")
        return out

    def _offset(self, msg: Message) -> int:
        """A fetched message's (or end-of-partition event's) offset, which librdkafka always sets
        (confluent_kafka types it as optional: other events have none)."""
        offset = msg.offset()
        if offset is None:
            raise SourceError(f"reading {self._where}: librdkafka gave a message without an offset")
        return int(offset)

    @override
    def snapshot(self) -> int | None:
        return self._next

    @override
    def close(self) -> None:
        self._consumer.close()


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
