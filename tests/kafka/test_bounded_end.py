"""A bounded topic run reads each partition to the end its fetches reach, whatever ListOffsets says.

tansu 0.6 answers ListOffsets(latest) as if a partition's last produce request had held one
message, short by the rest of that request's batch. The sample is published here with the
producer's own batching (``replay.publish``'s linger and batch size), so that answer really lags,
and the bounded run must still land every record: Bronze, Silver and Gold equal to the file replay.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO
from replay.publish import publish_files
from tests.conftest import lake_differences
from tests.topic.test_parity import DROPPED, SILVER_GOLD
from tests.typed import present

PARTITIONS = 4


def broker_ends(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int]]:
    """Per partition: (ListOffsets' high watermark, the offset at which a fetch reaches EOF)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ends", "enable.partition.eof": "true"})
    try:
        listed = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        eof: dict[int, int] = {}
        deadline = time.monotonic() + 60
        while len(eof) < partitions and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if (error := msg.error()) is not None and error.code() == KafkaError._PARTITION_EOF:
                    eof[present(msg.partition())] = present(msg.offset())
        return [(listed[p], eof[p]) for p in range(partitions)]
    finally:
        consumer.close()


@pytest.fixture(name="batched_lakes", scope="module")
def fixture_batched_lakes(sample_dir: Path, kafka_broker, tmp_path_factory: pytest.TempPathFactory):
    """The sample published with default batching, its broker ends, the file replay and the bounded run."""
    from dataclasses import replace

    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    topic = f"mbo_raw_{uuid.uuid4().hex[:10]}"
    report = publish_files([sample_dir], kafka_broker.bootstrap, topic, None, partitions=PARTITIONS,
                           window_ms=1_000.0)
    ends = broker_ends(kafka_broker.bootstrap, topic, PARTITIONS)
    files = prepare(app_config([sample_dir], tmp_path_factory.mktemp("file_lake")))
    run_flow(files)
    cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], tmp_path_factory.mktemp("kafka_lake"))
    bounded = prepare(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True)))
    run_flow(bounded)
    return topic, report, ends, files.lake, bounded.lake


def test_list_offsets_lags_behind_the_fetched_end_on_this_broker(batched_lakes) -> None:
    """The premise: without it the test below could not fail on a source that trusts ListOffsets."""
    _topic, report, ends, _files, _bounded = batched_lakes
    assert sum(eof for _listed, eof in ends) == report.messages
    assert any(listed < eof for listed, eof in ends), ends


def test_bounded_run_over_a_lagging_list_offsets_gives_the_file_replay_tables(batched_lakes) -> None:
    _topic, report, _ends, file_lake, topic_lake = batched_lakes
    assert topic_lake.count(BRONZE_MBO) == report.by_schema["mbo"] == file_lake.count(BRONZE_MBO)
    differences = lake_differences(topic_lake, file_lake, [BRONZE_MBO, *SILVER_GOLD], DROPPED)
    assert not differences, "\n".join(differences)


def test_bounded_run_says_in_the_manifest_which_offsets_it_read(batched_lakes) -> None:
    topic, _report, ends, _files, topic_lake = batched_lakes
    manifest = {m["source"]: m for m in topic_lake.read(BRONZE_MANIFEST).to_pylist()}
    for p, (_listed, eof) in enumerate(ends):
        read = f"offsets=0..{eof - 1}" if eof else "offsets=none"
        assert manifest[f"kafka:{topic}/{p}"]["path"].endswith(f"/{topic}/{p}#{read}")
