"""Replay from Bronze: ``bronze.mbo`` of a lake fed back through the same graph gives the Silver
and Gold tables of the file replay that wrote it, into another lake or the same one, at any
worker count, and after a SIGKILL and a resume; and it never writes Bronze again.

Columns left out of the comparison, each a source position rather than a result (as in
``tests/topic/test_parity.py``): ``ts_ingest``, ``scored_at`` and ``latency_ms`` (wall clock),
``data_version`` (names the input stream: ``dbn:<file>#g0`` against ``bronze:<session>/<contract>#g0``),
``source`` and ``source_offset``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    CHAIN_TABLES,
    GOLD_SETUP_VECTORS,
    SILVER_BOOK_1S,
    SILVER_GEX_SUMMARY_1S,
)
from flows.app import PreparedRun, prepare
from flows.cli.replay import plan_lines
from flows.config import DateRange, load_config
from flows.jobs.integrity import check_lake
from flows.runner import recovery_config, run_flow
from operators.errors import ConfigError
from operators.options.chain import chain_key
from operators.records import MBO_DTYPE
from operators.vectors.layout import OPTIONS_BLOCK
from tests.conftest import WALL_CLOCK_COLUMNS, app_config, lake_differences, table_content, table_versions
from tests.typed import present

DROPPED = ("ts_ingest", "data_version", "latency_ms", "scored_at", "source", "source_offset")
SILVER_GOLD = [s for s in ALL_TABLES if s.name.startswith(("silver.", "gold."))]
BRONZE = (BRONZE_MBO, BRONZE_MBO_DLQ, BRONZE_DEFINITIONS, BRONZE_STATISTICS)
SLICES = ["bronze:2025-11-03/ESH6", "bronze:2025-11-03/ESZ5", "bronze:2025-11-04/ESH6", "bronze:2025-11-04/ESZ5"]
ROOT = Path(__file__).resolve().parents[2]


def _from_bronze(read: Path, write: Path, *, overwrite: bool = False, dates: str | None = None) -> PreparedRun:
    cfg = app_config([f"bronze://{read}"], write)
    source = replace(cfg.source, dates=DateRange.parse(dates) if dates else None)
    return prepare(replace(cfg, source=source, run=replace(cfg.run, overwrite=overwrite)))


def _version(lake: Path, table: str = "bronze/mbo") -> int:
    return DeltaTable(str(lake / table)).version()


@pytest.fixture(name="file_lake", scope="module")
def fixture_file_lake(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-day sample replayed from its files, as the system of record a Bronze replay reads."""
    root = tmp_path_factory.mktemp("file_lake")
    run_flow(prepare(app_config([sample_dir], root)))
    return root


@pytest.mark.parametrize("workers", [1, 2])
def test_bronze_replay_into_another_lake_gives_the_file_replay_tables(file_lake: Path, tmp_path: Path,
                                                                      workers: int) -> None:
    bronze_version = _version(file_lake)
    prepared = _from_bronze(file_lake, tmp_path / "copy")

    run_flow(prepared, workers=workers)

    got, want = prepared.lake, Lake(str(file_lake))
    assert [s.source_id for s in present(prepared.bronze).slices] == SLICES
    differences = lake_differences(got, want, SILVER_GOLD, DROPPED)
    assert not differences, "\n".join(differences)
    for name in ("silver.book_snapshot_1s", "silver.bar_5s", "silver.session_levels", "silver.level_approach",
                 "gold.setup_vectors", "gold.labels"):
        assert got.read(next(s for s in SILVER_GOLD if s.name == name)).num_rows > 0, name
    assert [got.count(spec) for spec in BRONZE] == [0, 0, 0, 0]  # Silver and Gold only
    assert _version(file_lake) == bronze_version  # the lake read is not written
    manifest = got.read(BRONZE_MANIFEST).to_pylist()
    assert sorted(r["source"] for r in manifest) == SLICES
    assert all(r["status"] == "complete" and r["schema"] == "bronze.mbo" for r in manifest)
    assert sum(r["records"] for r in manifest) == want.count(BRONZE_MBO) == present(prepared.records_read)()
    assert all(r.ok for r in check_lake(got)), check_lake(got)


@pytest.mark.integration
@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_a_bronze_replay_builds_the_option_chains_of_the_file_replay(chain_lake: Lake, tmp_path: Path,
                                                                    workers: int) -> None:
    """One slice per option, many per chain: option tops, the GEX surface and summary, and the
    setup vectors' options block come out as the file replay wrote them."""
    prepared = _from_bronze(Path(chain_lake.root), tmp_path / "copy")
    facts = prepared.plan.chains
    assert facts.any and all(len(sources) > 100 for sources in facts.feeds.values())

    run_flow(prepared, workers=workers)

    differences = lake_differences(prepared.lake, chain_lake, SILVER_GOLD, DROPPED)
    assert not differences, "\n".join(differences)
    for spec in CHAIN_TABLES:
        assert prepared.lake.count(spec) > 0, spec.name
    vectors = np.array(prepared.lake.read(GOLD_SETUP_VECTORS, ["feature_vector"])["feature_vector"].to_pylist())
    assert np.abs(vectors[:, -OPTIONS_BLOCK:]).sum() > 0  # the chain reached the vectors
    assert all(r.ok for r in check_lake(prepared.lake)), check_lake(prepared.lake)

    again = _from_bronze(Path(chain_lake.root), tmp_path / "copy")  # every slice, options too, is finished
    slices = len(present(prepared.bronze).slices)
    assert present(again.bronze).slices == () and len(present(again.bronze).finished) == slices
    redo = _from_bronze(Path(chain_lake.root), tmp_path / "copy", overwrite=True)  # deletes, in one go per table
    assert len(present(redo.bronze).overwritten) == slices
    assert [redo.lake.count(spec) for spec in CHAIN_TABLES] == [0, 0, 0]
    started = [r for r in redo.lake.read(BRONZE_MANIFEST).to_pylist() if r["status"] == "started"]
    assert len(started) == slices and {r["generation"] for r in started} == {1}


def test_a_bronze_replay_builds_the_stock_chain_from_its_consolidated_quotes(tmp_path: Path) -> None:
    """OPRA's quotes (``bronze.cmbp_1``) come back as a slice per session and source feeding the TSLA chain:
    its tops, GEX surface and summary, and the stock's vectors, equal the file replay's; a rerun
    finds the quote slice finished."""
    from replay.equities import TSLA
    from replay.synth import write_sample

    write_sample(tmp_path / "in", days=1, seed=12, events_per_day=20_000, truth=False, options=True, equities=True)
    inputs = sorted(p for p in (tmp_path / "in").glob("*.dbn.zst") if ".options." not in p.name)  # not ES's chain
    files = tmp_path / "files"
    run_flow(prepare(app_config(inputs, files)))
    assert Lake(str(files)).count(SILVER_GEX_SUMMARY_1S) > 0  # the file replay built the stock's chain

    prepared = _from_bronze(files, tmp_path / "copy")
    quotes = [s for s in present(prepared.bronze).slices if s.schema == "cmbp-1"]
    assert len(quotes) == 1 and quotes[0].sources[0].endswith(".cmbp-1.dbn.zst")  # a slice per session and source
    assert quotes[0].source_id == f"bronze:{quotes[0].session_date}/cmbp-1/{quotes[0].sources[0]}"
    assert prepared.plan.chains.feeds == {chain_key(TSLA.instrument_id, quotes[0].session_day):
                                          frozenset({quotes[0].source_id})}
    assert any(line.startswith("and 1 (session, source) partition(s) of consolidated option quotes")
               for line in plan_lines(prepared))
    run_flow(prepared, workers=2)

    differences = lake_differences(prepared.lake, Lake(str(files)), SILVER_GOLD, DROPPED)
    assert not differences, "\n".join(differences)
    summary = prepared.lake.read(SILVER_GEX_SUMMARY_1S, ["underlier"])["underlier"].to_pylist()
    assert summary and set(summary) == {"TSLA"}
    again = _from_bronze(files, tmp_path / "copy")
    assert present(again.bronze).slices == () and quotes[0].source_id in present(again.bronze).finished


def test_bronze_replay_into_its_own_lake_recomputes_only_with_overwrite(file_lake: Path, tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(file_lake, lake_dir)
    want = Lake(str(file_lake))

    kept = _from_bronze(lake_dir, lake_dir)
    run_flow(kept)
    assert present(kept.bronze).slices == () and present(kept.bronze).original == tuple(SLICES)
    assert not lake_differences(kept.lake, want, ALL_TABLES)  # books its files wrote are not written twice

    redone = _from_bronze(lake_dir, lake_dir, overwrite=True)
    run_flow(redone)
    assert present(redone.bronze).overwritten == tuple(SLICES)
    differences = lake_differences(redone.lake, want, SILVER_GOLD, DROPPED)
    assert not differences, "\n".join(differences)
    bronze_differences = lake_differences(redone.lake, want, BRONZE, WALL_CLOCK_COLUMNS)
    assert not bronze_differences, "\n".join(bronze_differences)  # Bronze as it was, sources and all
    versions = set(redone.lake.read(GOLD_SETUP_VECTORS, ["data_version"])["data_version"].to_pylist())
    assert versions and all(v.startswith("bronze:") for v in versions)

    again = _from_bronze(lake_dir, lake_dir, dates="2025-11-04:2025-11-04")
    run_flow(again)
    assert present(again.bronze).slices == () and present(again.bronze).finished == tuple(SLICES[2:])
    assert table_content(again.lake, SILVER_BOOK_1S).equals(table_content(redone.lake, SILVER_BOOK_1S))


def test_one_session_replays_with_the_stored_prior_session(file_lake: Path, tmp_path: Path) -> None:
    """The second day alone, into a lake that holds the first day's Silver: its levels take the
    first day's stored session summary, as they did in the file replay of both days."""
    lake_dir = tmp_path / "lake"
    first_day = _from_bronze(file_lake, lake_dir, dates="2025-11-03:2025-11-03")
    run_flow(first_day)
    second_day = _from_bronze(file_lake, lake_dir, dates="2025-11-04:2025-11-04")
    assert {iid: sorted(d.isoformat() for d in by_date) for iid, by_date in
            second_day.plan.stored_summaries.items()} == {42140864: ["2025-11-03"], 42140878: ["2025-11-03"]}

    run_flow(second_day)

    differences = lake_differences(second_day.lake, Lake(str(file_lake)), SILVER_GOLD, DROPPED)
    assert not differences, "\n".join(differences)


def test_a_record_that_fails_validation_now_becomes_a_dead_letter(sample_dir: Path, tmp_path: Path) -> None:
    """Bronze written by an older, laxer validation: an add of size 0 among one contract's
    records. The replay dead-letters it (with its bytes and its position in the partition) and
    computes the books from the others."""
    import databento as db

    from tests.connectors.test_bronze_source import ESH6, write_bronze

    first = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    records = np.frombuffer(db.DBNStore.from_file(first).to_ndarray().tobytes(), MBO_DTYPE)
    mine = records[records["instrument_id"] == ESH6.instrument_id].copy()
    bad = int(np.flatnonzero((mine["action"] == b"A") & ((mine["flags"] & 32) == 0))[100])

    def zero_size(rows: pa.Table) -> pa.Table:
        sizes = rows["size"].to_numpy().copy()
        sizes[bad] = 0
        return rows.set_column(rows.schema.get_field_index("size"), "size", pa.array(sizes))

    bronze = Lake(str(tmp_path / "bronze"))
    write_bronze(bronze, mine, "dbn:laxer.mbo.dbn", block=1_000, instruments=(ESH6,), edit=zero_size)
    prepared = _from_bronze(tmp_path / "bronze", tmp_path / "out")

    run_flow(prepared)

    [letter] = prepared.lake.read(BRONZE_MBO_DLQ).to_pylist()
    want = mine[bad:bad + 1].copy()
    want["size"] = 0
    assert (letter["source"], letter["source_offset"], letter["reason"]) == ("bronze:2025-11-03/ESH6", bad, "zero_size")
    assert letter["raw"] == want.tobytes()
    assert prepared.lake.count(SILVER_BOOK_1S) > 0
    assert [r["records"] for r in prepared.lake.read(BRONZE_MANIFEST).to_pylist()] == [len(mine)]


def test_a_bronze_input_is_configured_in_one_sentence(tmp_path: Path) -> None:
    cfg = load_config({"SPYMASTER_INPUT": "bronze:///data/lake", "SPYMASTER_LAKE": str(tmp_path)})
    assert cfg.source.bronze_lake == "/data/lake"
    assert load_config({"SPYMASTER_INPUT": "bronze://"}).source.bronze_lake == ""
    assert load_config({"SPYMASTER_INPUT": "data/day.dbn.zst"}).source.bronze_lake is None
    with pytest.raises(ConfigError, match="must be the only input"):
        load_config({"SPYMASTER_INPUT": "bronze://a,data/day.dbn.zst"})
    with pytest.raises(ConfigError, match="not a bronze:// replay"):
        load_config({"SPYMASTER_INPUT": "bronze://a", "SPYMASTER_SPEED": "10"})
    with pytest.raises(ConfigError, match=f"The lake {tmp_path / 'none'} has no bronze.mbo table to replay"):
        prepare(app_config([f"bronze://{tmp_path / 'none'}"], tmp_path / "out"))
    assert not (tmp_path / "none").exists()


def _spymaster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_replay_from_bronze_on_the_command_line(file_lake: Path, tmp_path: Path) -> None:
    """Two processes planned once by the launcher (``--processes``), then a rerun and bad dates."""
    out = tmp_path / "out"
    done = _spymaster("replay", "--from-bronze", "--lake", str(file_lake), "--to-lake", str(out),
                      "--dates", "2025-11-03:2025-11-03", "--processes", "2")
    assert done.returncode == 0, done.stderr
    book = table_content(Lake(str(out)), SILVER_BOOK_1S)
    replayed = set(zip(book["session_date"].to_pylist(), book["instrument_id"].to_pylist(), strict=True))
    assert len(replayed) == 2                        # the first day's two (session, contract) partitions
    first_day = table_content(Lake(str(file_lake)), SILVER_BOOK_1S)
    first_day = first_day.filter(pc.equal(first_day["session_date"], pa.scalar(date(2025, 11, 3), pa.date32())))
    assert book.num_rows > 0 and book.equals(first_day)

    versions = table_versions(Lake(str(out)))
    again = _spymaster("replay", "--from-bronze", "--lake", str(file_lake), "--to-lake", str(out),
                       "--dates", "2025-11-03:2025-11-03")
    assert again.returncode == 0, again.stderr
    assert table_versions(Lake(str(out))) == versions  # both partitions were already replayed: nothing committed
    empty = _spymaster("replay", "--from-bronze", "--lake", str(file_lake), "--dates", "2026-01-05:2026-01-06")
    assert empty.returncode == 2
    assert empty.stderr.strip().splitlines()[-1] == (
        f"spymaster replay: bronze.mbo of {file_lake} has no rows in sessions 2026-01-05 to 2026-01-06 to replay.")


@pytest.fixture(name="pinned_file_lake", scope="module")
def fixture_pinned_file_lake(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample replayed from its files by the plain entry point, with the kill tests' settings
    (an MLflow registry of their own, which the score rows quote)."""
    from tests.flows.conftest import fault_env
    from tests.flows.test_recovery import _run_to_end

    tmp = tmp_path_factory.mktemp("pinned")
    _run_to_end(fault_env(sample_dir, tmp / "lake", tmp), None)
    return tmp / "lake"


@pytest.mark.integration
@pytest.mark.parametrize("with_recovery", [True, False], ids=["bytewax-recovery", "lake-only"])
@pytest.mark.slow
def test_a_killed_bronze_replay_resumes_to_the_file_replay_tables(pinned_file_lake: Path, tmp_path: Path,
                                                                  with_recovery: bool) -> None:
    """SIGKILL once mid-way (after four Silver commits), once right after a (session, contract)
    finished (its manifest row committed), then run to the end."""
    from tests.flows.conftest import fault_env
    from tests.flows.test_recovery import _commits, _run_and_kill, _run_to_end

    lake_dir = tmp_path / "lake"
    env = {**fault_env(Path("unused"), lake_dir, tmp_path), "SPYMASTER_INPUT": f"bronze://{pinned_file_lake}"}
    recovery = tmp_path / "recovery" if with_recovery else None
    if recovery is not None:
        recovery_config(recovery)

    _run_and_kill(env, recovery, lake_dir, after_commits=4, table="silver/book_snapshot_1s")
    killed_at = Lake(str(lake_dir)).count(SILVER_BOOK_1S)
    _run_and_kill(env, recovery, lake_dir, after_commits=_commits(lake_dir, "bronze/raw_manifest") + 1,
                  table="bronze/raw_manifest")
    finished_before = Lake(str(lake_dir)).read(BRONZE_MANIFEST, ["status"])
    _run_to_end(env, recovery)

    resumed, want = Lake(str(lake_dir)), Lake(str(pinned_file_lake))
    assert 0 < killed_at < resumed.count(SILVER_BOOK_1S)
    assert pc.sum(pc.equal(finished_before["status"], "complete")).as_py() >= 1  # the last run skipped it
    differences = lake_differences(resumed, want, SILVER_GOLD, DROPPED)
    assert not differences, "\n".join(differences)
    assert [resumed.count(spec) for spec in BRONZE] == [0, 0, 0, 0]
    assert all(r.ok for r in check_lake(resumed)), check_lake(resumed)
