"""``spymaster train`` without a snapshot explains what to do instead of failing obscurely."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main


def test_train_without_snapshot_suggests_spymaster_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--lake", str(tmp_path / "lake"), "--model-id", "ES_MODEL"])
    out = capsys.readouterr().out

    assert code == 1
    assert "No training snapshot of ES_MODEL" in out
    assert "spymaster snapshot --model-id ES_MODEL" in out


def test_snapshot_of_an_empty_lake_is_a_one_sentence_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["snapshot", "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err

    assert code == 2
    assert err.startswith("spymaster snapshot: ") and "run `spymaster replay` into this lake first" in err
