"""Scoring backends behind one interface: ``local`` (in-process MLflow model), ``mlflow-http``
(``mlflow models serve``) and ``azureml`` (managed online endpoint). See ``base`` for the contract."""

from __future__ import annotations

from typing import Any

from connectors.scoring.base import STATUSES, Scorer, ScoreRequest, ScoreResult
from connectors.scoring.config import ScoringConfig
from operators.errors import ConfigError

__all__ = ["STATUSES", "ScoreRequest", "ScoreResult", "Scorer", "ScoringConfig", "make_scorer"]


def make_scorer(cfg: ScoringConfig, **kwargs: Any) -> Scorer:
    """The Scorer for ``cfg.backend``. ``off`` has no scorer: check ``cfg.enabled`` first.

    ``kwargs`` go to the backend (clock, sleep, seed, resolver/loader or version_resolver), for tests.
    """
    if cfg.backend == "local":
        from connectors.scoring.local import LocalScorer

        return LocalScorer(cfg, **kwargs)
    if cfg.backend == "mlflow-http":
        from connectors.scoring.http import mlflow_http_scorer

        return mlflow_http_scorer(cfg, **kwargs)
    if cfg.backend == "azureml":
        from connectors.scoring.http import azureml_scorer

        return azureml_scorer(cfg, **kwargs)
    raise ConfigError(f"scoring backend {cfg.backend!r} has no scorer; skip scoring when cfg.enabled is False")
