"""The scorers and retrieval memories of this process, made on first use (``flows.steps.inference_scores``).

Bytewax workers of one process are threads: they share one scorer per (registry, configuration)
— the local model is loaded once — and one memory per (registry, model, version). Nothing here
is pickled into recovery snapshots. Without a registry (the default SQLite file does not exist)
no scorer is built and MLflow is not imported: every result says ``no_model``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from connectors.mlflow.tracking import local_store_missing
from connectors.scoring.base import NO_MODEL, ScoreRequest, ScoreResult, failed
from connectors.scoring.config import ScoringConfig
from flows.heap import freeze_start_up

if TYPE_CHECKING:
    from connectors.scoring import Scorer
    from operators.retrieval import Memory

log = logging.getLogger("spymaster.scoring")


class ScorerPool:
    """This process's scorers (one per configuration) and retrieval memories (one per model
    version), made on first use. Never pickled: recovery snapshots hold only pending episodes."""

    def __init__(self, make: Callable[[ScoringConfig], Scorer] | None = None) -> None:
        self._make = make
        self._scorers: dict[tuple[str, ScoringConfig], Scorer] = {}
        self._memories: dict[tuple[str, str, str], Memory | None] = {}
        self._lock = threading.Lock()

    def score(self, cfg: ScoringConfig, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        missing = _missing_registry(cfg)
        if missing is not None:  # nothing can be registered: do not import MLflow at all
            return failed(requests, NO_MODEL, missing, version=None, latency_ns=0, attempts=0)
        return self._scorer(cfg).score(requests)

    def memory(self, model_id: str, version: str) -> Memory | None:
        """The retrieval memory logged with that version (None, with a warning, when it has none)."""
        key = (_registry(), model_id, version)
        with self._lock:
            if key not in self._memories:
                self._memories[key] = _load_memory(model_id, version)
            return self._memories[key]

    def warm(self, cfg: ScoringConfig) -> str | None:
        """Load ``cfg``'s model and its retrieval memory now, so that the first setup a live flow
        sees is not the one that waits seconds for MLflow to load them; the version, if any."""
        if _missing_registry(cfg) is not None:
            return None
        version = self._scorer(cfg).prepare(cfg.model_id)
        if version is not None:
            self.memory(cfg.model_id, version)
        freeze_start_up()  # the model and MLflow's modules stay loaded for good (``flows.heap``)
        return version

    def warm_in_background(self, cfg: ScoringConfig) -> threading.Thread | None:
        """``warm`` on a daemon thread (the flow starts reading meanwhile); None without a registry."""
        if _missing_registry(cfg) is not None:
            return None

        def run() -> None:
            try:
                self.warm(cfg)
            except Exception as err:  # noqa: BLE001 - the first score will say what is wrong
                log.warning("could not load %s ahead of the first score: %s", cfg.model_id, err)

        thread = threading.Thread(target=run, name="scorer-warm", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            for scorer in self._scorers.values():
                scorer.close()
            self._scorers.clear()
            self._memories.clear()

    def _scorer(self, cfg: ScoringConfig) -> Scorer:
        key = (_registry(), cfg)  # versions are only unique within one registry
        with self._lock:
            if key not in self._scorers:
                if self._make is None:
                    from connectors.scoring import make_scorer

                    self._scorers[key] = make_scorer(cfg)
                else:
                    self._scorers[key] = self._make(cfg)
            return self._scorers[key]


POOL = ScorerPool()
"""The worker processes' shared pool (Bytewax workers of one process are threads)."""


def _registry() -> str:
    from connectors.mlflow.tracking import tracking_uri

    return tracking_uri()


def _missing_registry(cfg: ScoringConfig) -> str | None:
    """Why the local backend cannot have a model (its registry file does not exist), or None."""
    uri = _registry()
    if cfg.backend == "local" and local_store_missing(uri):
        return f"no MLflow registry: {uri} does not exist (run spymaster train or set MLFLOW_TRACKING_URI)"
    return None


def _load_memory(model_id: str, version: str) -> Memory | None:
    if local_store_missing(_registry()):
        return None
    try:
        from connectors.models.memory_store import load_memory_for

        return load_memory_for(model_id, version)
    except Exception as err:  # noqa: BLE001 - no memory means no neighbours, never a stopped flow
        log.warning("no retrieval memory for %s version %s: %s", model_id, version, err)
        return None
