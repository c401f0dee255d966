"""OPRA's consolidated top of book (``cmbp-1``) lands in ``bronze.cmbp_1`` record for record, the
same from the files and from a topic they were published to (and so does the chain it makes), and
every byte of the file is accounted for."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    BRONZE_CMBP_1,
    BRONZE_DEFINITIONS,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    CHAIN_TABLES,
    SILVER_OPTIONS_TOP_1S,
)
from flows.jobs.accounting import account_for_file
from replay.synth import SampleManifest
from tests.conftest import app_config, table_content
from tests.typed import present

POSITIONS = ("ts_ingest", "source", "source_offset")


@pytest.fixture(name="opra", scope="module")
def fixture_opra(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleManifest, list[Path]]:
    from replay.synth import write_sample

    manifest = write_sample(tmp_path_factory.mktemp("opra"), days=1, seed=21, events_per_day=6_000, truth=False,
                            options=True, equities=True)
    day = manifest.days[0].stock_options
    assert day is not None
    return manifest, list(day.paths())


def _run(cfg) -> Lake:  # noqa: ANN001 - an AppConfig
    from flows.app import prepare
    from flows.runner import run_flow

    prepared = prepare(cfg)
    run_flow(prepared)
    return prepared.lake


@pytest.fixture(name="file_lake", scope="module")
def fixture_file_lake(opra: tuple[SampleManifest, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return _run(app_config(opra[1], tmp_path_factory.mktemp("opra-files")))


def test_every_consolidated_quote_lands_with_the_files_bytes_accounted_for(
        opra: tuple[SampleManifest, list[Path]], file_lake: Lake) -> None:
    manifest, files = opra
    day = present(manifest.days[0].stock_options)
    quotes = next(p for p in files if ".cmbp-1." in p.name)
    account = account_for_file(file_lake, quotes)
    rows = file_lake.read(BRONZE_CMBP_1).to_pylist()

    assert account.problems == () and account.rows == day.quote_records > 1_000
    assert {r["dataset"] for r in rows} == {"OPRA.PILLAR"} and {r["action"] for r in rows} == {"A", "T"}
    assert all(r["bid_px"] < r["ask_px"] for r in rows)  # a market maker's quote never crosses
    trades = [r for r in rows if r["action"] == "T"]
    assert trades and all(r["price"] in (r["bid_px"], r["ask_px"]) for r in trades)
    assert file_lake.count(BRONZE_MBO_DLQ) == 0
    assert file_lake.count(BRONZE_DEFINITIONS) == file_lake.count(BRONZE_STATISTICS) == day.options


def test_the_topic_gives_the_files_rows(opra: tuple[SampleManifest, list[Path]], file_lake: Lake, kafka_broker,
                                        tmp_path: Path) -> None:
    from replay.publish import publish_files

    topic = f"opra_{uuid.uuid4().hex[:8]}"
    report = publish_files([str(p) for p in opra[1]], kafka_broker.bootstrap, topic, None, partitions=2)
    cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], tmp_path / "lake")
    lake = _run(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True)))

    assert report.failed == 0 and report.by_schema["cmbp-1"] == file_lake.count(BRONZE_CMBP_1)
    for spec in (BRONZE_CMBP_1, BRONZE_DEFINITIONS, BRONZE_STATISTICS):
        assert table_content(lake, spec, POSITIONS).equals(table_content(file_lake, spec, POSITIONS)), spec.name
    assert file_lake.count(SILVER_OPTIONS_TOP_1S) > 1_000  # the chain's tops (no stock book here: no GEX)
    for spec in CHAIN_TABLES:  # the quotes' chain, gathered from both partitions by the option relay
        drop = ("ts_ingest", "source", "stream")
        assert table_content(lake, spec, drop).equals(table_content(file_lake, spec, drop)), spec.name


def test_a_bronze_quote_slice_gives_back_the_files_records_byte_for_byte(
        opra: tuple[SampleManifest, list[Path]], file_lake: Lake) -> None:
    """What a replay from Bronze reads (``connectors.bronze.quotes``): the session's slice of the
    quote file, every record as the file reader gives it (DBN v3), in the file's order."""
    import numpy as np

    from connectors.bronze.catalog import QUOTES, pinned_quotes, quote_slices
    from connectors.bronze.quotes import read_quotes
    from connectors.dbn.reader import DbnFileReader, upgrade_to_v3

    quotes = next(p for p in opra[1] if ".cmbp-1." in p.name)
    reader = DbnFileReader(quotes)
    try:
        h = reader.header
        want = upgrade_to_v3(reader.read(10_000_000), "cmbp-1", h.version, h.ts_out)
    finally:
        reader.close()
    table = present(pinned_quotes(file_lake))
    (part,) = quote_slices(table)

    got = read_quotes(table.open(), [part])[part.source_id]

    assert part.schema == QUOTES and part.sources == (f"dbn:{quotes.name}",) and len(want) > 1_000
    assert got.dtype == want.dtype and np.array_equal(got.view(np.uint8), want.view(np.uint8))
