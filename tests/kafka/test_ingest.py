"""``spymaster ingest`` without the network: an injected record stream that fails and resumes,
end-to-end counts, and messages on a real broker that decode to the same records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.databento_live import (
    Backoff,
    IngestCounts,
    KafkaMessageSink,
    LiveBatcher,
    api_key,
    ingest,
    record_parts,
)
from connectors.dbn.reader import DbnFileReader
from connectors.kafka.codec import Records, decode_message
from operators.errors import ConfigError, SourceError
from replay.publish import ensure_topic
from tests.typed import one, only, present


def _read(sample_dir: Path, schema: str) -> np.ndarray:
    reader = DbnFileReader(sorted(sample_dir.glob(f"*.{schema}.dbn.zst"))[0])
    try:
        return reader.read(1_000_000)
    finally:
        reader.close()


def _dbn_objects(records: np.ndarray) -> list[object]:
    """The records as ``databento_dbn`` objects, as ``databento.Live`` yields them."""
    decoder = dbn.DBNDecoder(has_metadata=False, input_version=3)
    decoder.write(records.tobytes())
    return list(decoder.decode())


class _Memory:
    """A message sink that keeps messages in memory (the Kafka sink is tested on the broker)."""

    def __init__(self, counts: IngestCounts) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self._counts = counts

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], records: int) -> None:
        self.messages.append((key, value))
        self._counts.published += records

    def flush(self) -> None:
        return None


def test_ingest_reconnects_and_every_record_reaches_the_topic(sample_dir: Path, kafka_broker, topic: str) -> None:
    definitions = _read(sample_dir, "definition")
    mbo = _read(sample_dir, "mbo")[:3_000]
    attempts: list[int] = []

    def connect() -> Iterator[object]:
        attempts.append(len(attempts))
        if len(attempts) == 1:  # objects, as databento.Live yields them, then the line drops
            yield dbn.SystemMsg(0, "Subscription request 0 for mbo data succeeded")
            yield from _dbn_objects(definitions)
            yield from _dbn_objects(mbo[:1_700])
            raise ConnectionResetError("gateway closed the connection")
        if len(attempts) == 2:
            raise OSError("connection refused")
        yield from (bytes(r.tobytes()) for r in mbo[1_700:2_500])  # raw record bytes
        yield from mbo[2_500:]  # numpy rows

    ensure_topic(kafka_broker.bootstrap, topic, 2)
    counts = IngestCounts()
    delays: list[float] = []
    sink = KafkaMessageSink(kafka_broker.bootstrap, topic, counts)
    ingest(connect, sink, counts, dataset="GLBX.MDP3", window_ms=5_000, backoff=Backoff(0.5, 2.0, 30.0),
           sleep=delays.append)

    assert (counts.sessions, counts.reconnects, delays, counts.delays) == (3, 2, [0.5, 1.0], [0.5, 1.0])
    assert counts.received == 1 + len(definitions) + len(mbo)
    assert (counts.skipped, counts.faults) == (1, 0)
    assert counts.published == len(definitions) + len(mbo) == counts.received - counts.skipped

    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "t", "enable.partition.eof": "true"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(2)])
    by_partition: dict[int, list] = {0: [], 1: []}
    eof: set[int] = set()
    while len(eof) < 2:
        for msg in consumer.consume(500, 5):
            if msg.error():
                eof.add(present(msg.partition()))
            else:
                by_partition[present(msg.partition())].append(msg)
    consumer.close()
    assert sum(len(v) for v in by_partition.values()) == counts.messages
    seen_mbo: list[np.ndarray] = []
    seen_defs: list[np.ndarray] = []
    for msgs in by_partition.values():
        for msg in msgs:
            pieces = decode_message(msg.value(), msg.headers())
            for p in only(Records, pieces):
                assert set(p.records["instrument_id"].tolist()) == {int(present(msg.key()))}
                (seen_mbo if p.schema == "mbo" else seen_defs).append(p.records)
    got = np.concatenate(seen_mbo)
    for iid in np.unique(mbo["instrument_id"]):  # each instrument's records, exactly, in order
        assert got[got["instrument_id"] == iid].tobytes() == mbo[mbo["instrument_id"] == iid].tobytes()
    assert np.concatenate(seen_defs).tobytes() in (definitions.tobytes(), definitions[::-1].tobytes())


def test_definitions_precede_their_instruments_book_events(sample_dir: Path) -> None:
    """One buffer per instrument, in arrival order: a definition is never behind its MBO."""
    definitions, mbo = _read(sample_dir, "definition"), _read(sample_dir, "mbo")[:50]
    counts = IngestCounts()
    sink = _Memory(counts)
    ingest(lambda: [*definitions, *mbo], sink, counts, dataset="X", window_ms=10**9)
    for key, value in sink.messages:
        first = one(Records, decode_message(value, None)[0])
        assert first.schema == "definition"
        assert int(key) == int(first.records["instrument_id"][0])
    assert counts.published == len(definitions) + len(mbo) and counts.messages == len(sink.messages) == 2


def test_ingest_gives_up_after_max_reconnects_in_a_row() -> None:
    counts = IngestCounts()
    delays: list[float] = []

    def connect() -> Iterator[object]:
        raise TimeoutError("gateway did not answer")
        yield  # pragma: no cover

    with pytest.raises(SourceError, match="failed 4 times in a row; last error: gateway did not answer"):
        ingest(connect, _Memory(counts), counts, dataset="X", max_reconnects=3, sleep=delays.append,
               backoff=Backoff(1.0, 2.0, 3.0))
    assert delays == [1.0, 2.0, 3.0]
    assert counts.sessions == 4


def test_batcher_flushes_by_window_and_size() -> None:
    b = LiveBatcher(window_ns=100, max_bytes=30)
    assert b.add(1, 0, b"a" * 10) == []
    assert b.add(2, 50, b"b" * 10) == []
    assert b.add(1, 60, b"c" * 10) == []
    assert b.add(1, 70, b"d" * 15) == [(1, [b"a" * 10, b"c" * 10])]  # 35 bytes would pass 30
    assert b.add(3, 170, b"e") == [(1, [b"d" * 15]), (2, [b"b" * 10])]  # both windows of 100 ns passed
    assert b.drain() == [(3, [b"e"])]


def test_control_records_are_not_published() -> None:
    assert record_parts(dbn.SystemMsg(0, "Heartbeat")) is None
    assert record_parts(b"\x03\x77" + bytes(10)) is None


def test_missing_api_key_is_one_sentence() -> None:
    missing = r"^the Databento API key is missing \(looked for in the environment \(DATABENTO_API_KEY\)"
    with pytest.raises(ConfigError, match=missing):
        api_key({})
    assert api_key({"DATABENTO_API_KEY": " db-abc "}) == "db-abc"
