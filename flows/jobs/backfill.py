"""``spymaster backfill``: the ordered historical jobs as one resumable, idempotent command.

Steps, in order, each the command a user would type (run in a subprocess, so its own plan,
progress and errors show, and what a step leaves behind — MLflow runs, threads, caches — ends
with it), except the last:

1. ``replay`` the range's files into the lake (finished files are skipped by the replay's plan);
2. ``calibrate`` the physics bands of the range's sessions;
3. ``snapshot`` the model's labelled rows (content-addressed: the same rows, the same snapshot);
4. ``train`` on that snapshot and register the new version under the alias ``challenger``;
5. ``promote``: score the challenger and the current ``champion`` on the snapshot's latest
   sessions (the test sessions the challenger never saw) and move ``champion`` to the challenger
   only when its log-loss there is lower — or when there is no champion, or the champion was
   trained on another feature registry and cannot score today's vectors. The rule, both figures
   and the decision are written as an MLflow run of the model's experiment.

The run's state is a JSON file (``<lake>/_backfill/<model>-<first>-<last>.json`` by default):
each step's status, its outputs (snapshot id, version, decision) and, for a failed step, the
error. A rerun skips the steps already done and starts at the first that is not; a finished
range does nothing again. ``--restart`` forgets the state. The same command runs on a laptop and
as the Kubernetes Job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from flows.config import DateRange
from operators.errors import ConfigError

STEPS: Final = ("replay", "calibrate", "snapshot", "train", "promote")
CHALLENGER: Final = "challenger"
CHAMPION: Final = "champion"
RULE: Final = ("promote the challenger when its log-loss on the snapshot's test sessions is lower than the "
               "champion's on the same rows, or when there is no champion or it was trained on another feature "
               "registry")

Say = Callable[[str], None]
Run = Callable[[tuple[str, ...], Mapping[str, str]], None]


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    lake: str
    dates: DateRange
    inputs: tuple[str, ...]
    model_id: str = "ES_MODEL"
    trials: int = 20
    seed: int = 0
    state_path: Path = field(default=Path("backfill.json"))


def default_state_path(lake: str, dates: DateRange, model_id: str) -> Path:
    root = lake.removeprefix("file://")
    if "://" in root:
        msg = f"the lake {lake} is not a local path; pass --state FILE for the backfill's progress"
        raise ConfigError(msg)
    return Path(root) / "_backfill" / f"{model_id}-{dates.first}-{dates.last}.json"


def load_state(plan: BackfillPlan) -> dict[str, Any]:
    """The saved progress of this range and model, or a fresh one; another run's file is refused."""
    if not plan.state_path.is_file():
        return {"model_id": plan.model_id, "dates": f"{plan.dates.first}:{plan.dates.last}", "steps": {}}
    state = json.loads(plan.state_path.read_text())
    if state.get("model_id") != plan.model_id or state.get("dates") != f"{plan.dates.first}:{plan.dates.last}":
        msg = f"{plan.state_path} holds the progress of another backfill ({state.get('model_id')} {state.get('dates')})"
        raise ConfigError(msg)
    return state


def save_state(plan: BackfillPlan, state: dict[str, Any]) -> None:
    plan.state_path.parent.mkdir(parents=True, exist_ok=True)
    partial = plan.state_path.with_suffix(".tmp")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(partial, plan.state_path)  # a crash leaves the old state or the new one, never half


def run_backfill(plan: BackfillPlan, say: Say, run: Run | None = None) -> dict[str, Any]:
    """Every step not yet done, in order; the final state. A failing step is recorded and raised."""
    run = run or spymaster
    state = load_state(plan)
    for number, step in enumerate(STEPS, 1):
        done = state["steps"].get(step, {})
        if done.get("status") == "done":
            say(f"{number}/{len(STEPS)} {step}: done at {done['finished']}, skipped")
            continue
        say(f"{number}/{len(STEPS)} {step}")
        started = _now()
        try:
            outputs = _STEP[step](plan, state, run)
        except Exception as err:
            state["steps"][step] = {"status": "failed", "started": started, "finished": _now(), "error": str(err)}
            save_state(plan, state)
            raise
        state["steps"][step] = {"status": "done", "started": started, "finished": _now(), **outputs}
        save_state(plan, state)
        for key, value in outputs.items():
            say(f"    {key}: {value}")
    return state


def spymaster(args: tuple[str, ...], env: Mapping[str, str]) -> None:
    """``spymaster ARGS`` in a subprocess, its output on this terminal; one sentence if it fails."""
    done = subprocess.run([sys.executable, "-m", "flows.cli", *args], env={**os.environ, **env}, check=False)
    if done.returncode != 0:
        msg = f"`spymaster {' '.join(args)}` exited with status {done.returncode} (see above)"
        raise ConfigError(msg)


def _replay(plan: BackfillPlan, _state: dict[str, Any], run: Run) -> dict[str, Any]:
    run(("replay", *plan.inputs, "--lake", plan.lake, "--dates", _span(plan.dates)),
        {"SPYMASTER_SCORING_BACKEND": "off"})  # history is for learning: every score comes from the champion
    return {"dates": _span(plan.dates)}


def _calibrate(plan: BackfillPlan, _state: dict[str, Any], run: Run) -> dict[str, Any]:
    run(("calibrate", "--lake", plan.lake, "--dates", _span(plan.dates)), {})
    return {}


def _snapshot(plan: BackfillPlan, _state: dict[str, Any], run: Run) -> dict[str, Any]:
    from connectors.delta.lake import Lake
    from connectors.delta.snapshots import latest_snapshot_id

    run(("snapshot", "--lake", plan.lake, "--model-id", plan.model_id), {})
    found = latest_snapshot_id(Lake(plan.lake), plan.model_id)
    if found is None:
        raise ConfigError(f"`spymaster snapshot` left no snapshot of {plan.model_id} in {plan.lake}")
    return {"snapshot_id": found}


def _train(plan: BackfillPlan, state: dict[str, Any], run: Run) -> dict[str, Any]:
    from connectors.mlflow.tracking import champion_version

    snapshot_id = state["steps"]["snapshot"]["snapshot_id"]
    run(("train", "--lake", plan.lake, "--model-id", plan.model_id, "--snapshot", snapshot_id, "--trials",
         str(plan.trials), "--seed", str(plan.seed), "--alias", CHALLENGER), {})
    found = champion_version(plan.model_id, CHALLENGER)
    if found is None:
        raise ConfigError(f"`spymaster train` registered no {plan.model_id}@{CHALLENGER}")
    return {"challenger_version": found.version}


@dataclass(frozen=True, slots=True)
class Decision:
    promote: bool
    reason: str
    challenger_log_loss: float
    champion_log_loss: float | None


def decide(challenger_log_loss: float, champion_log_loss: float | None, *, has_champion: bool = True,
           champion_current: bool = True) -> Decision:
    """``RULE``: the challenger replaces a current champion only by doing strictly better on the same rows."""
    if not has_champion:
        return Decision(True, "no champion yet", challenger_log_loss, None)
    if not champion_current:
        return Decision(True, "the champion was trained on another feature registry", challenger_log_loss, None)
    if champion_log_loss is None:
        raise ValueError("a current champion needs its log-loss on the same rows")
    if challenger_log_loss < champion_log_loss:
        return Decision(True, "lower log-loss on the latest sessions", challenger_log_loss, champion_log_loss)
    return Decision(False, "not better than the champion on the latest sessions", challenger_log_loss,
                    champion_log_loss)


def _promote(plan: BackfillPlan, state: dict[str, Any], _run: Run) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    from connectors.delta.lake import Lake
    from connectors.delta.snapshots import datasets_dir, load_snapshot_dir, training_set
    from connectors.mlflow.tracking import champion_version, configure, use_experiment
    from connectors.scoring.local import load_predictor
    from operators.features.registry import REGISTRY_VERSION
    from operators.learning.frame import vectors_matrix
    from operators.learning.metrics import evaluate
    from operators.learning.split import split_sessions

    snapshot_id = state["steps"]["snapshot"]["snapshot_id"]
    challenger = state["steps"]["train"]["challenger_version"]
    _, table = load_snapshot_dir(datasets_dir(Lake(plan.lake), plan.model_id) / snapshot_id)
    rows = training_set(table)
    test_sessions = split_sessions(rows.sessions).test
    test = rows.in_sessions(test_sessions)
    matrix = vectors_matrix(test.vectors)
    uri = configure()
    new = evaluate(test.outcomes, load_predictor(plan.model_id, challenger, uri)(matrix))
    current = champion_version(plan.model_id, CHAMPION, uri)
    old = None
    if current is None:
        decision = decide(new.log_loss, None, has_champion=False)
    elif current.version == challenger:  # a rerun after the alias moved
        decision = Decision(False, "the challenger already is the champion", new.log_loss, new.log_loss)
    elif current.registry_version not in (None, REGISTRY_VERSION):
        decision = decide(new.log_loss, None, champion_current=False)
    else:
        old = evaluate(test.outcomes, load_predictor(plan.model_id, current.version, uri)(matrix))
        decision = decide(new.log_loss, old.log_loss)
    use_experiment(plan.model_id, uri)
    with mlflow.start_run(run_name=f"promote-{snapshot_id}"):
        mlflow.log_params({"promotion_rule": RULE, "snapshot_id": snapshot_id, "challenger_version": challenger,
                           "champion_version": current.version if current else "none",
                           "test_sessions": f"{test_sessions[0]}..{test_sessions[-1]} ({len(test_sessions)})",
                           "test_rows": len(test.outcomes)})
        mlflow.log_metric("challenger_test_log_loss", new.log_loss)
        if old is not None:
            mlflow.log_metric("champion_test_log_loss", old.log_loss)
        mlflow.set_tags({"promotion_decision": "promoted" if decision.promote else "kept",
                         "promotion_reason": decision.reason})
    if decision.promote:
        MlflowClient().set_registered_model_alias(plan.model_id, CHAMPION, challenger)
    champion = challenger if decision.promote else (current.version if current else "none")
    return {"decision": "promoted" if decision.promote else "kept", "reason": decision.reason,
            "challenger_log_loss": round(new.log_loss, 6),
            "champion_log_loss": None if old is None else round(old.log_loss, 6), "champion_version": champion}


_STEP: Final[dict[str, Callable[[BackfillPlan, dict[str, Any], Run], dict[str, Any]]]] = {
    "replay": _replay, "calibrate": _calibrate, "snapshot": _snapshot, "train": _train, "promote": _promote,
}


def _span(dates: DateRange) -> str:
    return f"{dates.first}:{dates.last}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
