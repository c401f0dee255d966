"""``spymaster bench --scoring``: per-episode scoring latency (local, mlflow-http) and retrieval queries/s.

Each episode is scored on its own (a batch of one: the live worst case, ``batch_ms = 0``) and the
wall-clock time of the whole ``Scorer.score`` call is its latency, so the figures are what the flow
pays per episode. Targets printed beside them (issue 4): in-process p99 < 5 ms, HTTP p99 < 50 ms.

The model is the registry's ``{model_id}@champion`` when it exists. Otherwise a small logistic
regression is trained on synthetic vectors and registered, with its retrieval memory, in a
temporary SQLite store that is deleted afterwards; the output says which one was measured.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from connectors.scoring.base import ScoreRequest
from connectors.scoring.config import ScoringConfig
from flows.bench.latency import Percentiles

LOCAL_P99_TARGET_MS = 5.0
HTTP_P99_TARGET_MS = 50.0
_SYNTHETIC_ROWS = 3_000
HTTP_EPISODES_MAX = 500
"""An HTTP call costs tens of ms here: at most this many episodes go to the server."""


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ok: int
    n: int

    @staticmethod
    def of(latencies_ns: list[int], ok: int) -> Latency:
        p = Percentiles.of(latencies_ns, digits=3)
        return Latency(p.p50_ms, p.p95_ms, p.p99_ms, ok, p.n)


@dataclass(frozen=True, slots=True)
class ScoringBenchResult:
    model: str
    """Which model was measured (registry version, or the synthetic one trained for the bench)."""
    episodes: int
    local: Latency
    http: Latency | None
    http_problem: str
    retrieval_qps: float
    retrieval_rows: int
    load_average: float
    """1-minute load average when the bench ended (this machine has other work; figures move with it)."""


def synthetic_rows(seed: int, rows: int = _SYNTHETIC_ROWS):
    """Vectors with a planted signal in a few features, over every level type × direction × bucket."""
    from operators.learning.dataset import TrainingSet
    from operators.vectors.layout import LEVEL_TYPES, VECTOR_SIZE

    rng = np.random.default_rng(seed)
    outcomes = rng.integers(0, 3, rows).astype(np.int8)
    vectors = rng.normal(size=(rows, VECTOR_SIZE)).astype(np.float32)
    vectors[:, :6] += (outcomes[:, None] - 1.0).astype(np.float32)
    return TrainingSet(
        vectors=vectors, outcomes=outcomes, episode_ids=tuple(f"bench-{seed}-{i:06d}" for i in range(rows)),
        session_dates=np.full(rows, np.datetime64(date(2025, 11, 3), "D")),
        level_type=tuple(LEVEL_TYPES[i % len(LEVEL_TYPES)] for i in range(rows)),
        direction=tuple("UP" if (i // len(LEVEL_TYPES)) % 2 == 0 else "DOWN" for i in range(rows)),
        time_bucket=(np.arange(rows) // (2 * len(LEVEL_TYPES)) % 5).astype(np.int32),
    )


def _register_synthetic(model_id: str, uri: str) -> str:
    """Train and register a small model (+ memory) in the registry at ``uri``; returns the version."""
    import mlflow

    from connectors.mlflow.registry import register_pipeline
    from connectors.mlflow.tracking import use_experiment
    from operators.features.registry import REGISTRY_VERSION
    from operators.learning.dataset import memory_from
    from operators.learning.frame import vectors_matrix
    from operators.learning.models import make_pipeline

    use_experiment(f"{model_id}-bench", uri)  # artifacts beside the temporary store, not in ./mlruns
    rows = synthetic_rows(7)
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, 7).fit(vectors_matrix(rows.vectors), rows.outcomes)
    with mlflow.start_run(run_name="bench-synthetic"):
        ref = register_pipeline(pipeline, model_id=model_id, snapshot_id="bench-synthetic",
                                registry_version=REGISTRY_VERSION, input_example=vectors_matrix(rows.vectors[:2]),
                                memory=memory_from(rows))
    return ref.version


@contextmanager
def registry_for_bench(model_id: str, say: Callable[[str], object], uri: str) -> Iterator[tuple[str, str, str]]:
    """(tracking URI, version, description): the champion registered at ``uri`` if there is one,
    else a synthetic model in a temporary store. Whoever needs the registry is handed the URI:
    the process environment (``MLFLOW_TRACKING_URI``) is never changed."""
    from connectors.mlflow.tracking import champion_version, configure, local_store_missing

    found = None if local_store_missing(uri) else champion_version(model_id, uri=uri)
    if found is not None:
        yield uri, found.version, f"{model_id} version {found.version} (champion in {uri})"
        return
    tmp = Path(tempfile.mkdtemp(prefix="spymaster-bench-mlflow-"))
    temp_uri = f"sqlite:///{tmp / 'mlflow.db'}"
    try:
        say(f"no {model_id}@champion in {uri}: training a small synthetic model in a temporary store")
        version = _register_synthetic(model_id, temp_uri)
        yield temp_uri, version, f"synthetic logistic regression, {model_id} version {version} (temporary store)"
    finally:
        configure(uri)  # MLflow's process-wide URIs back on the user's registry, off the deleted store
        shutil.rmtree(tmp, ignore_errors=True)


def _per_episode(cfg: ScoringConfig, vectors: np.ndarray, warmup: int = 20, **backend: Any) -> Latency:
    """``backend`` goes to the scorer (``registry=URI`` for the local one)."""
    from connectors.scoring import make_scorer

    scorer = make_scorer(cfg, **backend)
    try:
        requests = [ScoreRequest(f"e{i}", cfg.model_id, "", v) for i, v in enumerate(vectors)]
        for r in requests[:warmup]:
            scorer.score([r])
        latencies, ok = [], 0
        for r in requests:
            started = time.perf_counter_ns()
            result = scorer.score([r])[0]
            latencies.append(time.perf_counter_ns() - started)
            ok += result.ok
        return Latency.of(latencies, ok)
    finally:
        scorer.close()


def measure_scoring(episodes: int, model_id: str = "ES_MODEL", *, tracking_uri: str, http: bool = True,
                    say: Callable[[str], object] = print) -> ScoringBenchResult:
    """Measure against ``model_id``'s champion in the registry at ``tracking_uri``, or a synthetic
    model in a temporary store when it has none."""
    from connectors.models.memory_store import load_memory_for
    from flows.bench.retrieval import retrieval_qps

    rows = synthetic_rows(11, episodes)
    with registry_for_bench(model_id, say, tracking_uri) as (uri, version, described):
        local = _per_episode(ScoringConfig(backend="local", model_id=model_id, refresh_s=3600.0), rows.vectors,
                             registry=uri)
        http_latency, problem = None, ""
        if http:
            http_latency, problem = _http(uri, model_id, version, rows.vectors[:HTTP_EPISODES_MAX], say)
        memory = load_memory_for(model_id, version, uri)
        qps = retrieval_qps(memory, rows.vectors, rows.level_type, rows.direction, rows.time_bucket, k=25)
    return ScoringBenchResult(described, episodes, local, http_latency, problem, round(qps), memory.rows,
                              round(os.getloadavg()[0], 2))


def _http(uri: str, model_id: str, version: str, vectors: np.ndarray, say) -> tuple[Latency | None, str]:
    from flows.services.mlflow_serve import ModelServer
    from operators.errors import SpymasterError

    log = Path(tempfile.mkdtemp(prefix="spymaster-bench-serve-")) / "mlflow-serve.log"
    say(f"starting mlflow models serve for models:/{model_id}/{version} on 127.0.0.1 (log {log})")
    try:
        with ModelServer(f"models:/{model_id}/{version}", tracking_uri=uri, log_path=log) as server:
            cfg = ScoringConfig(backend="mlflow-http", model_id=model_id, url=server.base_url, served_version=version)
            return _per_episode(cfg, vectors), ""
    except SpymasterError as err:
        return None, str(err)


def print_scoring(result: ScoringBenchResult, console) -> None:
    from rich.table import Table

    table = Table(title=f"spymaster bench --scoring: one episode per call; {result.model}",
                  caption=f"load average {result.load_average:g} (the figures rise with the machine's other work)")
    for name in ("measure", "p50 ms", "p95 ms", "p99 ms", "target", "met"):
        table.add_column(name, justify="left" if name == "measure" else "right")

    def row(name: str, lat: Latency | None, target: float) -> None:
        if lat is None:
            table.add_row(name, "-", "-", "-", f"p99 < {target:g} ms", f"not run: {result.http_problem}")
            return
        met = "yes" if lat.p99_ms < target else "no"
        table.add_row(f"{name} ({lat.ok}/{lat.n} ok)", f"{lat.p50_ms:.3f}", f"{lat.p95_ms:.3f}", f"{lat.p99_ms:.3f}",
                      f"p99 < {target:g} ms", met)

    row("local (in-process)", result.local, LOCAL_P99_TARGET_MS)
    row("mlflow-http (mlflow models serve)", result.http, HTTP_P99_TARGET_MS)
    table.add_row(f"retrieval, k=25 over {result.retrieval_rows:,} stored episodes", "", "", "", "",
                  f"{result.retrieval_qps:,.0f} queries/s")
    console.print(table)
