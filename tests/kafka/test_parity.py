"""Kappa parity: the sample published through a real broker and read by the flow gives the same
Silver and Gold tables as the file replay of the same files.

Columns left out of the comparison, each for a reason that is not a difference in results:

- ``ts_ingest``: wall-clock time of the commit.
- ``data_version``: names the input stream the vector came from (``dbn:<file>#g0`` vs
  ``kafka:<topic>/<partition>#g0``), a source position by design.
- ``latency_ms``, ``scored_at``: wall-clock scoring latency and time (``gold.inference_scores``).
- ``source``, ``source_offset``: source positions (only Bronze has them; listed for safety).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.delta.tables import ALL_TABLES, BRONZE_DEFINITIONS, BRONZE_MBO, BRONZE_MBO_DLQ, BRONZE_STATISTICS
from replay.publish import publish_files
from tests.conftest import table_content

DROPPED = ("ts_ingest", "data_version", "latency_ms", "scored_at", "source", "source_offset")
SILVER_GOLD = [s for s in ALL_TABLES if s.name.startswith(("silver.", "gold."))]
WINDOW_MS = 1_000.0
"""One second of event time per instrument and message: about 30,000 messages of a few
records (the simulated sample has about one event per second and instrument)."""


@pytest.fixture(name="parity_lakes", scope="module")
def fixture_parity_lakes(sample_dir: Path, kafka_broker, tmp_path_factory: pytest.TempPathFactory):
    import uuid
    from dataclasses import replace

    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    topic = f"mbo_raw_{uuid.uuid4().hex[:10]}"
    report = publish_files([sample_dir], kafka_broker.bootstrap, topic, None, partitions=4, window_ms=WINDOW_MS)
    files = prepare(app_config([sample_dir], tmp_path_factory.mktemp("file_lake")))
    run_flow(files)
    cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], tmp_path_factory.mktemp("kafka_lake"))
    topic_run = prepare(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True)))
    run_flow(topic_run)
    return report, files.lake, topic_run.lake


@pytest.mark.slow
@pytest.mark.parametrize("spec", SILVER_GOLD, ids=lambda s: s.name)
def test_topic_gives_the_file_replay_tables(parity_lakes, spec) -> None:
    _report, file_lake, topic_lake = parity_lakes
    expected = table_content(file_lake, spec, DROPPED)
    got = table_content(topic_lake, spec, DROPPED)
    assert got.num_rows == expected.num_rows
    assert got.equals(expected)


@pytest.mark.slow
def test_parity_is_not_vacuous(parity_lakes) -> None:
    """The compared tables hold rows: books, bars, approaches and vectors were all produced."""
    _report, _file_lake, topic_lake = parity_lakes
    counts = {s.name: topic_lake.read(s).num_rows for s in SILVER_GOLD}
    for name in ("silver.book_snapshot_1s", "silver.bar_5s", "silver.session_levels", "silver.level_approach",
                 "gold.setup_vectors", "gold.labels"):
        assert counts[name] > 0, name


@pytest.mark.slow
def test_topic_bronze_holds_every_published_record(parity_lakes, sample_dir: Path) -> None:
    """Bronze keeps every record, positioned by Kafka offset, with the same content as the files'."""
    report, file_lake, topic_lake = parity_lakes
    assert topic_lake.read(BRONZE_MBO).num_rows == report.by_schema["mbo"] == file_lake.read(BRONZE_MBO).num_rows
    assert topic_lake.read(BRONZE_STATISTICS).num_rows == report.by_schema["statistics"]
    assert topic_lake.read(BRONZE_DEFINITIONS).num_rows == report.by_schema["definition"]
    assert topic_lake.read(BRONZE_MBO_DLQ).num_rows == file_lake.read(BRONZE_MBO_DLQ).num_rows == 0
    sources = set(topic_lake.read(BRONZE_MBO, ["source"])["source"].to_pylist())
    assert sources and all(s.startswith("kafka:mbo_raw_") and s.rsplit("/", 1)[1].isdigit() for s in sources)
    drop = ("ts_ingest", "source", "source_offset")
    assert table_content(topic_lake, BRONZE_MBO, drop).equals(table_content(file_lake, BRONZE_MBO, drop))
