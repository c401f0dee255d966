"""``spymaster synth``: write simulated Databento DBN files (MBO, definitions, statistics, truth)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="simulate trading days as real DBN files",
        description=(
            "Write one set of DBN files per trading day: instrument definitions, MBO (04:00-16:00 ET, "
            "starting with a book snapshot), statistics, and the simulator's true book as MBP-10 under "
            "truth/. With --options, also the ES options chain on those futures: definitions (call/put, strike, "
            "expiration, underlying), open interest as of the prior close, market-maker quotes on an "
            "implied-volatility smile with trades, and each option's true top of book. With --equities, also a "
            "US stock (TSLA on Nasdaq, XNAS.ITCH: definition, MBO from 04:00 pre-market to 16:00 ET, its true "
            "book) whose sessions follow the US equities calendar. The same seed always gives byte-identical files."
        ),
    )
    p.add_argument("--days", type=int, default=3, help="consecutive trading days (default 3)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--events-per-day", type=int, default=100_000,
                   help="approximate MBO records per day over both contracts (default 100000; 10M+ for benchmarks)")
    p.add_argument("--start", type=date.fromisoformat, default=date(2025, 11, 3),
                   help="first trading day, YYYY-MM-DD (default 2025-11-03)")
    p.add_argument("--options", action="store_true",
                   help="add the ES options chain (650 calls and puts over 5 expiries) as *.options.*.dbn.zst files")
    p.add_argument("--equities", action="store_true",
                   help="add TSLA on Nasdaq (XNAS.ITCH MBO, tick 0.01) as xnas-itch-*.dbn.zst files")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from replay.synth import write_sample

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    with console.status("simulating…") as status:
        manifest = write_sample(
            args.out, days=args.days, seed=args.seed, events_per_day=args.events_per_day,
            start_date=args.start, progress=lambda msg: status.update(msg), options=args.options,
            equities=args.equities,
        )
    for d in manifest.days:
        line = f"{d.trade_date}: {d.mbo_records:,} futures MBO records"
        if d.options is not None:
            line += f", {d.options.instruments} options with {d.options.mbo_records:,} MBO records"
        if d.equities is not None:
            line += f", TSLA {d.equities.mbo_records:,} MBO records"
        console.print(line)
    console.print(f"wrote {len(manifest.files())} files to {manifest.out_dir}")
    return 0
