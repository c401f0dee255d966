"""In-flow scoring (flows.steps.inference_scores) with a real registered model in a real MLflow registry.

A replay scores every episode of ``gold.setup_vectors`` exactly once, with the registered model's
own probabilities and its retrieval memory's neighbours, identically at 1 and 2 workers; the
micro-batching step closes batches by event time, wall-clock deadline and session end; and a
running flow follows the ``champion`` alias when it moves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
import numpy as np
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, run_main

from connectors.delta.lake import Lake
from connectors.delta.tables import GOLD_INFERENCE_SCORES, GOLD_SETUP_VECTORS
from connectors.scoring.config import ScoringConfig
from flows.config import InferenceConfig
from flows.steps.inference_scores import (
    InferenceScoresLogic,
    PendingScore,
    ScoredBatch,
    ScorerPool,
    SessionEpisodes,
    scored_batches,
)
from operators.chunks import InstrumentInfo
from operators.microbatch import window_end
from operators.vectors.layout import LEVEL_TYPES, VECTOR_SIZE
from tests.conftest import table_content

ROOT = Path(__file__).resolve().parents[2]
MS = 1_000_000
T0 = 1_762_266_600_000_000_000  # a session's 09:30 ET, in ns
INFO = InstrumentInfo(instrument_id=7, raw_symbol="ESZ5", underlier="ES", instrument_type="FUT")


@pytest.fixture(name="registry", scope="module")
def fixture_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SQLite registry with the tiny model as version 1 (alias champion)."""
    from tests.learning.models import register_tiny_model

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        assert register_tiny_model(uri, seed=0) == "1"
        yield uri


@pytest.fixture(name="scored", scope="module")
def fixture_scored(registry: str, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Lake]:
    """The sample replayed with scoring (local backend, default 100 ms batches) at 1 and 2 workers."""
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    lakes = {}
    for workers in (1, 2):
        prepared = prepare(app_config([sample_dir], tmp_path_factory.mktemp(f"scored-{workers}")))
        assert prepared.cfg.scoring.backend == "local" and prepared.cfg.inference.batch_ms == 100
        run_flow(prepared, workers=workers)
        lakes[workers] = prepared.lake
    return lakes


def _model(version: str):
    import mlflow.pyfunc

    from connectors.mlflow.tracking import configure

    configure()
    return mlflow.pyfunc.load_model(f"models:/ES_MODEL/{version}")


def test_replay_scores_every_episode_once_identically_at_1_and_2_workers(scored: dict[int, Lake]) -> None:
    one, two = (table_content(scored[w], GOLD_INFERENCE_SCORES) for w in (1, 2))
    vectors = scored[1].read(GOLD_SETUP_VECTORS, ["episode_id"])["episode_id"].to_pylist()

    assert one.equals(two)
    assert len(vectors) >= 20
    assert sorted(one["episode_id"].to_pylist()) == sorted(vectors)          # exactly one row per episode
    assert set(one["status"].to_pylist()) == {"ok"} and set(one["model_version"].to_pylist()) == {"1"}
    assert "scored_at" not in one.column_names and scored[1].read(GOLD_INFERENCE_SCORES, ["scored_at"]).num_rows


def test_scores_are_the_models_probabilities_and_its_memorys_neighbours(scored: dict[int, Lake]) -> None:
    from connectors.models.memory_store import load_memory_for
    from operators.learning.frame import vectors_matrix

    lake = scored[1]
    rows = {r["episode_id"]: r for r in lake.read(GOLD_INFERENCE_SCORES).to_pylist()}
    vec = lake.read(GOLD_SETUP_VECTORS).to_pylist()
    x = np.array([v["feature_vector"] for v in vec], np.float32)
    want = np.asarray(_model("1").predict(vectors_matrix(x)))
    memory = load_memory_for("ES_MODEL", "1")
    near = memory.query(x, [v["level_type"] for v in vec], [v["direction"] for v in vec],
                        [v["time_bucket"] for v in vec], k=25)

    assert any(n.count > 0 for n in near)
    for v, p, n in zip(vec, want, near, strict=True):
        got = rows[v["episode_id"]]
        assert (got["feature_hash"], got["vector_time"], got["level_type"], got["direction"], got["time_bucket"]) == (
            v["feature_hash"], v["vector_time"], v["level_type"], v["direction"], v["time_bucket"])
        assert [got["p_break"], got["p_reject"], got["p_chop"]] == pytest.approx(p.tolist(), abs=1e-6)
        assert got["batch_close_ts"] == window_end(v["vector_time"], 100 * MS)
        assert got["nn_count"] == n.count and got["nn_episode_ids"] == list(n.episode_ids)
        if n.count:
            assert [got["nn_break"], got["nn_reject"], got["nn_chop"]] == pytest.approx(n.distribution.tolist())
            assert got["nn_weighted_chop"] == pytest.approx(float(n.weighted[2]))
        else:
            assert got["nn_break"] is None and got["nn_weighted_break"] is None
        assert got["latency_ms"] >= 0 and got["attempts"] == 1


# ---------------------------------------------------------------- the step on hand-built episodes


def _episode(position: int, at_ms: int, seed: int = 0) -> PendingScore:
    rng = np.random.default_rng(1000 + position + seed)
    return PendingScore(position, f"ep-{position:03d}", f"hash-{position}", LEVEL_TYPES[position % len(LEVEL_TYPES)],
                        "UP" if position % 2 == 0 else "DOWN", 0, T0 + at_ms * MS,
                        rng.normal(size=VECTOR_SIZE).astype(np.float32))


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _content(batches: list[ScoredBatch]) -> list[tuple]:
    """What a batch says, without its wall-clock parts."""
    return [(b.close_ts, b.positions, b.mark, tuple((r.episode_id, r.status, r.model_version, r.probabilities,
                                                      r.neighbour_ids) for r in b.rows)) for b in batches]


def test_step_batches_by_event_time_wall_deadline_and_session_end(registry: str) -> None:
    clock = _Clock()
    logic = InferenceScoresLogic(ScoringConfig(), InferenceConfig(batch_ms=100), None, pool=ScorerPool(), now=clock)

    out, discard = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(0, 10), _episode(1, 60))))
    assert out == [] and discard is False
    assert logic.notify_at() == clock.now + timedelta(milliseconds=100, microseconds=1)
    snapshot = logic.snapshot()

    out, _ = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(2, 100), _episode(3, 150))))
    assert [(b.close_ts, b.positions) for b in out] == [(T0 + 100 * MS, (0, 1))]
    assert [r.status for r in out[0].rows] == ["ok", "ok"] and out[0].rows[0].model_version == "1"
    assert out[0].rows[0].neighbour_ids[0].startswith("tiny-0-")            # version 1's memory

    clock.now += timedelta(milliseconds=99)
    assert logic.on_notify()[0] == []                                       # deadline not reached
    clock.now += timedelta(milliseconds=2)
    late, _ = logic.on_notify()
    assert [(b.close_ts, b.positions) for b in late] == [(T0 + 200 * MS, (2, 3))]
    assert logic.notify_at() is None

    end, discard = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(4, 900),), mark="end|s"))
    assert [(b.close_ts, b.positions, b.mark) for b in end] == [(T0 + 1000 * MS, (4,), "end|s")] and discard is True

    # a resumed step holds the snapshot's open batch and closes it the same way
    resumed = InferenceScoresLogic(ScoringConfig(), InferenceConfig(batch_ms=100), snapshot, pool=ScorerPool(),
                                   now=clock)
    again, _ = resumed.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(2, 100), _episode(3, 150))))
    assert _content(again) == _content(out)


def test_a_batch_is_scored_in_the_update_that_completes_its_window_not_at_the_deadline(registry: str) -> None:
    """``through_ns`` (the session's episodes are complete before it) closes a batch at once: a live
    episode is not held for ``batch_ms`` of wall clock when nothing more can join it."""
    clock = _Clock()
    logic = InferenceScoresLogic(ScoringConfig(), InferenceConfig(batch_ms=100), None, pool=ScorerPool(), now=clock)
    out, _ = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(0, 10),), through_ns=T0 + 99 * MS))
    assert out == [] and logic.notify_at() is not None                     # 99 ms: one could still join
    out, _ = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(1, 20),), through_ns=T0 + 1000 * MS))
    assert [(b.close_ts, b.positions) for b in out] == [(T0 + 100 * MS, (0, 1))]
    assert [r.status for r in out[0].rows] == ["ok", "ok"] and logic.notify_at() is None


def test_zero_width_scores_each_episode_alone_and_an_empty_session_end_is_a_mark(registry: str) -> None:
    logic = InferenceScoresLogic(ScoringConfig(), InferenceConfig(batch_ms=0), None, pool=ScorerPool(), now=_Clock())
    out, _ = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(0, 10), _episode(1, 10))))
    assert [(b.close_ts, b.positions) for b in out] == [(T0 + 10 * MS, (0,)), (T0 + 10 * MS, (1,))]
    assert logic.notify_at() is None
    end, discard = logic.on_item(SessionEpisodes("s", INFO, 20_000, (), mark="end|s"))
    assert [(b.rows, b.mark) for b in end] == [((), "end|s")] and discard is True


def test_without_a_registry_rows_say_no_model_and_no_scorer_is_built(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def never(cfg: ScoringConfig):
        raise AssertionError("a scorer was built although no registry exists")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent.db'}")
    logic = InferenceScoresLogic(ScoringConfig(), InferenceConfig(batch_ms=0), None, pool=ScorerPool(never),
                                 now=_Clock())
    out, _ = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(0, 10),)))
    row = out[0].rows[0]
    assert (row.status, row.model_version, row.probabilities, row.attempts) == ("no_model", None, None, 0)
    assert "absent.db does not exist" in row.detail and not (tmp_path / "absent.db").exists()


def test_a_failed_http_score_is_still_a_row_with_a_truthful_status(registry: str) -> None:
    from flows.services.mlflow_serve import free_port

    cfg = ScoringConfig(backend="mlflow-http", url=f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.0,
                        timeout_s=0.5)
    logic = InferenceScoresLogic(cfg, InferenceConfig(batch_ms=0), None, pool=ScorerPool(), now=_Clock())
    out, _ = logic.on_item(SessionEpisodes("s", INFO, 20_000, (_episode(0, 10), _episode(1, 20))))
    rows = [r for b in out for r in b.rows]
    assert [(r.status, r.probabilities, r.attempts) for r in rows] == [("unreachable", None, 2)] * 2
    assert {r.model_version for r in rows} == {"1"}                         # the champion the endpoint serves
    assert all(r.neighbour_ids and r.neighbour_ids[0].startswith("tiny-0-") for r in rows)
    assert {b.backend for b in out} == {"mlflow-http"}


def test_a_plain_replay_without_a_registry_never_imports_mlflow(sample_dir: Path, tmp_path: Path) -> None:
    """A replay with no registry file scores nothing and never even imports MLflow (start-up stays fast)."""
    lake = tmp_path / "lake"
    env = {**os.environ, "SPYMASTER_INPUT": str(sample_dir), "SPYMASTER_LAKE": str(lake),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent.db'}"}
    env.pop("SPYMASTER_CONFIG", None)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bytewax.run", "flows.main"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "flows.steps.inference_scores" in imported
    assert not any(m == "mlflow" or m.startswith("mlflow.") for m in imported)
    scores = Lake(str(lake)).read(GOLD_INFERENCE_SCORES, ["status"])
    assert scores.num_rows > 0 and set(scores["status"].to_pylist()) == {"no_model"}


# ---------------------------------------------------------------- live model update in a running flow


class _TwoPhasePartition(StatefulSourcePartition):
    """Emits phase one, waits until all of it is scored, moves the alias, emits phase two."""

    def __init__(self, phases: tuple[list, list], scored: list, between) -> None:
        self._phases, self._scored, self._between, self._step = phases, scored, between, 0

    def next_batch(self) -> list:
        if self._step == 0:
            self._step = 1
            return self._phases[0]
        if self._step == 1:
            done = sum(len(b.rows) for b in self._scored)
            if done < sum(len(item[1].episodes) for item in self._phases[0]):
                return []
            self._between()
            self._step = 2
            return self._phases[1]
        raise StopIteration

    def next_awake(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(milliseconds=20) if self._step == 1 else None

    def snapshot(self) -> None:
        return None


class _TwoPhaseSource(FixedPartitionedSource):
    def __init__(self, phases: tuple[list, list], scored: list, between) -> None:
        self._args = (phases, scored, between)

    def list_parts(self) -> list[str]:
        return ["phases"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _TwoPhasePartition:
        return _TwoPhasePartition(*self._args)


def test_a_running_flow_follows_the_champion_alias_from_the_next_batch_on(registry: str) -> None:
    from mlflow import MlflowClient

    from operators.learning.frame import vectors_matrix
    from tests.learning.models import register_tiny_model

    key = "ES_MODEL|ESZ5-session"
    first = [(key, SessionEpisodes("s", INFO, 20_000, (_episode(i, 1000 * i),))) for i in range(3)]
    second = [(key, SessionEpisodes("s", INFO, 20_000, (_episode(i, 1000 * i),), mark="end|s" if i == 5 else None))
              for i in range(3, 6)]
    scored: list[ScoredBatch] = []
    moved: list[str] = []

    flow = Dataflow("live_update")
    items = op.input("episodes", flow, _TwoPhaseSource((first, second), scored,
                                                       lambda: moved.append(register_tiny_model(registry, seed=1))))
    op.output("out", scored_batches("inference_scores", items, ScoringConfig(refresh_s=0.0),
                                    InferenceConfig(batch_ms=100)), TestingSink(scored))
    try:
        run_main(flow)
    finally:
        MlflowClient().set_registered_model_alias("ES_MODEL", "champion", "1")

    rows = {r.episode_id: r for b in scored for r in b.rows}
    assert moved == ["2"]
    assert [rows[f"ep-{i:03d}"].model_version for i in range(6)] == ["1", "1", "1", "2", "2", "2"]
    assert scored[-1].mark == "end|s"
    for version, ids, prefix in (("1", range(3), "tiny-0-"), ("2", range(3, 6), "tiny-1-")):
        want = np.asarray(_model(version).predict(vectors_matrix(np.stack([_episode(i, 0).vector for i in ids]))))
        for i, p in zip(ids, want, strict=True):
            assert rows[f"ep-{i:03d}"].probabilities == pytest.approx(tuple(p), abs=1e-6)
            assert rows[f"ep-{i:03d}"].neighbour_ids and rows[f"ep-{i:03d}"].neighbour_ids[0].startswith(prefix)


# ---------------------------------------------------------------- crash and resume, benchmark


@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_scoring_run_resumes_without_duplicate_or_missing_scores(registry: str, sample_dir: Path,
                                                                          scored: dict[int, Lake],
                                                                          tmp_path: Path) -> None:
    from flows.runner import recovery_config
    from tests.flows.test_recovery import _env, _run_and_kill, _run_to_end

    lake_dir, recovery = tmp_path / "lake", tmp_path / "recovery"
    env = {**_env(sample_dir, lake_dir, tmp_path), "MLFLOW_TRACKING_URI": registry,
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    recovery_config(recovery)
    _run_and_kill(env, recovery, lake_dir, after_commits=2, table="gold/inference_scores")
    partial = Lake(str(lake_dir)).read(GOLD_INFERENCE_SCORES, ["episode_id"]).num_rows
    _run_to_end(env, recovery)

    resumed = table_content(Lake(str(lake_dir)), GOLD_INFERENCE_SCORES)
    assert 0 < partial < resumed.num_rows
    assert resumed.equals(table_content(scored[1], GOLD_INFERENCE_SCORES))


def test_scoring_bench_measures_the_champion_and_its_memory(registry: str) -> None:
    from flows.bench.scoring import measure_scoring

    result = measure_scoring(40, tracking_uri=registry, http=False, say=lambda _: None)
    assert result.model == f"ES_MODEL version 1 (champion in {registry})"
    assert (result.local.n, result.local.ok) == (40, 40) and result.http is None
    assert 0 < result.local.p50_ms <= result.local.p95_ms <= result.local.p99_ms
    assert result.retrieval_rows == 240 and result.retrieval_qps > 0


def test_scoring_bench_without_a_champion_measures_a_synthetic_model_and_leaves_the_environment_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No champion at the given registry: a synthetic model in a temporary store is measured, the
    URI of that store is handed to whoever reads it, and afterwards the environment and MLflow's
    process-wide URIs name the user's registry again, not the deleted store. (MLflow's own
    ``set_tracking_uri`` mirrors the URI into ``MLFLOW_TRACKING_URI`` while a store is in use.)"""
    import mlflow

    from flows.bench.scoring import measure_scoring

    empty = f"sqlite:///{tmp_path / 'none.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)  # as `spymaster bench --scoring` reads it
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    said: list[str] = []
    result = measure_scoring(20, tracking_uri=empty, http=False, say=said.append)
    assert result.model == "synthetic logistic regression, ES_MODEL version 1 (temporary store)"
    assert said == [f"no ES_MODEL@champion in {empty}: training a small synthetic model in a temporary store"]
    assert (result.local.n, result.local.ok) == (20, 20) and result.retrieval_rows == 3_000
    assert os.environ["MLFLOW_TRACKING_URI"] == empty
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == empty
    assert not (tmp_path / "none.db").exists()  # asked nothing of the empty registry (it would create it)
