"""The live bench's broker-floor consumer: its own process, every message published after it is ready."""

from __future__ import annotations

import time
from pathlib import Path

from connectors.kafka.codec import PUBLISHED_HEADER, encode_headers
from connectors.kafka.producer import KafkaSink
from flows.bench.live import _BrokerFloor
from replay.publish import ensure_topic
from tests.typed import present


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
        deadline = time.monotonic() + 60           # the floor has taken all 22 (it writes them at stop)
        while floor.seen() < 22:
            assert time.monotonic() < deadline, f"the floor took {floor.seen()} of 22 messages"
            time.sleep(0.05)
    finally:
        floor.stop()
    assert len(floor.latencies_ns) == 21  # not the message stamped before the floor was ready
    assert all(lat >= 0 for lat in floor.latencies_ns)
    assert sorted(floor.received) == sorted(stamps)  # the unkeyed message counts only as a latency
    assert all(floor.received[key] >= key[1] for key in stamps)


def test_the_publishers_stamps_are_the_headers_on_the_topic(kafka_broker, topic: str, sample_dir: Path) -> None:
    """The bench times deliveries from what the publisher stamped; the topic carries the same stamps."""
    import numpy as np

    from connectors.kafka.codec import Records, decode_message, published_ns
    from flows.bench.live import _consume, _Stamps
    from replay.publish import load_files, schedule, send

    loaded = load_files(sorted(sample_dir.glob("*.dbn.zst"))[:3])
    ensure_topic(kafka_broker.bootstrap, topic, 4)
    stamps = _Stamps()
    send(schedule(loaded, speed=None), bootstrap=kafka_broker.bootstrap, topic=topic, dataset=loaded.dataset,
         on_sent=stamps)
    on_topic: dict[int, list[tuple[int, int]]] = {}
    for msg in _consume(kafka_broker.bootstrap, topic):
        for piece in decode_message(msg.value(), msg.headers()):
            if isinstance(piece, Records) and str(piece.schema) == "mbo":
                iid = int(piece.records["instrument_id"][0])
                sent_ns = present(published_ns(msg.headers()))
                on_topic.setdefault(iid, []).append((int(piece.records["ts_recv"].max()), sent_ns))
    published = stamps.published()
    assert sorted(published) == sorted(on_topic) and on_topic
    for iid, pairs in on_topic.items():
        arr = np.array(pairs, dtype=np.int64)
        running_max, stamp = published[iid]
        assert running_max.tolist() == np.maximum.accumulate(arr[:, 0]).tolist()
        assert stamp.tolist() == arr[:, 1].tolist()


class _Flow:
    def check(self) -> None:
        pass


def test_a_max_speed_publisher_waits_while_it_is_too_far_ahead_of_the_flow() -> None:
    from flows.bench.live import _Ahead

    durable = iter([0, 0, 1_000, 30_000, 60_000])
    polls: list[int] = []

    def bronze() -> int:
        polls.append(1)
        return next(durable)

    ahead = _Ahead(bronze, 64 * 2 * 40_000, _Flow())  # type: ignore[arg-type]  # holds 40,000 records ahead
    ahead(40_000, 100_000)
    assert not polls                                      # at the limit: no wait
    ahead(70_000, 100_000)                                # 70,000 ahead: waits until Bronze holds 30,000
    assert len(polls) == 4
    ahead(95_000, 100_000)                                # 65,000 ahead of 30,000: one more poll
    assert len(polls) == 5
