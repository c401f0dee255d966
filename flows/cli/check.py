"""``spymaster check``: verify the lake's invariants and say exactly what is wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from flows.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="verify the lake's integrity (exit 1 when a check fails)",
        description=(
            "Checks: valid books are never crossed; no duplicate keys in Bronze or Silver; 1-second "
            "snapshots strictly increasing and gap-free per contract and session; every manifest row "
            "agrees with the rows and dead letters of its file; 5-second bars agree with the Bronze "
            "trades (volume, high/low); physics bands lie in 0..1; no episode starts before its level "
            "is known; every label equals the outcome recomputed from the 1-second mid. "
            "With --file: account for every byte of input files instead (the conservation law of Bronze): "
            "each record is a Bronze row and each damaged stretch a dead letter holding its bytes, once."
        ),
    )
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--file", dest="files", action="append", type=Path, metavar="PATH",
                   help="a DBN file the lake was fed (repeatable; directories and globs as for replay): rebuild "
                        "its bytes from the lake's rows and dead letters and compare")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from flows.jobs.integrity import check_lake

    cfg = load_config()
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.files:
        return _account(lake, args.files, console)
    report = check_lake(lake)
    for result in report:
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {result.name}: {result.detail}")
    return 0 if all(r.ok for r in report) else 1


def _account(lake: object, specs: list[Path], console: Console) -> int:
    from connectors.dbn.source import resolve_inputs
    from flows.jobs.accounting import account_for_file
    from operators.errors import SourceError

    try:
        paths = resolve_inputs(specs)
    except SourceError as err:
        console.print(f"[red]{err}[/red]")
        return 2
    accounts = [account_for_file(lake, path) for path in paths]  # type: ignore[arg-type]
    for account in accounts:
        mark = "[green]ok[/green]  " if account.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {account.summary()}", soft_wrap=True)
    return 0 if all(a.ok for a in accounts) else 1
