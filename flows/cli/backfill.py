"""``spymaster backfill``: replay, calibrate, snapshot, train and promote a range, resumably."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console

from flows.config import DateRange, load_config
from operators.sessions import NEW_YORK


def _dates(text: str) -> DateRange:
    """``A:B``, or ``today`` / ``yesterday`` (New York's date: a nightly run after the close)."""
    relative = {"today": 0, "yesterday": 1}
    if text in relative:
        day = datetime.now(NEW_YORK).date() - timedelta(days=relative[text])
        return DateRange(first=day, last=day)
    return DateRange.parse(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backfill",
        help="replay a date range, calibrate, snapshot, train and promote (resumable)",
        description=(
            "The historical jobs in order, as one command: replay the range's files into the lake (finished "
            "files are skipped), calibrate its physics bands, snapshot the model's labelled rows, train on them "
            "and register the new version as 'challenger', then promote it to 'champion' only when it beats the "
            "current champion on the snapshot's latest sessions (or there is none, or it is stale); the rule, "
            "both scores and the decision are logged to MLflow. Progress is kept in a state file: a rerun "
            "after a failure starts at the failed step, and a finished range does nothing again."
        ),
    )
    p.add_argument("paths", nargs="*", help="DBN files, directories or globs (default: SPYMASTER_INPUT or the sample)")
    p.add_argument("--dates", type=_dates, required=True,
                   help="sessions A:B (YYYY-MM-DD:YYYY-MM-DD), or 'today' / 'yesterday' (New York) for a nightly run")
    p.add_argument("--lake", help="lake root, a local path (default: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--model-id", default="ES_MODEL", help="model to train and promote (default ES_MODEL)")
    p.add_argument("--trials", type=int, default=20, help="Hyperopt evaluations of the training (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and the models (default 0)")
    p.add_argument("--state", type=Path, help="progress file (default <lake>/_backfill/<model>-<first>-<last>.json)")
    p.add_argument("--restart", action="store_true", help="forget the saved progress and run every step again")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.jobs.backfill import BackfillPlan, default_state_path, run_backfill

    cfg = load_config()
    lake = args.lake or cfg.lake.root
    state = args.state or default_state_path(lake, args.dates, args.model_id)
    plan = BackfillPlan(lake=lake, dates=args.dates, inputs=tuple(args.paths), model_id=args.model_id,
                        trials=args.trials, seed=args.seed, state_path=state)
    if args.restart:
        state.unlink(missing_ok=True)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    console.print(f"[bold]backfill[/bold] {args.model_id} {args.dates.first}:{args.dates.last} into {lake} "
                  f"(progress in {state})", soft_wrap=True)
    final = run_backfill(plan, lambda line: console.print(line, soft_wrap=True, highlight=False))
    promote = final["steps"]["promote"]
    console.print(f"[bold]done[/bold]: {args.model_id}@champion is version {promote['champion_version']} "
                  f"({promote['decision']}: {promote['reason']})", soft_wrap=True)
    return 0
