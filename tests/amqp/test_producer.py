"""The AMQP producers: keyed like Kafka (an instrument stays on one partition), events under the
Basic tier's 256 KB, every send awaited and counted; read back with the SDK's own consumer."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from connectors.databento_live import IngestCounts, ingest
from connectors.dbn.reader import DbnFileReader
from connectors.eventhubs_amqp.producer import AMQP_RECORD_BYTES, BASIC_TIER_EVENT_BYTES, AmqpMessageSink
from connectors.kafka.codec import Records, decode_message, instrument_key
from operators.errors import SourceError
from replay.publish import publish_files_amqp
from tests.amqp.helpers import read_partition
from tests.services.eventhubs_amqp import StandIn
from tests.typed import only


def _headers(event) -> list[tuple[str, bytes]]:
    return [(k.decode(), v if isinstance(v, bytes) else str(v).encode()) for k, v in event.properties.items()]


def _body(event) -> bytes:
    return b"".join(event.body)


def _read_hub(eventhubs: StandIn, hub: str, partitions: int, expected: int) -> dict[str, list]:
    by_partition = {str(p): read_partition(eventhubs.connection_string(), hub, str(p)) for p in range(partitions)}
    assert sum(len(events) for events in by_partition.values()) == expected
    return by_partition


def test_publish_keeps_each_instrument_on_one_partition_with_its_records_in_order(
        eventhubs: StandIn, sample_dir: Path) -> None:
    day = sorted(p for p in sample_dir.glob("*.dbn.zst") if "20251104" in p.name)
    report = publish_files_amqp(day, eventhubs.connection_string(), "keys", None, window_ms=60_000.0)
    assert report.failed == 0 and report.max_message_bytes <= AMQP_RECORD_BYTES

    by_partition = _read_hub(eventhubs, "keys", 4, report.messages)
    homes: dict[str, set[str]] = defaultdict(set)
    mbo: dict[int, list[np.ndarray]] = defaultdict(list)
    for partition, events in by_partition.items():
        assert [e.sequence_number for e in events] == list(range(len(events)))
        for event in events:
            homes[event.partition_key.decode()].add(partition)
            assert len(_body(event)) <= AMQP_RECORD_BYTES
            for piece in decode_message(_body(event), _headers(event)):
                assert isinstance(piece, Records) and piece.dataset == "GLBX.MDP3"
                assert event.partition_key == instrument_key(int(piece.records["instrument_id"][0]))
                if piece.schema == "mbo":
                    mbo[int(piece.records["instrument_id"][0])].append(piece.records)
    assert len(homes) > 1 and all(len(parts) == 1 for parts in homes.values())
    assert sum(len(r) for rs in mbo.values() for r in rs) == report.by_schema["mbo"]
    files = [DbnFileReader(p) for p in day if p.name.endswith(".mbo.dbn.zst")]
    try:
        ts = np.concatenate([f.read(1_000_000)["ts_recv"] for f in files])
    finally:
        for f in files:
            f.close()
    for records in mbo.values():  # each instrument's records arrive in ts_recv order
        got = np.concatenate(records)["ts_recv"]
        assert (np.diff(got.astype(np.int64)) >= 0).all()
    assert sum(len(np.concatenate(r)) for r in mbo.values()) == len(ts)


def test_events_stay_under_the_basic_tier_limit_and_a_larger_one_is_refused(
        eventhubs: StandIn, sample_dir: Path) -> None:
    report = publish_files_amqp(sorted(sample_dir.glob("*.mbo.dbn.zst"))[:1], eventhubs.connection_string(),
                                "sizes", None, window_ms=1e12)  # one window: each instrument's day, split by size
    events = read_partition(eventhubs.connection_string(), "sizes", "0")
    sizes = [len(_body(e)) for e in events]
    assert len(events) == report.messages and max(sizes) <= AMQP_RECORD_BYTES < BASIC_TIER_EVENT_BYTES
    assert max(sizes) > AMQP_RECORD_BYTES - 100  # the limit was reached, not just respected

    sink = AmqpMessageSink(eventhubs.connection_string(), "sizes", IngestCounts())
    try:
        with pytest.raises(SourceError, match=r"^an event is larger than the event hub sizes at 127\.0\.0\.1:\d+ "
                                              r"accepts \(EventDataBatch has reached its size limit: 262144 bytes"):
            sink.send(b"1", b"\x00" * (BASIC_TIER_EVENT_BYTES + 1), [], 1)
    finally:
        sink.close()


def test_ingest_over_amqp_counts_every_record_and_lands_them_on_the_hub(
        eventhubs: StandIn, sample_dir: Path) -> None:
    reader = DbnFileReader(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    try:
        records = reader.read(5_000)
    finally:
        reader.close()
    counts = IngestCounts()
    sink = AmqpMessageSink(eventhubs.connection_string(), "ingest", counts)
    try:
        assert sink.check() == 2
        ingest(lambda: iter(records), sink, counts, dataset="GLBX.MDP3", window_ms=60_000.0,
               max_bytes=AMQP_RECORD_BYTES)
    finally:
        sink.close()
    assert (counts.received, counts.published, counts.faults, sink.failed) == (5_000, 5_000, 0, 0)
    events = [e for p in ("0", "1") for e in read_partition(eventhubs.connection_string(), "ingest", p)]
    assert len(events) == counts.messages
    got = np.concatenate([piece.records for e in events
                          for piece in only(Records, decode_message(_body(e), _headers(e)))])
    assert sorted(got.tobytes()[i:i + 56] for i in range(0, len(got) * 56, 56)) == sorted(
        records.tobytes()[i:i + 56] for i in range(0, len(records) * 56, 56))
