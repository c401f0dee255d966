"""Bad input on the topic lands in bronze.mbo_dlq with a reason and topic/partition/offset; the
rest of the topic is processed (SPEC §2.3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from connectors.dbn.reader import DbnFileReader
from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ, SILVER_BOOK_1S
from connectors.kafka.codec import encode_headers, encode_records, instrument_key, json_envelope
from connectors.topic.positions import offset_of


def _records(sample_dir: Path, schema: str) -> np.ndarray:
    path = sorted(sample_dir.glob(f"*.{schema}.dbn.zst"))[0]
    reader = DbnFileReader(path)
    try:
        return reader.read(1_000_000)
    finally:
        reader.close()


def bad_messages(sample_dir: Path) -> tuple[int, np.ndarray, np.ndarray, list[tuple[bytes, int]]]:
    """The front instrument, its first 2,000 MBO records, the record given an unknown instrument,
    and eight messages, (value, records expected in bronze.mbo), with every kind of bad input
    between good ones; shared with the AMQP test, which sends the same."""
    definitions = _records(sample_dir, "definition")
    mbo = _records(sample_dir, "mbo")
    front = int(mbo["instrument_id"][0])
    mine = mbo[mbo["instrument_id"] == front][:2_000]
    unknown = mine[100:101].copy()
    unknown["instrument_id"] = 999_999  # never defined on the topic
    garbage = np.random.default_rng(7).integers(0, 256, 300, dtype=np.uint8).tobytes()
    garbage = bytes([0x03, 0x77]) + garbage  # a 12-byte record of rtype 0x77: not one we read
    missing = json.loads(json_envelope(mine[1500:1501]).decode())
    del missing["price"]
    return front, mine, unknown, [
        (encode_records(definitions), 0),                                  # offset 0
        (encode_records(mine[:1000]), 1000),                               # 1
        (garbage, 0),                                                      # 2: random bytes
        (encode_records(mine[1000:1500])[: 56 * 2 + 30], 2),               # 3: truncated DBN after 2 records
        (json.dumps(missing).encode(), 0),                                 # 4: JSON lacking price
        (encode_records(unknown), 0),                                      # 5: valid record, unknown instrument
        (json_envelope(mine[1500:1600], "GLBX.MDP3"), 100),                # 6: good JSON lines
        (encode_records(mine[1600:]), len(mine) - 1600),                   # 7
    ]


def assert_bad_messages_handled(lake, source: str, where: str, mine: np.ndarray, unknown: np.ndarray,
                                messages: list[tuple[bytes, int]]) -> None:
    """``bad_messages`` read back: four dead letters at their positions with reason, detail and raw
    bytes, every good record in Bronze in order, books built, the manifest counting 3 faults."""
    dlq = lake.read(BRONZE_MBO_DLQ).sort_by("source_offset").to_pylist()
    got = [(row["source"], offset_of(row["source_offset"]), row["source_offset"] & 0xFFFFF, row["reason"])
           for row in dlq]
    assert got == [
        (source, 2, 0, "unknown_rtype"),
        (source, 3, 2, "truncated_record"),
        (source, 4, 0, "json_missing_field"),
        (source, 5, 0, "unknown_instrument"),
    ]
    for row in dlq[:3]:
        assert row["detail"].startswith(f"{where}@{offset_of(row['source_offset'])}: ")
        assert row["raw"]
    assert dlq[0]["raw"] == messages[2][0][:4096]            # the garbage
    assert dlq[1]["raw"] == encode_records(mine[1000:1500])[56 * 2 : 56 * 2 + 30]
    assert b'"order_id"' in dlq[2]["raw"] and "price" in dlq[2]["detail"]
    assert dlq[3]["instrument_id"] == 999_999 and dlq[3]["raw"] == encode_records(unknown)

    bronze = lake.read(BRONZE_MBO, ["source_offset", "order_id", "ts_recv"]).sort_by("source_offset")
    assert bronze.num_rows == sum(n for _, n in messages)
    assert sorted({offset_of(o) for o in bronze["source_offset"].to_pylist()}) == [1, 3, 6, 7]
    kept = np.concatenate([mine[:1000], mine[1000:1002], mine[1500:]])
    assert bronze["ts_recv"].to_numpy().tolist() == kept["ts_recv"].astype(np.int64).tolist()
    assert lake.read(SILVER_BOOK_1S).num_rows > 0
    manifest = lake.read(BRONZE_MANIFEST).to_pylist()
    assert [(m["source"], m["faults"], m["status"]) for m in manifest] == [(source, 3, "complete")]


def test_bad_messages_become_dead_letters_and_the_rest_is_processed(
        sample_dir: Path, kafka_broker, topic: str, kafka_replay, tmp_path: Path) -> None:
    front, mine, unknown, messages = bad_messages(sample_dir)
    kafka_broker.create_topic(topic, 1)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i, (value, _) in enumerate(messages):
        headers = None if i in (4, 6) else encode_headers(3, "GLBX.MDP3")  # JSON from a foreign producer
        producer.produce(topic, value=value, key=instrument_key(front), headers=headers)  # type: ignore[arg-type]  # confluent_kafka's stub: list[tuple[str, str | bytes | None]] (list is invariant)
    assert producer.flush(10) == 0

    lake = kafka_replay(topic, tmp_path / "lake")

    assert_bad_messages_handled(lake, f"kafka:{topic}/0", f"{topic}/0", mine, unknown, messages)


def test_a_timestamp_a_day_ahead_is_a_dead_letter_on_the_topic_as_in_the_file(
        sample_dir: Path, kafka_broker, topic: str, kafka_replay, replay, tmp_path: Path) -> None:
    """One record of a day's file says it is from the next session. In the file its timestamp is
    outside the file's sessions; on the topic it jumps ahead between records of the current session
    (it used to close that session: every record after it then reopened the session, and the
    prior-session join died on a session summarized twice). Both give the same tables."""
    from connectors.delta.tables import ALL_TABLES
    from replay.publish import publish_files
    from tests.conftest import lake_differences
    from tests.flows.dbn_edit import split_mbo_file, write_mbo_file
    from tests.topic.test_parity import DROPPED

    day = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / day.name.replace(".mbo.", ".definition.")).write_bytes(
        day.with_name(day.name.replace(".mbo.", ".definition.")).read_bytes())
    header, records = split_mbo_file(day)
    at = int(np.flatnonzero(records["action"] == b"T")[len(records) // 40])  # a trade: the book does not see it
    records[at]["ts_recv"] += np.uint64(86_400 * 10**9)
    write_mbo_file(inputs / day.name, header, records)
    publish_files([inputs], kafka_broker.bootstrap, topic, None, partitions=2)

    topic_lake = kafka_replay(topic, tmp_path / "topic_lake")
    file_lake = replay([inputs], tmp_path / "file_lake")

    for lake in (topic_lake, file_lake):
        [letter] = lake.read(BRONZE_MBO_DLQ).to_pylist()
        assert (letter["reason"], letter["raw"]) == ("bad_timestamp", records[at : at + 1].tobytes())
    assert "jumps to session" in topic_lake.read(BRONZE_MBO_DLQ)["detail"][0].as_py()
    tables = [s for s in ALL_TABLES if s.name.startswith(("silver.", "gold."))]
    assert lake_differences(topic_lake, file_lake, tables, DROPPED) == []
