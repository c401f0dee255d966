"""``spymaster book``: the top N levels after every F_LAST, per instrument, as Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "book",
        help="rebuild the book from an MBO file and write the top N levels after every event",
        description=(
            "Rebuild every instrument's L3 book from a DBN MBO file and write its top N levels after "
            "every F_LAST record, like Databento's MBP-10: columns ts_recv, instrument_id, "
            "bid_px_00.., bid_sz_00.., bid_ct_00.., ask_px_00.., ask_sz_00.., ask_ct_00.. "
            "(prices int64 in 1e-9 units; empty levels have price INT64_MAX and size 0)."
        ),
    )
    p.add_argument("file", type=Path, help="a .dbn or .dbn.zst MBO file")
    p.add_argument("--depth", type=int, default=10, help="levels per side (default 10)")
    p.add_argument("--out", type=Path, required=True, help="output Parquet file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from connectors.dbn.files import read_mbo_file
    from flows.jobs.mbp import top_levels_table

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    records, instruments, fault = read_mbo_file(args.file)
    if fault is not None:
        console.print(f"[yellow]warning[/yellow]: {args.file} {fault.reason} at record {fault.record:,}: "
                      f"{fault.detail}")
    table, anomalies = top_levels_table(records, instruments, args.depth)
    pq.write_table(table, args.out, compression="zstd")
    console.print(f"wrote {table.num_rows:,} rows ({len(instruments)} instruments) to {args.out}")
    for iid, counts in sorted(anomalies.items()):
        found = {k: v for k, v in counts.items() if v}
        if found:
            console.print(f"  instrument {iid} anomalies: {found}")
    return 0
