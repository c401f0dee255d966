"""``make sample`` as a newcomer runs it: ``python -m bytewax.run flows.main`` with nothing
configured, twice, in a working directory of its own (its sample, lake and MLflow registry in tmp).

The first run generates the sample, replays its earlier sessions, trains and registers a champion,
and replays the last session with every episode scored by it; it ends with the summary and three
commands that work. The second run finds everything done: it reuses the champion and writes
nothing (every Delta table keeps its version).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, GOLD_INFERENCE_SCORES, GOLD_SETUP_VECTORS

LAST = date(2025, 11, 10)
HISTORY = (date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 5), date(2025, 11, 6), date(2025, 11, 7))


def _names(days: tuple[date, ...]) -> list[Path]:
    schemas = ("definition", "mbo", "statistics")
    return [Path(f"glbx-mdp3-{d:%Y%m%d}.{schema}.dbn.zst") for d in days for schema in schemas]


def test_the_story_needs_the_built_in_sample_the_local_scorer_and_enough_days(tmp_path: Path) -> None:
    from dataclasses import replace

    from flows.cluster import ProcessIdentity
    from flows.config import DateRange, load_config
    from flows.sample import prepare_history, story_of

    cfg = load_config({"SPYMASTER_SAMPLE": str(tmp_path / "sample"), "SPYMASTER_LAKE": str(tmp_path / "lake")})
    story = story_of(cfg, _names((*HISTORY, LAST)))

    assert story is not None and story.model_id == "ES_MODEL"
    assert (story.history, story.scored) == (DateRange(first=HISTORY[0], last=HISTORY[-1]),
                                             DateRange(first=LAST, last=LAST))
    assert story_of(cfg, _names((*HISTORY[1:], LAST))) is None  # four sessions cannot be split to train on
    assert story_of(replace(cfg, source=replace(cfg.source, dates=DateRange(first=LAST, last=LAST))),
                    _names((*HISTORY, LAST))) is None
    assert story_of(load_config({"SPYMASTER_SCORING_BACKEND": "off"}), _names((*HISTORY, LAST))) is None
    assert story_of(load_config({"SPYMASTER_LAKE": "s3://bucket/lake"}), _names((*HISTORY, LAST))) is None
    for other in (load_config({"SPYMASTER_INPUT": str(tmp_path / "in")}), cfg):
        assert prepare_history(other, ProcessIdentity(0, 2) if other is cfg else ProcessIdentity(0, 1)) is other
    assert not (tmp_path / "sample").exists()  # nothing generated, nothing prepared


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPYMASTER_", "MLFLOW_"))}
    return {**env, "SPYMASTER_SAMPLE": str(home / "sample"), "SPYMASTER_LAKE": str(home / "lake"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=home, env=_env(home), capture_output=True, text=True,
                          timeout=900)


def _versions(lake: Lake) -> dict[str, int | None]:
    return {s.name: (t.version() if (t := lake.open(s)) is not None else None) for s in ALL_TABLES}


def _registered(uri: str) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    from flows.jobs.status import registry_state

    return [(m.versions, m.aliases) for m in registry_state(uri).models]


@pytest.mark.integration
@pytest.mark.slow
def test_make_sample_tells_the_whole_story_once(tmp_path: Path) -> None:
    from connectors.mlflow.tracking import champion_version

    home = tmp_path
    registry = _env(home)["MLFLOW_TRACKING_URI"]
    lake = Lake(str(home / "lake"))

    first = _run(home, "-m", "bytewax.run", "flows.main")

    assert first.returncode == 0, first.stderr[-3000:]
    for step in ("1/3 replaying", "2/3 freezing", "3/3 training"):
        assert step in first.stderr
    assert "committed" in first.stderr and "rows to gold.inference_scores" in first.stderr
    assert "effective configuration" not in first.stderr  # the configuration goes to DEBUG
    champion = champion_version("ES_MODEL", uri=registry)
    assert champion is not None and champion.version == "1"
    scores = lake.read(GOLD_INFERENCE_SCORES).to_pylist()
    vectors = lake.read(GOLD_SETUP_VECTORS, ["episode_id", "session_date"]).to_pylist()
    assert sorted(s["episode_id"] for s in scores) == sorted(v["episode_id"] for v in vectors
                                                            if v["session_date"] == LAST)
    assert {(s["status"], s["model_id"], s["model_version"]) for s in scores} == {("ok", "ES_MODEL", "1")}
    assert all(s["nn_count"] > 0 and len(s["nn_episode_ids"]) == s["nn_count"] for s in scores)

    summary = first.stdout
    assert f"scores ({len(scores)}) by status" in summary and "ES_MODEL version 1" in summary
    assert "dead letters: none" in summary and "try next:" in summary
    commands = summary.split("try next:")[1].strip().splitlines()
    root = str(home / "lake")
    assert len(commands) == 3 and commands[0].split()[1:] == ["status", "--lake", root]
    episode = commands[1].split("--episode ")[1].split()[0]
    assert commands[1].split()[1:] == ["similar", "--episode", episode, "--lake", root]
    assert episode in {s["episode_id"] for s in scores if s["status"] == "ok"}
    snippet = subprocess.run(commands[2].strip(), shell=True, cwd=home, env=_env(home), capture_output=True,
                             text=True, timeout=300)
    assert snippet.returncode == 0, snippet.stderr
    assert episode in snippet.stdout and "p_break" in snippet.stdout
    similar = _run(home, "-m", "flows.cli", "similar", "--episode", episode)
    assert similar.returncode == 0, similar.stderr
    assert f"episode {episode}" in similar.stdout and "model ES_MODEL version 1" in similar.stdout

    before = _versions(lake)
    second = _run(home, "-m", "bytewax.run", "flows.main")

    assert second.returncode == 0, second.stderr[-3000:]
    assert "nothing to replay: the 3 file(s) of 2025-11-10 are already in" in second.stderr
    assert "1/3" not in second.stderr and "3/3" not in second.stderr
    assert _versions(lake) == before  # not one commit: nothing written twice
    assert _registered(registry) == [(("1",), {"champion": "1"})]  # the champion reused, not retrained
    assert "try next:" in second.stdout

    status = _run(home, "-m", "flows.cli", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["lake"] == str(home / "lake")
    assert {name: t["rows"] for name, t in report["tables"].items()} == {
        s.name: lake.read(s).num_rows for s in ALL_TABLES}
    assert {name: t["version"] for name, t in report["tables"].items()} == before
    both = {"ESH6", "ESZ5"}
    assert report["sessions"] == {
        d.isoformat(): {"finished": True, "contracts": {c: {"finished": True, "scored": d == LAST} for c in both}}
        for d in (*HISTORY, LAST)}
    assert report["dead_letters"] == {}
    assert report["registry"]["models"] == {"ES_MODEL": {"versions": ["1"], "aliases": {"champion": "1"},
                                                         "champion": "1"}}
    assert report["live"] is None
