"""The whole flow on the simulated sample: tables, determinism, worker counts, reruns."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    SILVER_BOOK_1S,
)
from flows.jobs.integrity import check_lake
from tests.conftest import table_content

COMPARED = [s for s in ALL_TABLES if s is not BRONZE_MANIFEST]


def _mbo_records(sample_dir: Path) -> int:
    import databento as db

    return sum(len(db.DBNStore.from_file(p).to_ndarray()) for p in sorted(sample_dir.glob("*.mbo.dbn.zst")))


@pytest.fixture(name="lake_once", scope="module")
def fixture_lake_once(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    prepared = prepare(app_config([sample_dir], tmp_path_factory.mktemp("lake")))
    run_flow(prepared, workers=1)
    return prepared.lake


def test_bronze_holds_every_mbo_record_once(lake_once, sample_dir: Path) -> None:
    mbo = lake_once.read(BRONZE_MBO, ["source", "source_offset", "contract_id", "underlier", "instrument_type"])
    assert mbo.num_rows == _mbo_records(sample_dir)
    assert lake_once.read(BRONZE_MBO_DLQ).num_rows == 0
    assert set(mbo["contract_id"].to_pylist()) == {"ESZ5", "ESH6"}
    assert set(mbo["underlier"].to_pylist()) == {"ES"}
    assert set(mbo["instrument_type"].to_pylist()) == {"FUT"}


def test_definitions_and_manifest_rows(lake_once, sample_dir: Path) -> None:
    defs = lake_once.read(BRONZE_DEFINITIONS).to_pylist()
    assert {(d["raw_symbol"], d["tick_size"], d["multiplier"]) for d in defs} == {
        ("ESZ5", 250_000_000, 50.0), ("ESH6", 250_000_000, 50.0)}
    manifest = lake_once.read(BRONZE_MANIFEST).to_pylist()
    files = sorted(p.name for p in sample_dir.glob("*.dbn.zst"))
    assert sorted(r["source"] for r in manifest) == [f"dbn:{f}" for f in files]
    assert all(r["status"] == "complete" and len(r["sha256"]) == 64 for r in manifest)


def test_silver_seconds_are_contiguous_and_uncrossed(lake_once) -> None:
    report = {r.name: r for r in check_lake(lake_once)}
    assert all(r.ok for r in report.values()), report
    book = lake_once.read(SILVER_BOOK_1S)
    assert book.num_rows > 2 * 2 * 3600  # two contracts, two sessions, hours of seconds
    assert pc.all(book["book_valid"]).as_py()
    assert (book["ts_recv"].to_numpy() % 1_000_000_000 == 0).all()


def test_replay_twice_gives_identical_tables(sample_dir: Path, tmp_path: Path, replay, lake_once) -> None:
    again = replay([sample_dir], tmp_path / "again")
    for spec in COMPARED:
        assert table_content(again, spec).equals(table_content(lake_once, spec)), spec.name


def test_two_workers_give_identical_tables(sample_dir: Path, tmp_path: Path, replay, lake_once) -> None:
    two = replay([sample_dir], tmp_path / "two", workers=2)
    for spec in COMPARED:
        assert table_content(two, spec).equals(table_content(lake_once, spec)), spec.name


def test_rerun_skips_finished_files_and_overwrite_recomputes(sample_dir: Path, tmp_path: Path, replay) -> None:
    day = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    defs = day.with_name(day.name.replace(".mbo.", ".definition."))
    lake = replay([day, defs], tmp_path / "lake")
    first = table_content(lake, BRONZE_MBO)
    first_silver = table_content(lake, SILVER_BOOK_1S)
    replay([day, defs], tmp_path / "lake")
    assert table_content(lake, BRONZE_MBO).equals(first)
    assert lake.read(BRONZE_MANIFEST).num_rows == 2

    replay([day, defs], tmp_path / "lake", overwrite=True)
    assert table_content(lake, BRONZE_MBO).equals(first)
    assert table_content(lake, SILVER_BOOK_1S).equals(first_silver)
    generations = sorted(r["generation"] for r in lake.read(BRONZE_MANIFEST).to_pylist() if r["status"] == "complete")
    assert generations == [0, 0, 1, 1]


def test_file_without_definitions_replays_from_symbology(sample_dir: Path, tmp_path: Path, replay, lake_once) -> None:
    import shutil

    mbo = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    alone = tmp_path / "in"
    alone.mkdir()
    shutil.copy(mbo, alone / mbo.name)

    lake = replay([alone], tmp_path / "lake")

    mbo_rows = lake.read(BRONZE_MBO, ["contract_id", "underlier", "instrument_type"])
    assert set(mbo_rows["contract_id"].to_pylist()) == {"ESZ5", "ESH6"}
    assert set(mbo_rows["underlier"].to_pylist()) == {"ES"}
    assert set(mbo_rows["instrument_type"].to_pylist()) == {"FUT"}
    # the tick is inferred from the prices, so the book (and its spread in ticks) is unchanged
    mine = table_content(lake, SILVER_BOOK_1S)
    full = table_content(lake_once, SILVER_BOOK_1S)
    assert mine.num_rows > 0
    assert mine.equals(full.filter(pc.equal(full["session_date"], mine["session_date"][0])))
