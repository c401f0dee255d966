"""``spymaster bench --options``: the whole flow on a day with the ES options chain, against the
same day's futures alone.

One simulated day with the chain (``spymaster synth --options``: 650 options over 5 expiries) is
replayed twice into fresh lakes, with every Silver and Gold table: (a) its futures files alone,
(b) every file, futures and options. Records/s of each counts the MBO records replayed; the
ratio (b)/(a) is the figure with a target (>= 0.7). Both are timed after an untimed run of (b):
numba compiles a kernel the first time a process meets it with an empty or stale on-disk cache
(after a change to its source, or in a fresh clone), seconds a deployed flow pays once, not per
day; timed inside (b) they were about a quarter of its run in one profile. Then (a) and (b)
alternate ``repeats`` times: this machine's speed drifts by a quarter between minutes, so one pair
can land on either side of the target by chance; the figure is the median pair's ratio (the
median of the ratios), and each pair is printed. Then (c): the last (b) lake's Bronze replayed
into a new lake (``--from-bronze``: every option its own slice, the chains rebuilt from them),
against that (b). The GEX step's own cost is measured apart: ``ChainGex`` over the front
future's chain for the day, on the
underlying's 1-second mids from the (a) lake, as CPU seconds per second of market time (the
session's span).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPTIONS_TARGET = 0.7


@dataclass(frozen=True, slots=True)
class OptionsBench:
    futures_records: int
    option_records: int
    options: int
    futures_rps: float
    chain_rps: float
    ratio: float
    """The median of ``ratios``; ``futures_rps`` and ``chain_rps`` are that pair's."""
    ratios: tuple[float, ...]
    """(b)/(a) of each pair, in the order run."""
    gex_seconds: int
    """Seconds of the front chain that got GEX rows."""
    market_seconds: int
    gex_ms_per_market_second: float
    gex_ms_per_row_second: float
    bronze_rps: float = 0.0
    """(c): the day with the chain replayed from the last (b) lake's Bronze (a slice per option)."""
    bronze_vs_chain: float = 0.0
    """(c) / (b) of the last pair."""

    @property
    def met(self) -> bool:
        return self.ratio >= OPTIONS_TARGET


def measure_options(cache: Path, records: int, workers: int, repeats: int = 3) -> OptionsBench:
    from connectors.delta.lake import Lake
    from flows.bench.runs import simulated_day, timed_flow

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    day = simulated_day(cache, records, options=True)
    everything = sorted(day.glob("*.dbn.zst"))
    futures = [p for p in everything if ".options." not in p.name]
    scratch = Path(tempfile.mkdtemp(prefix="spymaster-bench-options-"))
    try:
        timed_flow(tuple(map(str, everything)), scratch / "warm-up", workers, analytics=True)
        shutil.rmtree(scratch / "warm-up")
        pairs = []
        for k in range(repeats):
            if k:
                shutil.rmtree(scratch / "futures")
                shutil.rmtree(scratch / "chain")
            futures_s = timed_flow(tuple(map(str, futures)), scratch / "futures", workers, analytics=True)
            chain_s = timed_flow(tuple(map(str, everything)), scratch / "chain", workers, analytics=True)
            pairs.append((futures_s, chain_s))
        n_futures, n_options, listed = _counts(Lake(str(scratch / "chain")))
        bronze_s = timed_flow((f"bronze://{scratch / 'chain'}",), scratch / "from-bronze", workers, analytics=True)
        gex_s, rows, span = _gex_alone(day, Lake(str(scratch / "futures")))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rates = [(n_futures / a, (n_futures + n_options) / b) for a, b in pairs]
    ratios = [chain / futures for futures, chain in rates]
    futures_rps, chain_rps = rates[int(np.argsort(ratios)[(len(ratios) - 1) // 2])]  # the median pair (lower middle)
    return OptionsBench(n_futures, n_options, listed, round(futures_rps), round(chain_rps),
                        round(chain_rps / futures_rps, 3), tuple(round(r, 3) for r in ratios), rows, span,
                        round(1000 * gex_s / span, 4), round(1000 * gex_s / max(rows, 1), 3),
                        round((n_futures + n_options) / bronze_s), round(pairs[-1][1] / bronze_s, 3))


def _counts(lake) -> tuple[int, int, int]:  # noqa: ANN001 - connectors.delta.lake.Lake
    from connectors.delta.tables import BRONZE_DEFINITIONS, BRONZE_MBO

    kinds = np.asarray(lake.read(BRONZE_MBO, ["instrument_type"])["instrument_type"].to_pylist())
    classes = lake.read(BRONZE_DEFINITIONS, ["instrument_class"])["instrument_class"].to_pylist()
    return int((kinds != "OPT").sum()), int((kinds == "OPT").sum()), sum(c in ("C", "P") for c in classes)


def _gex_alone(day: Path, futures_lake) -> tuple[float, int, int]:  # noqa: ANN001 - a Lake
    """CPU time of ``ChainGex.seconds`` over the front chain's day (its tops computed beforehand)."""
    from connectors.dbn.chains import chain_facts
    from connectors.dbn.files import read_mbo_file
    from connectors.delta.tables import SILVER_BOOK_1S
    from flows.steps.option_chain import session_open_interest
    from operators.options.chain import ChainGex, ChainGexConfig, OptionTops
    from operators.records import UNDEF_PRICE
    from operators.sessions import date_to_day

    mbo = next(day.glob("*.options.mbo.dbn.zst"))
    records, instruments, _ = read_mbo_file(mbo)
    tops = OptionTops({i: o.tick for i, o in instruments.items()})
    rows = np.concatenate([tops.apply(records), tops.close()])
    front = min(o.underlying_id for o in instruments.values() if o.instrument_type == "OPT")
    options = [o for o in instruments.values() if o.instrument_type == "OPT" and o.underlying_id == front]
    stats = sorted(day.glob("*.statistics.dbn.zst"))
    facts = chain_facts(futures_lake, [(mbo, "mbo", ()), *((p, "statistics", ()) for p in stats)])
    book = futures_lake.read(SILVER_BOOK_1S, ["ts_recv", "instrument_id", "session_date", "best_bid_px",
                                              "best_ask_px", "book_valid"], f'"instrument_id" = {front}')
    book = book.sort_by("ts_recv")
    bid, ask = book["best_bid_px"].to_numpy(), book["best_ask_px"].to_numpy()
    both = book["book_valid"].to_numpy() & (bid != UNDEF_PRICE) & (ask != UNDEF_PRICE)
    mids = np.where(both, (bid.astype(np.float64) + ask) / 2e9, np.nan)
    closes = book["ts_recv"].to_numpy()
    session = date_to_day(book["session_date"][0].as_py())
    gex = ChainGex("front", session_open_interest(facts, front, session), ChainGexConfig())
    gex.add(options)
    gex.quotes(rows)
    gex.seconds(closes[:2], mids[:2])  # compile outside the timing
    started = time.process_time()
    _, summaries, _ = gex.seconds(closes[2:], mids[2:])
    elapsed = time.process_time() - started
    span = int((records["ts_recv"].max() - records["ts_recv"].min()) // 1_000_000_000)
    return elapsed, len(summaries), max(span, 1)


def print_options(found: OptionsBench, console) -> None:  # noqa: ANN001 - rich Console
    from rich.table import Table

    table = Table(title=f"spymaster bench --options: {found.futures_records:,} futures + {found.option_records:,} "
                        f"option MBO records, {found.options} options")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("(a) whole flow, futures alone, records/s (the median pair)", f"{found.futures_rps:,.0f}", "")
    table.add_row("(b) whole flow with the chain, records/s", f"{found.chain_rps:,.0f}", "")
    table.add_row(f"(b) / (a), the median of {len(found.ratios)} pair(s)", f"{found.ratio:.2f}", f">= {OPTIONS_TARGET}")
    table.add_row("(b) / (a) of each pair, in order", " / ".join(f"{r:.2f}" for r in found.ratios), "")
    table.add_row("GEX step, ms of CPU per second of market time (front chain)",
                  f"{found.gex_ms_per_market_second:.3f}", "")
    table.add_row("GEX step, ms per second with GEX rows", f"{found.gex_ms_per_row_second:.3f}", "")
    table.add_row("seconds with GEX rows / market seconds", f"{found.gex_seconds:,} / {found.market_seconds:,}", "")
    table.add_row("(c) the same day replayed from (b)'s Bronze (a slice per option), records/s",
                  f"{found.bronze_rps:,.0f}", "")
    table.add_row("(c) / (b) of the last pair", f"{found.bronze_vs_chain:.2f}", "")
    console.print(table)
    console.print("target: met" if found.met else "target: NOT met")
