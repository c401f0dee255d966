"""Kappa parity over AMQP: the sample published to the stand-in namespace with
``publish_files_amqp`` and read by the flow in bounded mode (``?transport=amqp``) gives the same
Silver and Gold tables, every one of them, as the file replay of the same files. The comparison
(and the columns it leaves out, each for a reason that is not a difference in results) is the
Kafka parity test's (``tests/kafka/test_parity.py``).

Published with one-minute windows (about 2,700 events instead of 30,000 with one-second ones) to
keep the run short: the stand-in is a Python process and the pure-python AMQP client costs about
half a millisecond per event. Windows change how records are grouped into events, not the tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.delta.tables import BRONZE_DEFINITIONS, BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ, BRONZE_STATISTICS
from connectors.eventhubs_amqp.producer import AMQP_RECORD_BYTES
from replay.publish import publish_files_amqp
from tests.conftest import table_content
from tests.kafka.test_parity import DROPPED, SILVER_GOLD
from tests.services.eventhubs_amqp import StandIn

WINDOW_MS = 60_000.0


@pytest.fixture(name="parity_lakes", scope="module")
def fixture_parity_lakes(sample_dir: Path, eventhubs: StandIn, tmp_path_factory: pytest.TempPathFactory):
    from dataclasses import replace

    from flows.app import prepare
    from flows.runner import run_flow
    from tests.amqp.conftest import amqp_url
    from tests.conftest import app_config

    report = publish_files_amqp([sample_dir], eventhubs.connection_string(), "parity", None, window_ms=WINDOW_MS)
    files = prepare(app_config([sample_dir], tmp_path_factory.mktemp("file_lake")))
    run_flow(files)
    cfg = app_config([amqp_url(eventhubs, "parity")], tmp_path_factory.mktemp("amqp_lake"))
    hub_run = prepare(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True,
                                                  eventhubs_connection=eventhubs.connection_string())))
    run_flow(hub_run)
    return report, files.lake, hub_run.lake


@pytest.mark.slow
@pytest.mark.parametrize("spec", SILVER_GOLD, ids=lambda s: s.name)
def test_hub_gives_the_file_replay_tables(parity_lakes, spec) -> None:
    _report, file_lake, hub_lake = parity_lakes
    expected = table_content(file_lake, spec, DROPPED)
    got = table_content(hub_lake, spec, DROPPED)
    assert got.num_rows == expected.num_rows
    assert got.equals(expected)


@pytest.mark.slow
def test_parity_is_not_vacuous(parity_lakes) -> None:
    _report, _file_lake, hub_lake = parity_lakes
    counts = {s.name: hub_lake.read(s).num_rows for s in SILVER_GOLD}
    for name in ("silver.book_snapshot_1s", "silver.bar_5s", "silver.session_levels", "silver.level_approach",
                 "gold.setup_vectors", "gold.labels"):
        assert counts[name] > 0, name


@pytest.mark.slow
def test_hub_bronze_holds_every_published_record(parity_lakes) -> None:
    """Bronze keeps every record, positioned by sequence number, from every partition of the hub."""
    report, file_lake, hub_lake = parity_lakes
    assert report.failed == 0 and report.max_message_bytes <= AMQP_RECORD_BYTES
    assert hub_lake.read(BRONZE_MBO).num_rows == report.by_schema["mbo"] == file_lake.read(BRONZE_MBO).num_rows
    assert hub_lake.read(BRONZE_STATISTICS).num_rows == report.by_schema["statistics"]
    assert hub_lake.read(BRONZE_DEFINITIONS).num_rows == report.by_schema["definition"]
    assert hub_lake.read(BRONZE_MBO_DLQ).num_rows == 0
    sources = set(hub_lake.read(BRONZE_MBO, ["source"])["source"].to_pylist())
    assert sources and all(s.startswith("eventhubs:parity/") and s.rsplit("/", 1)[1].isdigit() for s in sources)
    manifest = hub_lake.read(BRONZE_MANIFEST).to_pylist()
    assert sorted(m["source"] for m in manifest) == [f"eventhubs:parity/{p}" for p in range(4)]
    assert all(m["status"] == "complete" for m in manifest)
