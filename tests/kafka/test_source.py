"""The topic source: positions, session closes, bounded ends, resume, configuration and errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from connectors.dbn.reader import DbnFileReader
from connectors.kafka.codec import encode_headers, encode_records
from connectors.kafka.source import KafkaMboSource
from connectors.topic.dispatch import parse_topic_url, topic_source
from connectors.topic.input import TopicInput
from connectors.topic.positions import offset_of, position
from flows.config import load_config
from operators.chunks import RecordChunk, SourceEnd, SourceFault
from operators.errors import ConfigError
from operators.sessions import trade_date_days
from tests.typed import one, present

CONN = ("Endpoint=sb://spy-ns.servicebus.windows.net/;SharedAccessKeyName=listen;"
        "SharedAccessKey=c2VjcmV0c2VjcmV0c2VjcmV0;EntityPath=mbo_raw")


def _read(sample_dir: Path, schema: str, day: int) -> np.ndarray:
    reader = DbnFileReader(sorted(sample_dir.glob(f"*.{schema}.dbn.zst"))[day])
    try:
        return reader.read(1_000_000)
    finally:
        reader.close()


def _produce(broker, topic: str, values: list[bytes], key: bytes = b"1") -> None:
    """One produce request for all ``values`` (the producer's own batching): tansu's ListOffsets
    answer then lags behind the partition's end, which the bounded reads below must not trust."""
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for value in values:
        producer.produce(topic, value=value, key=key,
                         headers=encode_headers(3, "GLBX.MDP3"))  # type: ignore[arg-type]  # confluent_kafka's stub: list[tuple[str, str | bytes | None]] (list is invariant)
    assert producer.flush(10) == 0


def drain(part, limit: int = 10_000, pause_s: float = 0.0) -> list:
    """Every item a source partition gives until it ends (``pause_s`` between polls, for sources
    whose data arrives on another thread)."""
    out: list = []
    for _ in range(limit):
        try:
            out.extend(part.next_batch())
        except StopIteration:
            return out
        if pause_s:
            time.sleep(pause_s)
    raise AssertionError("the partition did not end")


@pytest.fixture(name="two_days")
def fixture_two_days(sample_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    definitions = _read(sample_dir, "definition", 0)
    iid = int(definitions["instrument_id"][0])
    day1, day2 = (_read(sample_dir, "mbo", d) for d in (0, 1))
    return definitions[:1], day1[day1["instrument_id"] == iid][:300], day2[day2["instrument_id"] == iid][:300]


def test_partition_closes_a_session_before_the_next_one_and_ends_at_the_end_offset(
        kafka_broker, topic: str, two_days) -> None:
    definition, day1, day2 = two_days
    kafka_broker.create_topic(topic, 1)
    _produce(kafka_broker, topic, [encode_records(definition), encode_records(day1[:200]),
                                   encode_records(day1[200:]), encode_records(day2)])
    source = KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, stop_at_end=True))
    assert source.list_parts() == [f"0-{topic}"]
    items = drain(source.build_part("in", f"0-{topic}", None))

    kinds = [(type(i).__name__, getattr(i, "schema", None)) for i in items]
    assert kinds == [("RecordChunk", "definition"), ("RecordChunk", "mbo"),  # messages 1 and 2 joined
                     ("SourceEnd", "mbo"), ("RecordChunk", "mbo"), ("SourceEnd", "mbo")]
    iid = int(definition["instrument_id"][0])
    d1, d2 = (int(trade_date_days(d["ts_recv"][:1])[0]) for d in (day1, day2))
    close, end = items[2], items[4]
    assert (close.book_keys, close.final) == ((f"{iid}:{d1}",), False)
    assert (end.book_keys, end.final, end.records, end.faults) == ((f"{iid}:{d2}",), True, 601, 0)
    assert items[1].records.tobytes() == day1.tobytes()
    assert items[1].record_positions().tolist() == [position(1, i) for i in range(200)] + [
        position(2, i) for i in range(100)]
    assert items[3].record_positions().tolist() == [position(3, i) for i in range(300)]
    assert [offset_of(i.first_record) for i in items if isinstance(i, RecordChunk)] == [0, 1, 3]
    assert all(i.source_id == f"kafka:{topic}/0" for i in items)
    assert items[1].instruments[iid].raw_symbol  # learnt from the definition on the topic


def test_resumed_partition_continues_after_its_snapshot_and_keeps_its_end(kafka_broker, topic: str, two_days) -> None:
    definition, day1, _ = two_days
    kafka_broker.create_topic(topic, 1)
    _produce(kafka_broker, topic, [encode_records(definition)] + [encode_records(day1[i:i + 50])
                                                                   for i in range(0, 300, 50)])
    source = KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, stop_at_end=True,
                                       batch_messages=3))
    first = source.build_part("in", f"0-{topic}", None)
    got: list = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        got.extend(first.next_batch())  # at most 3 messages per poll
    state = first.snapshot()
    first.close()
    read = sorted({offset_of(int(p)) for c in got for p in c.record_positions()})
    next_offset = present(state.next_offset)
    assert read == list(range(next_offset)) and 0 < next_offset <= 3
    assert state.eof_offset == 7 and present(state.end_offset) <= 7  # the end a fetch found, whatever ListOffsets said
    _produce(kafka_broker, topic, [encode_records(day1[:10])])  # after the end: a bounded run ignores it
    resumed = drain(source.build_part("in", f"0-{topic}", state))
    chunks = [i for i in resumed if isinstance(i, RecordChunk)]
    later = sorted({offset_of(int(p)) for c in chunks for p in c.record_positions()})
    assert later == list(range(next_offset, 7))
    assert isinstance(resumed[-1], SourceEnd) and resumed[-1].records == 300 + 1
    iid = int(definition["instrument_id"][0])
    assert iid in chunks[0].instruments  # the learnt definition survived the snapshot


def test_an_empty_topic_ends_at_once_in_bounded_mode(kafka_broker, topic: str) -> None:
    kafka_broker.create_topic(topic, 2)
    source = KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, stop_at_end=True))
    for part in source.list_parts():
        items = drain(source.build_part("in", part, None))
        assert [(type(i).__name__, i.book_keys, i.final) for i in items] == [("SourceEnd", (), True)]


def test_undecodable_message_is_a_fault_at_its_position(kafka_broker, topic: str) -> None:
    kafka_broker.create_topic(topic, 1)
    _produce(kafka_broker, topic, [b"\x05\x99junk-junk-junk-junk"])
    items = drain(KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, stop_at_end=True))
                   .build_part("in", f"0-{topic}", None))
    fault = items[0]
    assert isinstance(fault, SourceFault)
    assert (fault.source_id, fault.record_offset, fault.reason) == (f"kafka:{topic}/0", 0, "unknown_rtype")
    assert fault.detail.startswith(f"{topic}/0@0: ") and fault.raw == b"\x05\x99junk-junk-junk-junk"


def test_environment_selects_a_bounded_topic_input() -> None:
    cfg = load_config({"SPYMASTER_INPUT": "kafka://127.0.0.1:9092/mbo_raw", "SPYMASTER_KAFKA_STOP_AT_END": "1"})
    assert cfg.source.inputs == ("kafka://127.0.0.1:9092/mbo_raw",) and cfg.source.kafka_stop_at_end
    topic = parse_topic_url(cfg.source.inputs[0], stop_at_end=True)
    assert (topic.bootstrap, topic.topic, topic.stop_at_end, dict(topic.add_config)) == (
        "127.0.0.1:9092", "mbo_raw", True, {})
    assert not load_config({}).source.kafka_stop_at_end


def test_event_hubs_input_uses_the_connection_string() -> None:
    topic = parse_topic_url("eventhubs://spy-ns/mbo_raw", connection_string=CONN)
    assert (topic.bootstrap, topic.topic) == ("spy-ns.servicebus.windows.net:9093", "mbo_raw")
    assert topic.add_config["security.protocol"] == "SASL_SSL"
    assert topic.add_config["sasl.username"] == "$ConnectionString" and topic.add_config["sasl.password"] == CONN
    assert "c2VjcmV0" not in repr(topic)


def test_fetch_wait_is_chosen_per_broker_in_the_url() -> None:
    plain = parse_topic_url("kafka://127.0.0.1:9092/mbo_raw")
    tuned = parse_topic_url("kafka://127.0.0.1:9092/mbo_raw?fetch_wait_ms=100")
    assert plain.fetch_wait_ms is None and tuned.fetch_wait_ms == 100
    assert tuned.label == plain.label == "kafka://127.0.0.1:9092/mbo_raw"   # the manifest's path has no query


@pytest.mark.parametrize(("url", "conn", "message"), [
    ("kafka://127.0.0.1:9092", "", "is not kafka://HOST:PORT/TOPIC"),
    ("kafka:///mbo_raw", "", "is not kafka://HOST:PORT/TOPIC"),
    ("eventhubs://spy-ns/mbo_raw", "", "needs the namespace's SAS connection string"),
    ("eventhubs://other-ns/mbo_raw", CONN, "names namespace other-ns.servicebus.windows.net"),
    ("eventhubs://spy-ns/trades", CONN, "differs from the connection string's EntityPath"),
    ("pulsar://x/y", "", "is not a topic input"),
    ("kafka://127.0.0.1:9092/mbo_raw?fetch_wait_ms=soon", "", "fetch_wait_ms takes whole milliseconds"),
    ("kafka://127.0.0.1:9092/mbo_raw?linger=1", "", "the query parameters are"),
])
def test_bad_topic_inputs_are_one_sentence(url: str, conn: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_topic_url(url, connection_string=conn)


def test_unreachable_broker_is_one_sentence() -> None:
    cfg = load_config({"SPYMASTER_INPUT": "kafka://127.0.0.1:9/mbo_raw"})
    with pytest.raises(ConfigError, match=r"^the Kafka broker 127\.0\.0\.1:9 for kafka://127\.0\.0\.1:9/mbo_raw "
                                          r"is not reachable .*; check the address and that the broker runs$"):
        topic_source(cfg)


def test_missing_topic_is_one_sentence(kafka_broker) -> None:
    cfg = load_config({"SPYMASTER_INPUT": f"kafka://{kafka_broker.bootstrap}/no_such_topic_here"})
    with pytest.raises(ConfigError, match="^the topic no_such_topic_here does not exist on"):
        topic_source(cfg)


def test_a_partition_state_from_an_older_build_loads_with_the_new_fields_defaults() -> None:
    """Recovery stores pickle the state; one written before the bounded-end and tick fields
    existed (its first 12 values) must still resume."""
    import pickle

    from connectors.topic.partition import KafkaPartitionState

    now = KafkaPartitionState(next_offset=3, end_offset=7, open_keys=("1:20395",), day=20395, ended=False)
    old = KafkaPartitionState.__new__(KafkaPartitionState)
    old.__setstate__(one(list, now.__getstate__())[:12])
    assert old == now and pickle.loads(pickle.dumps(old)) == now
    assert (old.eof_offset, old.first_offset, old.messages, old.event_ns, old.tick_ns) == (None, None, 0, -1, -1)
