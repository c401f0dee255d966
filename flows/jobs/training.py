"""Train a model of one ``model_id`` from a frozen snapshot, log everything to MLflow, register the winner.

Steps (SPEC §7):

1. split the snapshot's sessions in time order: oldest → train, then validation, latest → test;
2. Hyperopt TPE (seeded) over logistic regression vs gradient-boosted trees; each trial's loss is the
   mean log-loss of expanding-window walk-forward folds inside train; each trial is a nested MLflow
   run with its params, fold and validation metrics, a calibration plot and a confusion matrix;
3. refit the best on the *fit rows* — train ∪ validation by default (the latest labelled days are
   the most informative about the test days, and validation has done its job once the search is
   over); ``refit="train"`` keeps validation out. The test sessions never touch any fit;
4. check that every normalisation statistic came from the fit rows (``assert_fitted_on``), score
   the test sessions against the majority-class baseline, build the retrieval memory from the fit
   rows, register the pipeline and move the alias.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np

from connectors.mlflow.tracking import ModelVersionRef
from operators.features.registry import REGISTRY_VERSION
from operators.learning.classes import N_CLASSES
from operators.learning.dataset import TrainingSet
from operators.learning.metrics import Evaluation, evaluate, majority_baseline
from operators.learning.split import Fold, SessionSplit, split_sessions, walk_forward

log = logging.getLogger(__name__)

Refit = Literal["train", "train+validation"]


@dataclass(frozen=True, slots=True)
class TrialResult:
    number: int
    params: dict[str, Any]
    cv_log_loss: float
    """Mean walk-forward log-loss inside train: the search objective."""
    fold_log_loss: tuple[float, ...]
    validation: Evaluation
    """Fitted on all train sessions, scored on the validation sessions."""
    run_id: str


@dataclass(frozen=True, slots=True)
class TrainingReport:
    model_id: str
    snapshot_id: str
    registry_version: str
    seed: int
    split: SessionSplit
    folds: tuple[Fold, ...]
    refit: Refit
    rows: dict[str, int]
    """Rows per split: train, validation, test, fit (= what the final model and memory saw)."""
    trials: tuple[TrialResult, ...]
    best: TrialResult
    validation_baseline: Evaluation
    test: Evaluation
    test_baseline: Evaluation
    version: ModelVersionRef
    run_id: str
    tracking_uri: str


def train_model(snapshot_dir: Path | str, model_id: str = "ES_MODEL", trials: int = 20, seed: int = 0, *,
                alias: str | None = "champion", refit: Refit = "train+validation",
                threads: int | None = 1) -> TrainingReport:
    """Train from the snapshot directory ``<lake>/ml/datasets/{model_id}/{snapshot_id}``."""
    from connectors.delta.snapshots import load_snapshot_dir, training_set

    ref, table = load_snapshot_dir(Path(snapshot_dir))
    if ref.model_id != model_id:
        from operators.errors import ConfigError

        msg = f"snapshot {ref.snapshot_id} holds rows of {ref.model_id}, not {model_id}; pass --model-id {ref.model_id}"
        raise ConfigError(msg)
    return train_on(training_set(table), model_id=model_id, snapshot_id=ref.snapshot_id,
                    registry_version=ref.registry_version, trials=trials, seed=seed, alias=alias, refit=refit,
                    threads=threads)


def train_on(rows: TrainingSet, *, model_id: str, snapshot_id: str, registry_version: str, trials: int, seed: int,
             alias: str | None = "champion", refit: Refit = "train+validation",
             threads: int | None = 1) -> TrainingReport:
    """The whole search → refit → register sequence on rows already in memory.

    ``threads`` caps the native thread pools (OpenMP/BLAS) of the fits; ``None`` leaves them alone.
    One thread is the default: with hundreds to a few thousand rows, the boosted trees' OpenMP
    overhead dominates, and threads that oversubscribe a small shared machine make a fit many
    times slower than a single-threaded one (docs/benchmarks.md).
    """
    import mlflow
    from threadpoolctl import threadpool_limits

    from connectors.mlflow.tracking import configure, use_experiment
    from operators.errors import ConfigError

    if registry_version != REGISTRY_VERSION:
        msg = (f"snapshot {snapshot_id} was built with feature registry {registry_version}, this code computes "
               f"{REGISTRY_VERSION}; replay and snapshot again so the model scores the vectors it was trained on")
        raise ConfigError(msg)
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    try:
        split = split_sessions(rows.sessions)
        folds = walk_forward(split.train)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    uri = configure()
    use_experiment(model_id, uri)
    fit_sessions = split.train + split.validation if refit == "train+validation" else split.train
    plan = _Plan(model_id, snapshot_id, registry_version, seed, trials, refit, alias, split, folds,
                 train=rows.in_sessions(split.train), validation=rows.in_sessions(split.validation),
                 test=rows.in_sessions(split.test), fit=rows.in_sessions(fit_sessions))
    if len(np.unique(plan.fit.outcomes)) < N_CLASSES:
        raise ConfigError(f"the fit sessions of snapshot {snapshot_id} lack an outcome class; snapshot more sessions")
    with threadpool_limits(limits=threads), mlflow.start_run(run_name=f"train-{snapshot_id}") as parent:
        _log_setup(plan)
        results = _search(rows, plan)
        best = min(results, key=lambda r: (r.cv_log_loss, r.number))
        return _finish(plan, best, results, parent.info.run_id, uri)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything one training run decided before the search: ids, split and the rows of each part."""

    model_id: str
    snapshot_id: str
    registry_version: str
    seed: int
    trials: int
    refit: Refit
    alias: str | None
    split: SessionSplit
    folds: tuple[Fold, ...]
    train: TrainingSet
    validation: TrainingSet
    test: TrainingSet
    fit: TrainingSet
    """What the final model and the retrieval memory are fitted on (``refit``)."""


def _log_setup(plan: _Plan) -> None:
    import mlflow

    mlflow.set_tags({"snapshot_id": plan.snapshot_id, "registry_version": plan.registry_version})
    mlflow.log_params({
        "snapshot_id": plan.snapshot_id, "registry_version": plan.registry_version, "seed": plan.seed,
        "trials": plan.trials, "refit": plan.refit, "folds": len(plan.folds),
        **{f"{k}_sessions": _span(getattr(plan.split, k)) for k in ("train", "validation", "test")},
        **{f"{k}_rows": len(getattr(plan, k)) for k in ("train", "validation", "test", "fit")},
    })


def _search(rows: TrainingSet, plan: _Plan) -> list[TrialResult]:
    from hyperopt import STATUS_OK, Trials, fmin, tpe

    from operators.learning.models import SEARCH_SPACE

    results: list[TrialResult] = []

    def objective(params: dict[str, Any]) -> dict[str, Any]:
        result = _trial(len(results), params, rows, plan)
        results.append(result)
        return {"loss": result.cv_log_loss, "status": STATUS_OK}

    fmin(objective, SEARCH_SPACE, algo=tpe.suggest, max_evals=plan.trials, trials=Trials(),
         rstate=np.random.default_rng(plan.seed), show_progressbar=False)
    return results


def _trial(number: int, params: dict[str, Any], rows: TrainingSet, plan: _Plan) -> TrialResult:
    import mlflow

    from connectors.mlflow.trials import log_evaluation
    from operators.learning.models import flat_params

    with mlflow.start_run(run_name=f"trial-{number:03d}", nested=True) as run:
        mlflow.log_params(flat_params(params))
        losses = []
        for k, fold in enumerate(plan.folds):
            fit, score = rows.in_sessions(fold.fit), rows.in_sessions(fold.score)
            proba = _fit_predict(params, plan.seed, fit, score)
            losses.append(evaluate(score.outcomes, proba).log_loss)
            mlflow.log_metric(f"fold{k}_log_loss", losses[-1])
        cv = float(np.mean(losses))
        proba = _fit_predict(params, plan.seed, plan.train, plan.validation)
        validation = evaluate(plan.validation.outcomes, proba)
        mlflow.log_metric("cv_log_loss", cv)
        log_evaluation(validation, plan.validation.outcomes, proba, prefix="val_")
    log.info("trial %d %s: cv log-loss %.4f, validation log-loss %.4f", number, params["family"], cv,
             validation.log_loss)
    return TrialResult(number, dict(params), cv, tuple(losses), validation, run.info.run_id)


def _fit_predict(params: dict[str, Any], seed: int, fit: TrainingSet, score: TrainingSet) -> np.ndarray:
    from operators.learning.frame import vectors_matrix
    from operators.learning.leakage import assert_fitted_on
    from operators.learning.models import make_pipeline, predict_proba3

    pipeline = make_pipeline(params, seed).fit(vectors_matrix(fit.vectors), fit.outcomes)
    assert_fitted_on(pipeline, fit.vectors)
    return predict_proba3(pipeline, vectors_matrix(score.vectors))


def _finish(plan: _Plan, best: TrialResult, results: list[TrialResult], run_id: str, uri: str) -> TrainingReport:
    import mlflow

    from connectors.mlflow.registry import register_pipeline
    from connectors.mlflow.trials import log_evaluation
    from operators.learning.dataset import memory_from
    from operators.learning.frame import vectors_matrix
    from operators.learning.leakage import assert_fitted_on
    from operators.learning.models import flat_params, make_pipeline, predict_proba3

    fit, test = plan.fit, plan.test
    final = make_pipeline(best.params, plan.seed).fit(vectors_matrix(fit.vectors), fit.outcomes)
    memory = memory_from(fit)
    assert_fitted_on(final, fit.vectors)
    assert_fitted_on(memory.scaling, fit.vectors)
    proba = predict_proba3(final, vectors_matrix(test.vectors))
    test_eval = evaluate(test.outcomes, proba)
    test_base = majority_baseline(fit.outcomes, test.outcomes)
    val_base = majority_baseline(plan.train.outcomes, plan.validation.outcomes)
    mlflow.log_params({f"best_{k}": v for k, v in flat_params(best.params).items()} | {"best_trial": best.number})
    mlflow.log_metrics({"best_cv_log_loss": best.cv_log_loss, **best.validation.metrics("val_"),
                        **val_base.metrics("baseline_val_"), **test_base.metrics("baseline_test_")})
    log_evaluation(test_eval, test.outcomes, proba, prefix="test_")
    version = register_pipeline(
        final, model_id=plan.model_id, snapshot_id=plan.snapshot_id, registry_version=plan.registry_version,
        input_example=vectors_matrix(fit.vectors[:2]), memory=memory, alias=plan.alias,
        tags={"seed": str(plan.seed), "best_family": str(best.params["family"]), "refit": plan.refit,
              "test_sessions": _span(plan.split.test)})
    rows = {k: len(getattr(plan, k)) for k in ("train", "validation", "test", "fit")}
    return TrainingReport(plan.model_id, plan.snapshot_id, plan.registry_version, plan.seed, plan.split, plan.folds,
                          plan.refit, rows, tuple(results), best, val_base, test_eval, test_base, version, run_id, uri)


def _span(days: tuple[date, ...]) -> str:
    return f"{days[0]}..{days[-1]} ({len(days)})" if days else "-"
