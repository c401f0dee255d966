"""A tee from a Delta table's sink to a Kafka topic: rows as JSON objects, keyed by contract.

The Delta table stays the system of record: the tee wraps the table's own sink (same partitions,
same routing, every item still goes to Delta first) and then publishes the rows the Delta sink
would keep. Each message is one row (``connectors.kafka.outputs.rows_as_json``), keyed by
``contract_id`` so a contract's rows stay in order on one partition, with the headers
``table``, ``stream`` and ``position`` (the row's exactly-once identity in the lake).

Delivery: at-least-once. Rows at or below the stream position already committed to Delta when
the partition started are never published again; rows published but not yet committed when a
process dies are published again on resume, identical (same key, value and headers), so a
consumer that needs exactly-once keeps the last ``(stream, position)`` it saw. The producer is
flushed at every epoch snapshot and at close; a delivery failure stops the flow with a
``SinkError`` naming the topic.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pyarrow as pa
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaException, Producer
from typing_extensions import override

from connectors.delta.lake import Lake
from connectors.delta.sink import DeltaAppendSink, TableWrite
from connectors.delta.tables import TableSpec
from connectors.kafka.outputs import OutputConfig, rows_as_json
from operators.errors import SinkError

_FLUSH_TIMEOUT_S = 30.0


class _TopicTeePartition(StatefulSinkPartition[TableWrite, None]):
    def __init__(self, inner: StatefulSinkPartition[TableWrite, None], producer: Producer, topic: str,
                 lake: Lake, spec: TableSpec) -> None:
        self._inner, self._producer, self._topic = inner, producer, topic
        self._lake, self._spec = lake, spec
        self._published: dict[str, int] = {}
        self._errors: list[str] = []
        self._lock = threading.Lock()

    @override
    def write_batch(self, values: list[TableWrite]) -> None:
        for item in values:  # what earlier runs committed: read before this batch can be committed
            self._published_position(item.stream_id)
        self._inner.write_batch(values)
        for item in values:
            self._publish(item)
        self._producer.poll(0)
        self._raise_delivery_errors()

    @override
    def snapshot(self) -> None:
        self._inner.snapshot()
        self._flush()
        return None

    @override
    def close(self) -> None:
        self._inner.close()
        self._flush()

    def _publish(self, item: TableWrite) -> None:
        if item.rows.num_rows == 0:
            return
        done = self._published_position(item.stream_id)
        keep = item.positions > done
        if not keep.any():
            return
        rows = item.rows if keep.all() else item.rows.filter(pa.array(keep))
        positions = item.positions[keep]
        keys = rows["contract_id"].to_pylist() if "contract_id" in rows.column_names else [None] * rows.num_rows
        table, stream = self._spec.name.encode(), item.stream_id.encode()
        for key, value, pos in zip(keys, rows_as_json(rows), positions.tolist()):
            headers = [("table", table), ("stream", stream), ("position", str(pos).encode())]
            self._produce(key, value, headers)
        self._published[item.stream_id] = int(np.max(positions))

    def _produce(self, key: str | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        while True:
            try:
                self._producer.produce(self._topic, value, key.encode() if key else None, headers=headers,
                                       on_delivery=self._on_delivery)
                return
            except BufferError:  # local queue full: let librdkafka send, then retry
                self._producer.poll(0.05)

    def _published_position(self, stream_id: str) -> int:
        """What a previous run already committed to Delta for this stream (read once per stream)."""
        if stream_id not in self._published:
            table = self._lake.open(self._spec)
            version = None if table is None else table.transaction_version(stream_id)
            self._published[stream_id] = -1 if version is None else int(version)
        return self._published[stream_id]

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            with self._lock:
                self._errors.append(str(err))

    def _flush(self) -> None:
        left = self._producer.flush(_FLUSH_TIMEOUT_S)
        if left:
            msg = f"{left} row(s) for topic {self._topic} were not delivered within {_FLUSH_TIMEOUT_S:.0f} s"
            raise SinkError(msg)
        self._raise_delivery_errors()

    def _raise_delivery_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            msg = f"topic {self._topic} refused {len(errors)} row(s): {errors[0]}"
            raise SinkError(msg)


class TopicTeeSink(FixedPartitionedSink[TableWrite, None]):
    """``inner`` (a table's Delta sink) plus a copy of its rows on ``topic``; see the module doc."""

    def __init__(self, inner: DeltaAppendSink, spec: TableSpec, lake: Lake, topic: str, output: OutputConfig) -> None:
        self.inner, self._spec, self._lake, self._topic, self._output = inner, spec, lake, topic, output
        self.stats = inner.stats

    @override
    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    @override
    def part_fn(self, item_key: str) -> int:
        return self.inner.part_fn(item_key)

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _TopicTeePartition:
        try:
            producer = Producer(self._output.producer_config())
        except KafkaException as err:
            msg = f"cannot configure the producer for topic {self._topic}: {err.args[0].str()}"
            raise SinkError(msg) from None
        inner = self.inner.build_part(step_id, for_part, resume_state)
        return _TopicTeePartition(inner, producer, self._topic, self._lake, self._spec)


def tee_to_topics(sinks: dict[str, Any], lake: Lake, output: OutputConfig, specs: dict[str, TableSpec]) -> dict[str, Any]:
    """``sinks`` with every table named in ``output`` also published to its topic."""
    teed = dict(sinks)
    for table, topic in output.topics:
        teed[table] = TopicTeeSink(sinks[table], specs[table], lake, topic, output)
    return teed
