"""The AMQP source partition: sequence numbers as positions, resume exactly after a snapshot,
bounded ends from the partition properties, dead letters at their sequence number."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from connectors.dbn.reader import DbnFileReader
from connectors.eventhubs_amqp.client import amqp_input
from connectors.eventhubs_amqp.source import AmqpMboSource
from connectors.kafka.codec import encode_headers, encode_records
from connectors.topic.positions import offset_of
from operators.chunks import RecordChunk, SourceEnd, SourceFault
from tests.amqp.helpers import send_to_partition
from tests.kafka.test_source import drain
from tests.services.eventhubs_amqp import StandIn
from tests.typed import present

HEADERS = {k: v.decode() for k, v in encode_headers(3, "GLBX.MDP3")}


def _mbo(sample_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for schema in ("definition", "mbo"):
        reader = DbnFileReader(sorted(sample_dir.glob(f"*.{schema}.dbn.zst"))[0])
        try:
            out.append(reader.read(1_000_000))
        finally:
            reader.close()
    definitions, mbo = out
    iid = int(definitions["instrument_id"][0])
    return definitions[:1], mbo[mbo["instrument_id"] == iid][:300]


def _drain(part) -> list:
    """Every item up to the partition's end, then closed as Bytewax closes it (its receiving thread ends)."""
    try:
        return drain(part, limit=20_000, pause_s=0.002)
    finally:
        part.close()


def _sequences(items: list) -> list[int]:
    return sorted({offset_of(int(p)) for c in items if isinstance(c, RecordChunk) for p in c.record_positions()})


def test_resumed_partition_continues_at_the_next_sequence_number_and_keeps_its_end(
        eventhubs: StandIn, sample_dir: Path) -> None:
    definition, mbo = _mbo(sample_dir)
    values = [encode_records(definition)] + [encode_records(mbo[i:i + 50]) for i in range(0, 300, 50)]
    send_to_partition(eventhubs.connection_string(), "resume", "1", values, [HEADERS] * len(values))
    topic = amqp_input(f"127.0.0.1:{eventhubs.port}", "resume", eventhubs.connection_string(), stop_at_end=True)
    source = AmqpMboSource(replace(topic, batch_messages=3))
    assert source.list_parts() == ["0-resume", "1-resume"]

    first = source.build_part("in", "1-resume", None)
    got: list = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        got.extend(first.next_batch())  # at most 3 events per batch
        time.sleep(0.005)
    state = first.snapshot()
    first.close()
    next_offset = present(state.next_offset)
    assert 0 < next_offset <= 3 and state.end_offset == 7
    assert _sequences(got) == list(range(next_offset))

    send_to_partition(eventhubs.connection_string(), "resume", "1", [encode_records(mbo[:10])], [HEADERS])
    resumed = _drain(source.build_part("in", "1-resume", state))
    assert _sequences(resumed) == list(range(next_offset, 7))  # no repeat, no gap, stops at 7
    end = resumed[-1]
    assert isinstance(end, SourceEnd) and end.final and end.records == 301
    chunks = [i for i in resumed if isinstance(i, RecordChunk)]
    assert all(c.source_id == "eventhubs:resume/1" for c in chunks)
    assert int(definition["instrument_id"][0]) in chunks[0].instruments  # learnt before the snapshot
    got_records = np.concatenate([c.records for c in got + chunks if isinstance(c, RecordChunk) and c.schema == "mbo"])
    assert got_records.tobytes() == mbo.tobytes()


def test_an_empty_partition_ends_at_once_in_bounded_mode(eventhubs: StandIn) -> None:
    source = AmqpMboSource(amqp_input("", "resume", eventhubs.connection_string(), stop_at_end=True))
    items = _drain(source.build_part("in", "0-resume", None))
    assert [(type(i).__name__, i.book_keys, i.final) for i in items] == [("SourceEnd", (), True)]


@pytest.mark.parametrize("garbage", [b"\x05\x99junk-junk-junk-junk"])
def test_undecodable_event_is_a_fault_at_its_sequence_number(eventhubs: StandIn, garbage: bytes) -> None:
    send_to_partition(eventhubs.connection_string(), "config", "1", [garbage], [HEADERS])
    source = AmqpMboSource(amqp_input("", "config", eventhubs.connection_string(), stop_at_end=True))
    items = _drain(source.build_part("in", "1-config", None))
    fault = items[0]
    assert isinstance(fault, SourceFault)
    assert (fault.source_id, fault.record_offset, fault.reason) == ("eventhubs:config/1", 0, "unknown_rtype")
    assert fault.detail.startswith("config/1@0: ") and fault.raw == garbage
