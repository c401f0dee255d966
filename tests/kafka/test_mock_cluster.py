"""librdkafka's mock cluster as a broker process: loopback, a real round trip, stopped by PID."""

from __future__ import annotations

import os
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from flows.services.broker import MOCK_KEPT_BYTES, running_mock_cluster
from tests.typed import present


def test_the_mock_cluster_serves_another_process_and_stops_by_pid(tmp_path: Path) -> None:
    with running_mock_cluster(tmp_path / "mock.log") as broker:
        assert broker.bootstrap.startswith("127.0.0.1:") and broker.kept_bytes == MOCK_KEPT_BYTES
        broker.create_topic("ticks", 4)              # a metadata request creates it
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for i in range(30):
            producer.produce("ticks", f"m{i}".encode(), key=b"7")
        assert producer.flush(10) == 0
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "t", "enable.auto.commit": False})
        parts = consumer.list_topics("ticks", timeout=10).topics["ticks"].partitions
        assert len(parts) == 4
        consumer.assign([TopicPartition("ticks", p, 0) for p in parts])
        got: list[bytes] = []
        for _ in range(100):
            got += [present(m.value()) for m in consumer.consume(100, 0.1) if not m.error()]
            if len(got) >= 30:
                break
        consumer.close()
        assert got == [f"m{i}".encode() for i in range(30)]  # one key, one partition: in order
        pid = broker.pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"the mock cluster process {pid} is still running")
