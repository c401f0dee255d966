"""``spymaster publish``: order, keys, batching, message size and pacing of the live-market simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from connectors.dbn.reader import DbnFileReader
from connectors.kafka.codec import MAX_MESSAGE_BYTES, Records, decode_message, published_ns
from replay.publish import Loaded, load_files, publish_files, schedule
from tests.typed import present


def _file_records(sample_dir: Path, schema: str) -> list[np.ndarray]:
    out = []
    for path in sorted(sample_dir.glob(f"*.{schema}.dbn.zst")):
        reader = DbnFileReader(path)
        out.append(reader.read(10_000_000))
        reader.close()
    return out


@pytest.fixture(name="loaded", scope="module")
def fixture_loaded(sample_dir: Path) -> Loaded:
    return load_files(sorted(sample_dir.glob("*.dbn.zst")))


def test_merge_keeps_every_file_in_order_and_sorts_by_ts_recv(loaded: Loaded, sample_dir: Path) -> None:
    mbo = loaded.by_schema["mbo"]
    files = _file_records(sample_dir, "mbo")
    assert len(mbo) == sum(len(f) for f in files)
    assert (np.diff(mbo["ts_recv"].astype(np.int64)) >= 0).all()
    for f in files:  # each file's records appear in the file's own order
        day = mbo[np.isin(mbo["ts_recv"], f["ts_recv"])]
        assert day.tobytes() == f.tobytes()


def test_schedule_sends_definitions_first_then_mbo_and_statistics_by_event_time(loaded: Loaded) -> None:
    messages = schedule(loaded, speed=None, window_ms=1000)
    order = [m.schema for m in messages]
    first_timed = min(order.index("mbo"), order.index("statistics"))
    assert set(order[:first_timed]) == {"definition"} and "definition" not in order[first_timed:]
    sent = np.maximum.accumulate([int(m.records["ts_recv"].max()) for m in messages[first_timed:]])
    for schema in ("mbo", "statistics"):  # each schema at its own running event time, merged in order
        own = np.maximum.accumulate([int(m.records["ts_recv"].max()) for m in messages if m.schema == schema])
        assert np.array_equal(own, sent[[k for k, s in enumerate(order[first_timed:]) if s == schema]])
    stats = np.concatenate([m.records for m in messages if m.schema == "statistics"])
    assert len(stats) == len(loaded.by_schema["statistics"])
    assert all(m.due_s == 0.0 for m in messages)
    for m in messages:
        assert (m.records["instrument_id"] == m.instrument_id).all()
        assert m.key == str(m.instrument_id).encode()
        span = int(m.records["ts_recv"].max()) - int(m.records["ts_recv"].min())
        assert m.schema != "mbo" or span < 1_000_000_000
    got = np.concatenate([m.records for m in messages if m.schema == "mbo"])
    assert len(got) == len(loaded.by_schema["mbo"])
    for iid in np.unique(got["instrument_id"]):  # per instrument, the exact record sequence
        assert got[got["instrument_id"] == iid].tobytes() == \
            loaded.by_schema["mbo"][loaded.by_schema["mbo"]["instrument_id"] == iid].tobytes()


def test_schedule_paces_on_ts_recv_at_the_speed_factor(loaded: Loaded) -> None:
    speed = 20.0
    messages = schedule(loaded, speed=speed, window_ms=1000)
    mbo = [m for m in messages if m.schema == "mbo"]
    t0 = int(loaded.by_schema["mbo"]["ts_recv"].min())
    seen = t0
    for m in mbo:  # due when the batch's last record is due at speed x real time
        seen = max(seen, int(m.records["ts_recv"].max()))
        assert m.due_s == pytest.approx((seen - t0) / 1e9 / speed, abs=1e-6)
    assert all(m.due_s == 0.0 for m in messages if m.schema == "definition")
    dues = [m.due_s for m in messages]
    assert dues == sorted(dues)
    day = (int(loaded.by_schema["mbo"]["ts_recv"].max()) - t0) / 1e9
    assert mbo[-1].due_s == pytest.approx(day / speed, rel=1e-9)


def test_max_idle_caps_every_wait(loaded: Loaded) -> None:
    capped = schedule(loaded, speed=1.0, window_ms=1000, max_idle_s=2.0)
    waits = np.diff([m.due_s for m in capped])
    assert waits.max() == pytest.approx(2.0)
    assert capped[-1].due_s < schedule(loaded, speed=1.0, window_ms=1000)[-1].due_s / 2


def test_schedule_splits_at_the_size_limit(loaded: Loaded) -> None:
    messages = schedule(loaded, speed=None, window_ms=3_600_000, max_bytes=56 * 50)
    mbo = [m for m in messages if m.schema == "mbo"]
    assert max(len(m.records) for m in mbo) == 50
    assert sum(len(m.records) for m in mbo) == len(loaded.by_schema["mbo"])


def test_publish_puts_every_record_on_the_topic_keyed_by_instrument(sample_dir: Path, kafka_broker, topic: str) -> None:
    report = publish_files([sample_dir], kafka_broker.bootstrap, topic, None, partitions=3, window_ms=60_000)
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "t", "enable.partition.eof": "true"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
    messages: list[Message] = []
    eof: set[int | None] = set()
    while len(eof) < 3:
        for msg in consumer.consume(500, 5):
            if msg.error():
                eof.add(msg.partition())
            else:
                messages.append(msg)
    consumer.close()

    assert len(messages) == report.messages
    by_schema: dict[str, int] = {}
    partition_of: dict[int, set[int]] = {}
    for msg in messages:
        assert len(present(msg.value())) <= MAX_MESSAGE_BYTES
        assert published_ns(msg.headers()) is not None
        (piece,) = decode_message(msg.value(), msg.headers())
        assert isinstance(piece, Records)
        ids = set(piece.records["instrument_id"].tolist())
        assert ids == {int(present(msg.key()))}
        partition_of.setdefault(int(present(msg.key())), set()).add(present(msg.partition()))
        by_schema[piece.schema] = by_schema.get(piece.schema, 0) + len(piece.records)
    assert by_schema == report.by_schema
    assert by_schema["mbo"] == sum(len(f) for f in _file_records(sample_dir, "mbo"))
    assert all(len(parts) == 1 for parts in partition_of.values())  # a contract stays on one partition
    assert report.records == sum(by_schema.values()) and report.failed == 0


def test_publish_command_prints_a_summary(sample_dir: Path, kafka_broker, topic: str, capsys) -> None:
    from flows.cli import main

    files = [str(p) for p in sorted(sample_dir.glob("*.definition.dbn.zst"))]
    code = main(["publish", *files, "--topic", topic, "--bootstrap", kafka_broker.bootstrap, "--max",
                 "--partitions", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"published 4 records in 2 messages (0.0 MB) to {topic}" in out
    assert "records by schema: definition 4;" in out


def test_publish_command_needs_a_broker(capsys) -> None:
    from flows.cli import main

    assert main(["publish", "x.dbn", "--topic", "t"]) == 2
    assert "name the broker with --bootstrap HOST:PORT" in capsys.readouterr().err


def test_publish_to_event_hubs_needs_its_connection_string(capsys, monkeypatch) -> None:
    from flows.cli import main

    monkeypatch.delenv("EVENTHUBS_CONNECTION_STRING", raising=False)
    assert main(["publish", "x.dbn", "--eventhubs"]) == 2
    assert "the Event Hubs connection string is missing" in capsys.readouterr().err


def test_a_damaged_file_tail_is_forwarded_so_the_consumer_dead_letters_it(sample_dir: Path, tmp_path: Path) -> None:
    from connectors.kafka.codec import Undecodable
    from tests.flows.dbn_edit import split_mbo_file, write_mbo_file

    source = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    header, records = split_mbo_file(source)
    kept = 1000
    cut = write_mbo_file(tmp_path / source.name, header, records[:kept].tobytes() + records[kept].tobytes()[:30])

    loaded = load_files([cut])
    assert len(loaded.by_schema["mbo"]) == kept
    (fault,) = loaded.faults
    assert fault.record == kept and fault.raw == records[kept].tobytes()[:30]
    messages = schedule(loaded, speed=None)
    assert [m.raw for m in messages if m.raw is not None] == [fault.raw]
    assert messages[-1].raw == fault.raw  # after every record that came before the damage
    pieces = decode_message(fault.raw, None)
    assert pieces and all(isinstance(p, Undecodable) for p in pieces)
