"""A topic's end offsets, for saying how far behind it a lake is (``spymaster status``).

The broker's ListOffsets answer (the high watermark) is the cheap question, but a broker may answer
short of the end (tansu, our test broker, does after a produce request that held several
messages; ``connectors.topic.partition``), and a monitor that understates lag is worse than none.
So, as the bounded source does, each answer is checked by fetching from it to the partition's EOF:
the end is where that fetch ends, never below the broker's answer. The fetch reads only the
messages the answer left out.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from connectors.kafka.source import partitions_of
from connectors.topic.input import TopicInput
from operators.errors import SourceError

if TYPE_CHECKING:
    from confluent_kafka import Consumer


def end_offsets(source: TopicInput, timeout: float = 5.0) -> dict[int, int]:
    """Partition index → the offset the next message published to it will get.

    One :class:`SourceError` sentence if the broker is not reachable or the topic does not exist.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    indices = partitions_of(source, timeout)
    consumer = Consumer({"bootstrap.servers": source.bootstrap, **source.add_config, "group.id": "spymaster-status",
                         "enable.auto.commit": "false", "enable.partition.eof": "true"})
    try:
        listed = {i: int(consumer.get_watermark_offsets(TopicPartition(source.topic, i), timeout=timeout)[1])
                  for i in indices}
        return _fetched_ends(consumer, source.topic, listed, timeout)
    except KafkaException as exc:
        where = source.label or f"{source.bootstrap}/{source.topic}"
        raise SourceError(f"cannot read the end offsets of {where}: {exc.args[0].str()}") from None
    finally:
        consumer.close()


def _fetched_ends(consumer: Consumer, topic: str, listed: dict[int, int], timeout: float) -> dict[int, int]:
    """Where a fetch from each listed offset meets the partition's EOF (the listed offset, or past
    it). A partition whose EOF does not come within ``timeout`` keeps the furthest offset seen."""
    from confluent_kafka import KafkaError, TopicPartition

    consumer.assign([TopicPartition(topic, i, offset) for i, offset in listed.items()])
    ends, waiting = dict(listed), set(listed)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.1):
            index, offset, error = msg.partition(), msg.offset(), msg.error()
            if index is None or offset is None:
                continue
            if error is None:
                ends[index] = max(ends[index], offset + 1)
            elif error.code() == KafkaError._PARTITION_EOF:
                ends[index] = max(ends[index], offset)
                waiting.discard(index)
    return ends
