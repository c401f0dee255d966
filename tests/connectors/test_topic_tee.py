"""The topic tee against a real broker and a real Delta table: what a crash must not lose, and
what the table must not hold before the topic has it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.delta.lake import Lake
from connectors.delta.sink import DeltaAppendSink, TableWrite
from connectors.delta.tables import TableSpec
from connectors.kafka.outputs import OutputConfig
from connectors.kafka.sink import TopicTeeSink
from operators.errors import SinkError
from tests.connectors.manual_clock import ManualClock
from tests.typed import headers_of

SPEC = TableSpec("test.setups", pa.schema([pa.field("contract_id", pa.string()), pa.field("stream", pa.string()),
                                           pa.field("position", pa.int64()), pa.field("price", pa.float64())]))


def _write(first: int, n: int, marks: tuple[str, ...] = ()) -> TableWrite:
    pos = np.arange(first, first + n, dtype=np.int64)
    rows = pa.table({"contract_id": ["ESZ5"] * n, "stream": ["s"] * n, "position": pos, "price": pos * 0.25},
                    schema=SPEC.schema)
    return TableWrite("s", rows, pos, marks)


def _tee(lake: Lake, bootstrap: str, topic: str, **client: str) -> TopicTeeSink:
    output = OutputConfig(bootstrap=bootstrap, topics=((SPEC.name, topic),), client=client)
    table = DeltaAppendSink(lake, SPEC, partitions=1, commit_every_s=60.0, clock=ManualClock())  # never due
    return TopicTeeSink(table, SPEC, lake, topic, output)


def _positions_on(bootstrap: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tee-test", "enable.partition.eof": "true"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[int] = []
    try:
        while (msg := consumer.poll(10.0)) is not None and not msg.error():
            out.append(int(headers_of(msg)["position"]))
    finally:
        consumer.close()
    return out


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    lake.ensure(SPEC)
    return lake


@pytest.mark.integration
def test_a_tee_snapshot_carries_the_rows_not_yet_durable_and_a_resume_lands_them_on_table_and_topic(
        lake: Lake, kafka_broker) -> None:
    """The rows written before a snapshot and not committed by the crash come back from the carry
    (the replay brings only what followed the snapshot): on the table once, on the topic too."""
    kafka_broker.create_topic("tee_carry", 1)
    sink = _tee(lake, kafka_broker.bootstrap, "tee_carry")
    part = sink.build_part("setups", sink.list_parts()[0], None)
    part.write_batch([_write(0, 10)])
    carried = part.snapshot()
    assert carried is not None and [w.rows.num_rows for w in carried.writes()] == [10]
    assert lake.count(SPEC) == 0                          # not durable: the commit clock never gets to 60 s

    # the process dies here; the resumed partition gets the carry and the replay after the snapshot
    resumed = sink.build_part("setups", sink.list_parts()[0], pickle.loads(pickle.dumps(carried)))
    resumed.write_batch([_write(10, 5)])
    resumed.close()

    assert sorted(lake.read(SPEC, ["position"])["position"].to_pylist()) == list(range(15))
    assert set(_positions_on(kafka_broker.bootstrap, "tee_carry")) == set(range(15))
    part.close()                                          # its rows are committed by now: nothing more lands
    assert lake.count(SPEC) == 15


@pytest.mark.integration
def test_a_row_the_topic_never_takes_is_never_committed_and_the_flow_stops(lake: Lake) -> None:
    """The committer flushes the topic before each commit: with no broker there, the commit asked
    for by the mark fails with the topic's error instead of landing rows the topic lacks."""
    sink = _tee(lake, "127.0.0.1:1", "tee_nowhere", **{"message.timeout.ms": "1000"})
    part = sink.build_part("setups", sink.list_parts()[0], None)
    part.write_batch([_write(0, 3, marks=("end|s",))])    # a mark asks for a commit at once

    with pytest.raises(SinkError, match="tee_nowhere"):
        part.close()

    assert lake.count(SPEC) == 0
