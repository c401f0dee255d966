"""A tee from a Delta table's sink to a Kafka topic: rows as JSON objects, keyed by contract.

The Delta table stays the system of record: the tee wraps the table's own sink (same partitions,
same routing, every item still goes to Delta) and, before handing an item over, publishes the
rows the Delta sink would keep. Each message is one row (``connectors.kafka.outputs.rows_as_json``),
keyed by ``contract_id`` so a contract's rows stay in order on one partition, with the headers
``table``, ``stream`` and ``position`` (the row's exactly-once identity in the lake).

Delivery: at-least-once, with nothing left out across a crash. A row goes to the topic before it
goes to the Delta sink, and the Delta sink's committer flushes the producer before every commit
(on its own thread: the worker never waits for the broker), so a row committed to Delta has been
delivered. Rows at or below the stream position committed to Delta when the partition started
are therefore never published again, and every row above it is: the Delta sink's carry (rows not
yet durable at the snapshot, which the tee passes through as its own state) is published when
the partition is rebuilt, before it can be committed, and the replay after the snapshot brings
the rest. Such rows come again identical (same key, value and headers), so a consumer that needs
exactly-once keeps the last ``(stream, position)`` it saw. A delivery failure stops the flow
with a ``SinkError`` naming the topic, and the commit it gated does not happen.

The tee's state must be the carry: a tee that snapshots nothing drops it, and a crash then loses,
from the table and the topic, the teed rows not yet durable at the last snapshot. And the flush
belongs to the committer: on the worker, at each snapshot, it would stall every epoch end for
the broker's acknowledgements.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaException, Producer
from typing_extensions import override

from connectors.delta.lake import Lake
from connectors.delta.sink import DeltaAppendSink, SinkCarry, TableWrite
from connectors.delta.tables import TableSpec
from connectors.kafka.outputs import OutputConfig, rows_as_json
from operators.errors import SinkError

_FLUSH_TIMEOUT_S = 30.0


class _TopicTeePartition(StatefulSinkPartition[TableWrite, SinkCarry | None]):
    """Publishes, then hands to the table's Delta partition (``attach``); its state is that
    partition's carry."""

    def __init__(self, producer: Producer, topic: str, lake: Lake, spec: TableSpec) -> None:
        self._producer, self._topic = producer, topic
        self._lake, self._spec = lake, spec
        self._inner: StatefulSinkPartition[TableWrite, SinkCarry | None] | None = None
        self._published: dict[str, int] = {}
        self._errors: list[str] = []
        self._produced = self._settled = 0  # rows produced; delivery reports received (either way)
        self._lock = threading.Lock()

    def attach(self, inner: StatefulSinkPartition[TableWrite, SinkCarry | None],
               carried: Sequence[TableWrite] = ()) -> None:
        """Publish what a resumed Delta partition carries (``carried``, before ``inner`` was built,
        so before it can commit them), then write through ``inner``."""
        for item in carried:
            self._publish(item)
        self._inner = inner

    @override
    def write_batch(self, values: list[TableWrite]) -> None:
        assert self._inner is not None
        for item in values:
            self._publish(item)
        self._producer.poll(0)
        self._raise_delivery_errors()
        self._inner.write_batch(values)  # after producing: the commit that takes these rows flushes them first

    @override
    def snapshot(self) -> SinkCarry | None:
        assert self._inner is not None
        self._producer.poll(0)
        self._raise_delivery_errors()
        return self._inner.snapshot()

    @override
    def close(self) -> None:
        assert self._inner is not None
        self._inner.close()
        self.flush()

    def flush(self) -> None:
        """Every row produced before this call delivered, or ``SinkError`` (the Delta committer
        runs it before each commit). Not ``Producer.flush``: that waits for an empty queue, which
        a busy worker producing meanwhile might never leave."""
        with self._lock:
            target = self._produced
        deadline = time.monotonic() + _FLUSH_TIMEOUT_S
        while True:
            with self._lock:
                settled = self._settled
            if settled >= target:
                break
            if time.monotonic() > deadline:
                msg = (f"{target - settled} row(s) for topic {self._topic} were not delivered within "
                       f"{_FLUSH_TIMEOUT_S:.0f} s")
                raise SinkError(msg)
            self._producer.poll(0.01)  # serves delivery reports (from any thread)
        self._raise_delivery_errors()

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
        for key, value, pos in zip(keys, rows_as_json(rows), positions.tolist(), strict=True):  # one of each per row
            headers: list[tuple[str, str | bytes | None]] = [("table", table), ("stream", stream),
                                                             ("position", str(pos).encode())]
            self._produce(key, value, headers)
        self._published[item.stream_id] = int(np.max(positions))

    def _produce(self, key: str | None, value: bytes, headers: list[tuple[str, str | bytes | None]]) -> None:
        while True:
            try:
                self._producer.produce(self._topic, value, key.encode() if key else None, headers=headers,
                                       on_delivery=self._on_delivery)
                with self._lock:
                    self._produced += 1
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
        with self._lock:
            self._settled += 1
            if err is not None:
                self._errors.append(str(err))

    def _raise_delivery_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            msg = f"topic {self._topic} refused {len(errors)} row(s): {errors[0]}"
            raise SinkError(msg)


class TopicTeeSink(FixedPartitionedSink[TableWrite, SinkCarry | None]):
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
    def build_part(self, step_id: str, for_part: str, resume_state: SinkCarry | None) -> _TopicTeePartition:
        try:
            producer = Producer(self._output.producer_config())
        except KafkaException as err:
            msg = f"cannot configure the producer for topic {self._topic}: {err.args[0].str()}"
            raise SinkError(msg) from None
        tee = _TopicTeePartition(producer, self._topic, self._lake, self._spec)
        carried = resume_state.writes() if resume_state is not None else []
        tee.attach(self.inner.build_part(step_id, for_part, resume_state, before_commit=tee.flush), carried)
        return tee


def tee_to_topics(
    sinks: dict[str, Any], lake: Lake, output: OutputConfig, specs: dict[str, TableSpec]
) -> dict[str, Any]:
    """``sinks`` with every table named in ``output`` also published to its topic."""
    teed = dict(sinks)
    for table, topic in output.topics:
        teed[table] = TopicTeeSink(sinks[table], specs[table], lake, topic, output)
    return teed
