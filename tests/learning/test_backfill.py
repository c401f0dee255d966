"""``spymaster backfill`` on ten replayed sessions: the steps run in order as the commands a user
types, a failed step is recorded and a rerun starts there, a finished range does nothing again,
and ``champion`` moves only by the rule written into MLflow."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from flows.config import DateRange
from flows.jobs.backfill import RULE, STEPS, BackfillPlan, decide, run_backfill, spymaster
from flows.sample import sample_days
from operators.errors import ConfigError
from tests.typed import present


def test_the_rule_promotes_only_a_strictly_better_challenger_or_replaces_a_missing_or_stale_champion() -> None:
    assert decide(0.90, 0.95).promote and not decide(0.95, 0.95).promote and not decide(0.96, 0.95).promote
    assert decide(0.99, None, has_champion=False).reason == "no champion yet"
    assert decide(1.5, None, champion_current=False).promote  # cannot score today's vectors: replaced
    with pytest.raises(ValueError, match="log-loss"):
        decide(0.9, None)


@pytest.mark.slow
def test_backfill_resumes_at_the_failed_step_and_promotes_by_the_rule(
        multi_day_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from connectors.mlflow.tracking import champion_version

    inputs = Path(multi_day_lake.root).parent / "in"
    lake = tmp_path / "lake"
    shutil.copytree(multi_day_lake.root, lake)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    days = sample_days(sorted(inputs.glob("*.mbo.dbn.zst")))
    plan = BackfillPlan(str(lake), DateRange(first=days[0], last=days[-1]), (str(inputs),), trials=0,
                        state_path=tmp_path / "first.json")
    ran: list[str] = []
    said: list[str] = []

    def run(args: tuple[str, ...], env: Mapping[str, str]) -> None:
        ran.append(args[0])
        spymaster(args, env)

    with pytest.raises(ConfigError, match="spymaster train .* exited with status 2"):
        run_backfill(plan, said.append, run)  # --trials 0 is refused by `spymaster train`
    saved = json.loads(plan.state_path.read_text())
    assert ran == ["replay", "calibrate", "snapshot", "train"]
    done = [s for s in STEPS if saved["steps"].get(s, {}).get("status") == "done"]
    assert done == ["replay", "calibrate", "snapshot"]
    assert saved["steps"]["train"]["status"] == "failed" and "exited with status 2" in saved["steps"]["train"]["error"]

    ran.clear()
    first = run_backfill(replace(plan, trials=1), said.append, run)
    assert ran == ["train"]  # resumed at the failed step; promotion runs in-process
    promoted = first["steps"]["promote"]
    challenger = first["steps"]["train"]["challenger_version"]
    assert (promoted["decision"], promoted["reason"], promoted["champion_version"]) == (
        "promoted", "no champion yet", challenger)
    assert present(champion_version("ES_MODEL", "champion", uri)).version == challenger
    runs = mlflow.search_runs(experiment_names=["ES_MODEL"], filter_string="tags.promotion_decision = 'promoted'")
    assert len(runs) == 1 and runs.iloc[0]["params.promotion_rule"] == RULE
    assert runs.iloc[0]["metrics.challenger_test_log_loss"] == pytest.approx(promoted["challenger_log_loss"], abs=1e-6)

    ran.clear()
    assert run_backfill(replace(plan, trials=1), said.append, run) == first and ran == []  # nothing left to do
    assert any("promote: done at" in line for line in said)

    second = run_backfill(replace(plan, trials=1, seed=7, state_path=tmp_path / "second.json"), said.append, run)
    assert second["steps"]["snapshot"]["snapshot_id"] == first["steps"]["snapshot"]["snapshot_id"]  # same rows
    verdict = second["steps"]["promote"]
    assert verdict["champion_log_loss"] is not None  # both scored on the same test sessions
    better = verdict["challenger_log_loss"] < verdict["champion_log_loss"]
    newest = second["steps"]["train"]["challenger_version"]
    assert verdict["decision"] == ("promoted" if better else "kept")
    assert present(champion_version("ES_MODEL", "champion", uri)).version == (newest if better else challenger)
    assert present(champion_version("ES_MODEL", "challenger", uri)).version == newest
