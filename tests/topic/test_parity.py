"""Kappa parity, for each topic transport: the sample published to a topic and read by the flow
in bounded mode gives the same Silver and Gold tables, every one of them, as the file replay of
the same files, and a Bronze that holds every published record.

- ``kafka``: a real Kafka-protocol broker (tansu), one-second windows (about 30,000 messages of
  a few records: the simulated sample has about one event per second and instrument).
- ``amqp``: the stand-in Event Hubs namespace (``tests/services/eventhubs_amqp.py``) read with
  ``?transport=amqp``, one-minute windows (about 2,700 events) to keep the run short: the
  stand-in is a Python process and the pure-python AMQP client is slow per event. Windows change
  how records are grouped into messages, not the tables.

Columns left out of the comparison, each for a reason that is not a difference in results:

- ``ts_ingest``: wall-clock time of the commit.
- ``data_version``: names the input stream the vector came from (``dbn:<file>#g0`` vs
  ``kafka:<topic>/<partition>#g0``), a source position by design.
- ``latency_ms``, ``scored_at``: wall-clock scoring latency and time (``gold.inference_scores``).
- ``source``, ``source_offset``: source positions (only Bronze has them; listed for safety).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    TableSpec,
)
from flows.config import AppConfig
from replay.publish import PublishReport
from tests.conftest import app_config, table_content

DROPPED = ("ts_ingest", "data_version", "latency_ms", "scored_at", "source", "source_offset")
SILVER_GOLD = [s for s in ALL_TABLES if s.name.startswith(("silver.", "gold."))]
PARTITIONS = 4
TRANSPORTS = ("kafka", "amqp")


@dataclass(frozen=True, slots=True)
class TopicRun:
    """The sample published over one transport and replayed from the topic."""

    transport: str
    report: PublishReport
    lake: Lake
    source_prefix: str
    """Bronze's ``source`` of partition ``p`` is this followed by ``p``."""
    max_message_bytes: int
    """The most record bytes the transport's publisher puts in one message."""


def _kafka(request: pytest.FixtureRequest, sample_dir: Path, lake_dir: Path) -> TopicRun:
    from connectors.kafka.codec import MAX_MESSAGE_BYTES
    from replay.publish import publish_files

    broker = request.getfixturevalue("kafka_broker")
    topic = f"mbo_raw_{uuid.uuid4().hex[:10]}"
    report = publish_files([sample_dir], broker.bootstrap, topic, None, partitions=PARTITIONS, window_ms=1_000.0)
    cfg = app_config([f"kafka://{broker.bootstrap}/{topic}"], lake_dir)
    lake = _run(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True)))
    return TopicRun("kafka", report, lake, f"kafka:{topic}/", MAX_MESSAGE_BYTES)


def _amqp(request: pytest.FixtureRequest, sample_dir: Path, lake_dir: Path) -> TopicRun:
    from connectors.eventhubs_amqp.producer import AMQP_RECORD_BYTES
    from replay.publish import publish_files_amqp
    from tests.amqp.conftest import amqp_url

    eventhubs = request.getfixturevalue("eventhubs")
    report = publish_files_amqp([sample_dir], eventhubs.connection_string(), "parity", None, window_ms=60_000.0)
    cfg = app_config([amqp_url(eventhubs, "parity")], lake_dir)
    lake = _run(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True,
                                            eventhubs_connection=eventhubs.connection_string())))
    return TopicRun("amqp", report, lake, "eventhubs:parity/", AMQP_RECORD_BYTES)


PUBLISH: dict[str, Callable[[pytest.FixtureRequest, Path, Path], TopicRun]] = {"kafka": _kafka, "amqp": _amqp}


def _run(cfg: AppConfig) -> Lake:
    from flows.app import prepare
    from flows.runner import run_flow

    prepared = prepare(cfg)
    run_flow(prepared)
    return prepared.lake


@pytest.fixture(name="file_lake", scope="module")
def fixture_file_lake(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The file replay of the sample: what every transport must reproduce."""
    return _run(app_config([sample_dir], tmp_path_factory.mktemp("file_lake")))


@pytest.fixture(name="topic_run", scope="module", params=TRANSPORTS)
def fixture_topic_run(request: pytest.FixtureRequest, sample_dir: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> TopicRun:
    transport: str = request.param
    return PUBLISH[transport](request, sample_dir, tmp_path_factory.mktemp(f"{transport}_lake"))


@pytest.mark.parametrize("spec", SILVER_GOLD, ids=lambda s: s.name)
def test_topic_gives_the_file_replay_tables(topic_run: TopicRun, file_lake: Lake, spec: TableSpec) -> None:
    expected = table_content(file_lake, spec, DROPPED)
    got = table_content(topic_run.lake, spec, DROPPED)
    assert got.num_rows == expected.num_rows
    assert got.equals(expected)


def test_parity_is_not_vacuous(topic_run: TopicRun) -> None:
    """The compared tables hold rows: books, bars, approaches and vectors were all produced."""
    counts = {s.name: topic_run.lake.read(s).num_rows for s in SILVER_GOLD}
    for name in ("silver.book_snapshot_1s", "silver.bar_5s", "silver.session_levels", "silver.level_approach",
                 "gold.setup_vectors", "gold.labels"):
        assert counts[name] > 0, name


def test_topic_bronze_holds_every_published_record(topic_run: TopicRun, file_lake: Lake) -> None:
    """Bronze keeps every record, positioned by the topic's offsets (Kafka) or sequence numbers
    (Event Hubs), from every partition, with the same content as the files'."""
    report, lake = topic_run.report, topic_run.lake
    assert report.failed == 0 and 0 < report.max_message_bytes <= topic_run.max_message_bytes
    assert lake.read(BRONZE_MBO).num_rows == report.by_schema["mbo"] == file_lake.read(BRONZE_MBO).num_rows
    assert lake.read(BRONZE_STATISTICS).num_rows == report.by_schema["statistics"]
    assert lake.read(BRONZE_DEFINITIONS).num_rows == report.by_schema["definition"]
    assert lake.read(BRONZE_MBO_DLQ).num_rows == file_lake.read(BRONZE_MBO_DLQ).num_rows == 0
    sources = set(lake.read(BRONZE_MBO, ["source"])["source"].to_pylist())
    partitions = [f"{topic_run.source_prefix}{p}" for p in range(PARTITIONS)]
    assert sources and sources <= set(partitions)
    manifest = lake.read(BRONZE_MANIFEST).to_pylist()
    assert sorted(m["source"] for m in manifest) == partitions
    assert all(m["status"] == "complete" for m in manifest)
    drop = ("ts_ingest", "source", "source_offset")
    assert table_content(lake, BRONZE_MBO, drop).equals(table_content(file_lake, BRONZE_MBO, drop))
