"""``spymaster calibrate``: physics-band normalisation from full-day statistics."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from flows.config import DateRange, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="compute gold.physics_norm_calibration from full days of silver.physics_bands_1s",
        description=(
            "For every contract and session in silver.physics_bands_1s (or those in --dates), take the "
            "p5/p95 quantiles of each raw band over the whole day and store them in "
            "gold.physics_norm_calibration (replacing an earlier calibration of the same day). Later "
            "replays normalise a session's bands with the latest calibration strictly before it."
        ),
    )
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--dates", type=DateRange.parse, help="only sessions in A:B")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from flows.jobs.calibration import calibrate_lake

    cfg = load_config()
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    written = calibrate_lake(lake, args.dates)
    console = Console(width=None if sys.stdout.isatty() else 120)
    for contract, day, rows in written:
        console.print(f"calibrated {contract} {day} from {rows:,} seconds")
    if not written:
        console.print("no physics bands to calibrate from; run `spymaster replay` first")
        return 1
    return 0
