"""The live bench's broker-floor consumer: its own process, every message published after it is ready."""

from __future__ import annotations

import time
from pathlib import Path

from connectors.kafka.codec import PUBLISHED_HEADER, encode_headers
from connectors.kafka.producer import KafkaSink
from flows.bench_live import _BrokerFloor
from replay.publish import ensure_topic


def test_the_floor_process_records_each_message_with_its_instrument_and_stamp(kafka_broker, topic: str,
                                                                             tmp_path: Path) -> None:
    ensure_topic(kafka_broker.bootstrap, topic, 2)
    floor = _BrokerFloor(kafka_broker.bootstrap, topic, 100, tmp_path)
    try:
        sink = KafkaSink(kafka_broker.bootstrap, topic)
        stamps = []
        for i in range(20):
            headers = encode_headers(2, "GLBX.MDP3")
            stamps.append((7 + i % 2, int(dict(headers)[PUBLISHED_HEADER])))
            sink.send(str(7 + i % 2).encode(), b"x", headers, 1)
        sink.send(b"not-an-instrument", b"x", encode_headers(2, "GLBX.MDP3"), 1)
        sink.send(b"9", b"x", encode_headers(2, "GLBX.MDP3", published_ns=1), 1)  # from before it listened
        assert sink.flush() == 0
        time.sleep(5)  # delivery, with a 100 ms fetch wait; the floor only writes what it got at stop
    finally:
        floor.stop()
    assert len(floor.latencies_ns) == 21  # not the message stamped before the floor was ready
    assert all(lat >= 0 for lat in floor.latencies_ns)
    assert sorted(floor.received) == sorted(stamps)  # the unkeyed message counts only as a latency
    assert all(floor.received[key] >= key[1] for key in stamps)
