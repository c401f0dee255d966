"""The ``spymaster`` command as a user runs it: exit codes, files written, what it prints."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from connectors.delta.lake import Lake
from connectors.delta.tables import SILVER_BOOK_1S
from tests.conftest import table_versions

ROOT = Path(__file__).resolve().parents[2]


def spymaster(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_book_writes_mbp10_style_columns(sample_dir: Path, tmp_path: Path) -> None:
    mbo = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    out = tmp_path / "top.parquet"
    done = spymaster("book", str(mbo), "--depth", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.column_names[:3] == ["ts_recv", "instrument_id", "bid_px_00"]
    assert "ask_ct_02" in table.column_names and "bid_px_03" not in table.column_names
    truth = sample_dir / "truth" / mbo.name.replace(".mbo.", ".mbp-10.")
    import databento as db

    expected = db.DBNStore.from_file(truth).to_ndarray()
    assert table.num_rows == len(expected)
    assert np.array_equal(table["bid_px_00"].to_numpy(), expected["bid_px_00"])
    assert np.array_equal(table["ask_sz_02"].to_numpy(), expected["ask_sz_02"].astype(np.int64))


def test_replay_then_check_then_break_the_lake(sample_dir: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    done = spymaster("replay", str(sample_dir), "--lake", str(lake), "--dates", "2025-11-03:2025-11-03")
    assert done.returncode == 0, done.stderr
    book = Lake(str(lake)).read(SILVER_BOOK_1S, ["session_date"])
    assert book.num_rows > 0 and set(book["session_date"].to_pylist()) == {date(2025, 11, 3)}  # --dates held
    checked = spymaster("check", "--lake", str(lake))
    assert checked.returncode == 0, checked.stdout
    assert "FAIL" not in checked.stdout

    versions = table_versions(Lake(str(lake)))
    again = spymaster("replay", str(sample_dir), "--lake", str(lake), "--dates", "2025-11-03:2025-11-03")
    assert again.returncode == 0, again.stderr
    assert table_versions(Lake(str(lake))) == versions  # every file was skipped: nothing committed

    # Append ten rows that are already there: check must notice the duplicated keys and fail.
    from deltalake import write_deltalake

    copied = Lake(str(lake)).read(SILVER_BOOK_1S).slice(0, 10)
    write_deltalake(str(lake / "silver" / "book_snapshot_1s"), copied, mode="append")
    broken = spymaster("check", "--lake", str(lake))
    assert broken.returncode == 1
    assert "FAIL" in broken.stdout and "duplicated keys" in broken.stdout


def test_missing_file_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    done = spymaster("replay", str(tmp_path / "nope.dbn.zst"), "--lake", str(tmp_path / "lake"))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"spymaster replay: The DBN input {tmp_path / 'nope.dbn.zst'} does not exist."


def test_a_bench_asked_for_no_runs_or_no_pages_is_refused_before_it_starts(tmp_path: Path) -> None:
    for flag, value in (("--repeats", "0"), ("--pages", "-1"), ("--repeats", "two")):
        done = spymaster("bench", "--options", flag, value, "--cache", str(tmp_path / "cache"))
        assert done.returncode == 2, (flag, value)
        assert f"argument {flag}:" in done.stderr
        assert not (tmp_path / "cache").exists()  # no simulated day was made
