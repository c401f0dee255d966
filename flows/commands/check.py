"""``spymaster check``: verify the lake's invariants and say exactly what is wrong."""

from __future__ import annotations

import argparse
import sys

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
            "is known; every label equals the outcome recomputed from the 1-second mid."
        ),
    )
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from flows.integrity import check_lake

    cfg = load_config()
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    report = check_lake(lake)
    console = Console(width=None if sys.stdout.isatty() else 120)
    for result in report:
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {result.name}: {result.detail}")
    return 0 if all(r.ok for r in report) else 1
