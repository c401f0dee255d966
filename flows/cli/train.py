"""``spymaster train``: Hyperopt search on a training snapshot, every trial in MLflow, register the winner."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from flows.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train on a snapshot (time-ordered split, Hyperopt TPE, MLflow) and register the champion",
        description=(
            "Split the snapshot's sessions in time order (train, validation, latest = test), search "
            "logistic regression vs gradient-boosted trees with Hyperopt TPE on walk-forward log-loss "
            "inside train, log every trial to MLflow as a nested run, refit the best, score the test "
            "sessions against the majority-class baseline, register the model under --model-id with its "
            "retrieval memory and move the alias. Tracking store: MLFLOW_TRACKING_URI, or sqlite mlflow.db "
            "in the working directory."
        ),
    )
    p.add_argument("--model-id", default="ES_MODEL", help="registered model name (default ES_MODEL)")
    p.add_argument("--snapshot", help="snapshot id (default: the latest `spymaster snapshot` of the model)")
    p.add_argument("--trials", type=int, default=20, help="Hyperopt evaluations (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and the models (default 0)")
    p.add_argument("--lake", help="lake root holding ml/datasets (default: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--refit", choices=("train+validation", "train"), default="train+validation",
                   help="sessions the final model is fitted on (default train+validation; test never)")
    p.add_argument("--alias", default="champion", help="alias moved to the new version (default champion)")
    p.add_argument("--threads", type=int, default=1, help="native threads per fit (default 1; 0 = library default)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from connectors.delta.snapshots import datasets_dir, latest_snapshot_id
    from flows.jobs.training import train_model

    cfg = load_config()
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    snapshot_id = args.snapshot or latest_snapshot_id(lake, args.model_id)
    console = Console(width=None if sys.stdout.isatty() else 120)
    if snapshot_id is None:
        console.print(f"No training snapshot of {args.model_id} in {datasets_dir(lake, args.model_id)}; "
                      f"take one with `spymaster snapshot --model-id {args.model_id}` first.", soft_wrap=True)
        return 1
    report = train_model(datasets_dir(lake, args.model_id) / snapshot_id, args.model_id, args.trials, args.seed,
                         alias=args.alias, refit=args.refit, threads=args.threads or None)
    print_report(report, console)
    return 0


def print_report(report, console: Console) -> None:
    """Trials, the chosen model, validation and test metrics against the baseline, the new version."""
    trials = Table(title=f"{report.model_id}: {len(report.trials)} trials on snapshot {report.snapshot_id}")
    for name in ("trial", "family", "params", "walk-forward log-loss", "val log-loss", "val bal. acc."):
        trials.add_column(name, justify="left" if name in ("family", "params") else "right")
    for t in report.trials:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(t.params.items()) if k != "family")
        mark = " *" if t.number == report.best.number else ""
        trials.add_row(f"{t.number}{mark}", t.params["family"], params, f"{t.cv_log_loss:.4f}",
                       f"{t.validation.log_loss:.4f}", f"{t.validation.balanced_accuracy:.3f}")
    console.print(trials)
    split = report.split
    summary = Table(title="best model (*) vs majority-class baseline")
    for name in ("split", "sessions", "rows", "log-loss", "baseline log-loss", "accuracy", "baseline acc.",
                 "bal. acc.", "Brier"):
        summary.add_column(name, justify="left" if name in ("split", "sessions") else "right")
    for name, days, ev, base, rows in (
        ("validation", split.validation, report.best.validation, report.validation_baseline, report.rows["validation"]),
        ("test", split.test, report.test, report.test_baseline, report.rows["test"]),
    ):
        summary.add_row(name, f"{days[0]:%m-%d}..{days[-1]:%m-%d} ({len(days)})", str(rows),
                        f"{ev.log_loss:.4f}", f"{base.log_loss:.4f}", f"{ev.accuracy:.3f}", f"{base.accuracy:.3f}",
                        f"{ev.balanced_accuracy:.3f}", f"{ev.brier:.4f}")
    console.print(summary)
    console.print(f"train sessions {split.train[0]}..{split.train[-1]} ({report.rows['train']} rows), "
                  f"{len(report.folds)} walk-forward folds; final fit on {report.refit} ({report.rows['fit']} rows)",
                  soft_wrap=True)
    v = report.version
    console.print(f"registered {v.model_id} version {v.version} (run {v.run_id}), alias moved; "
                  f"tracking {report.tracking_uri}", soft_wrap=True)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
