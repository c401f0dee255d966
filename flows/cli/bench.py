"""``spymaster bench``: throughput of each layer of the replay spine on a simulated day."""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flows.bench.runs import simulated_day
from flows.bench.runs import timed_flow as _timed_flow
from flows.config import RECOVERY_EPOCH_S


def _at_least_one(text: str) -> int:
    """A count of runs or pages: a whole number of at least 1 (0 would measure nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class BenchResult:
    records: int
    decode_rps: float
    floor_rps: float
    book_kernel_rps: float
    flow_rps: float
    flow_vs_floor: float
    flow_full_rps: float
    analytics_cost: float
    peak_rss_mib: float
    bronze_read_rps: float
    """(f) the day's ``bronze.mbo`` (from the (e) run's lake) read back as ordered MBO records."""
    bronze_read_vs_decode: float
    """(f) / (a): a Bronze replay should read no slower than the file decodes."""
    flow_bronze_rps: float
    """(g) the whole flow fed from that Bronze (``bronze://``) into another lake's Silver and Gold."""
    bronze_flow_vs_file: float
    """(g) / (e)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure decode, Delta write, book kernel and whole-flow throughput",
        description=(
            "Generate (or reuse, under --cache) one simulated day of about --records MBO records and print "
            "records/s for (a) decode (DBN -> arrays), (b) decode + one Delta write, (c) the book kernel "
            "alone, (d) the replay spine to Bronze + the 1-second book, (e) the whole flow with every Silver and "
            "Gold table, (f) the day's bronze.mbo read back as ordered MBO records (a Bronze replay's source), "
            "(g) the whole flow fed from that Bronze into another lake; then (d)/(b), (e)/(d), (f)/(a), (g)/(e) "
            "and peak RSS."
        ),
    )
    p.add_argument("--records", type=int, default=5_000_000, help="MBO records in the simulated day (default 5M)")
    p.add_argument("--workers", type=int, default=1,
                   help="Bytewax workers for the whole-flow run (default 1: one file is one partition)")
    p.add_argument("--cache", type=Path, default=Path(".bench"), help="where simulated days are kept (default .bench)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--scoring", action="store_true",
                   help="instead: per-episode scoring latency p50/p95/p99 of the local and mlflow-http backends and "
                        "retrieval queries/s, for ES_MODEL@champion (or a synthetic model in a temporary store)")
    p.add_argument("--episodes", type=int, default=2_000,
                   help="episodes scored in-process with --scoring (default 2000; at most 500 go to the HTTP server)")
    p.add_argument("--live", action="store_true",
                   help="instead: the live path on a local broker (publish at real time x --speed, then at max "
                        "speed; records/s, consumer lag, latency publish -> Silver row and -> score); "
                        "see flows.bench.live")
    p.add_argument("--eventhouse", action="store_true",
                   help="instead: the whole flow's records/s with and without the Eventhouse sink (into the local "
                        "Eventhouse in its own process), the sink's cost, and rows/s acknowledged; see "
                        "flows.bench.eventhouse. With --live: the flow also feeds a local Eventhouse and the "
                        "bench adds the latency publish -> score acknowledged by it")
    p.add_argument("--hud", action="store_true",
                   help="instead: the heads-up display on the live path (publish at real time x --speed): latency "
                        "publish -> frame received by a headless Chromium page, the page's render time per frame, "
                        "and the HUD server's CPU per page; see flows.bench.hud")
    p.add_argument("--options", action="store_true",
                   help="instead: the whole flow on a day with the ES options chain (650 options) against the same "
                        "day's futures alone (records/s and their ratio, target >= 0.7), the same day replayed "
                        "from its Bronze with the chains rebuilt, and the GEX step's CPU per second of market "
                        "time; see flows.bench.options")
    p.add_argument("--repeats", type=_at_least_one, default=3,
                   help="--options: (a) and (b) run alternately this many times; the median pair is the figure "
                        "(default 3)")
    p.add_argument("--pages", type=_at_least_one, default=2, help="--hud: browser pages connected (default 2)")
    p.add_argument("--speed", type=float, default=10.0,
                   help="--live: real time x SPEED for the paced phase (default 10)")
    p.add_argument("--window-minutes", type=float, default=20.0,
                   help="--live: minutes of RTH published at --speed after a max-speed warm-up (default 20)")
    p.add_argument("--broker", choices=("mock", "tansu"), default="mock",
                   help="--live: the broker of the paced phase: librdkafka's mock cluster in its own process "
                        "(default; answers a short fetch wait cheaply, keeps 5 MiB per partition) or tansu; "
                        "the max-speed phase always runs on tansu")
    p.add_argument("--fetch-wait-ms", type=int, default=None,
                   help="--live: the flow's consumer fetch.wait.max.ms (default: 10 on the mock, librdkafka's "
                        "500 on tansu; see connectors.kafka.source.TopicInput.fetch_wait_ms)")
    p.add_argument("--epoch-ms", type=int, default=RECOVERY_EPOCH_S * 1000,
                   help=f"--live: the flow's epoch (snapshot) interval (default {RECOVERY_EPOCH_S * 1000}, as "
                        "`spymaster replay --recovery` runs); rows commit every [lake] commit_every_s "
                        "whatever the epoch")
    p.set_defaults(run=run)


def bench_day(cache: Path, records: int) -> Path:
    """The MBO file of the cached simulated day (``flows.bench.runs.simulated_day``)."""
    return sorted(simulated_day(cache, records).glob("*.mbo.dbn.zst"))[0]


def _decode(path: Path):
    from connectors.dbn.files import read_mbo_file

    started = time.perf_counter()
    records, instruments, _ = read_mbo_file(path)
    return records, instruments, time.perf_counter() - started


def _floor(path: Path, scratch: Path) -> float:
    """Decode + Arrow + one Delta commit: what any DBN-to-Delta pipeline must pay."""
    import pyarrow as pa
    from deltalake import write_deltalake

    started = time.perf_counter()
    records, _, _ = _decode(path)
    table = pa.table({name: _signed(records[name]) for name in records.dtype.names})
    write_deltalake(str(scratch / "floor"), table, mode="overwrite")
    return time.perf_counter() - started


def _signed(column):
    """Delta has no unsigned types: reinterpret u8 as i8, widen the narrower ones."""
    import numpy as np

    if column.dtype.kind == "S":
        return column.view(np.uint8).astype(np.int16)
    if column.dtype == np.uint64:
        return column.view(np.int64)
    if column.dtype.kind == "u":
        return column.astype({1: np.int16, 2: np.int32, 4: np.int64}[column.dtype.itemsize])
    return column


def _kernel(records, instruments) -> float:
    import numpy as np

    from operators.book import L3Book

    parts = [(instruments[int(i)].tick if int(i) in instruments else 0, records[records["instrument_id"] == i])
             for i in np.unique(records["instrument_id"])]
    warm = L3Book(parts[0][0])
    warm.apply_only(parts[0][1][:1000])  # JIT compile / load from cache outside the timing
    elapsed = 0.0
    for tick, mine in parts:
        book = L3Book(tick)
        started = time.perf_counter()
        book.apply_only(mine)
        elapsed += time.perf_counter() - started
    return elapsed


def _flow(path: Path, scratch: Path, workers: int, *, analytics: bool) -> float:
    inputs = tuple(str(p) for p in sorted(path.parent.glob("*.dbn.zst")))
    return _timed_flow(inputs, scratch / ("lake-full" if analytics else "lake-spine"), workers, analytics=analytics)


def _flow_from_bronze(lake: Path, scratch: Path, workers: int) -> float:
    """The whole flow fed from ``bronze.mbo`` of ``lake`` into a new lake's Silver and Gold."""
    return _timed_flow((f"bronze://{lake}",), scratch / "lake-from-bronze", workers, analytics=True)


def _bronze_read(lake: Path) -> tuple[int, float]:
    """Every (session, contract) partition of ``bronze.mbo`` of ``lake`` read through the Bronze
    source, one after another as one worker reads them: scanned, put back in order, chunked.

    Planning (the catalog query over the table's partition columns, 0.2–0.3 s on the bench's day)
    is not timed: it runs once before a flow starts, as the file replay's header reads do, and
    the flows (d), (e) and (g) are timed without their planning too."""
    from connectors.bronze.catalog import bronze_slices, instruments_for, pinned_bronze
    from connectors.bronze.source import BronzeReplaySource
    from connectors.delta.lake import Lake

    table = pinned_bronze(Lake(str(lake)))
    slices = bronze_slices(table)
    source = BronzeReplaySource(table, slices, instruments_for(table.lake, slices))
    started = time.perf_counter()
    readers = [source.build_part("bench", part, None) for part in source.list_parts()]  # as a worker builds them
    for reader in readers:
        try:
            while True:
                reader.next_batch()
        except StopIteration:
            reader.close()
    return source.records_read, time.perf_counter() - started


def measure(records_wanted: int, workers: int, cache: Path) -> BenchResult:
    path = bench_day(cache, records_wanted)
    scratch = Path(tempfile.mkdtemp(prefix="spymaster-bench-"))
    try:
        _decode(path)  # warm the page cache
        records, instruments, decode_s = _decode(path)
        n = len(records)
        floor_s = _floor(path, scratch)
        kernel_s = _kernel(records, instruments)
        del records
        flow_s = _flow(path, scratch, workers, analytics=False)
        full_s = _flow(path, scratch, workers, analytics=True)
        _bronze_read(scratch / "lake-full")  # warm, as the decode above: page cache and compiled kernels
        bronze_n, bronze_s = _bronze_read(scratch / "lake-full")
        from_bronze_s = _flow_from_bronze(scratch / "lake-full", scratch, workers)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if bronze_n != n:
        raise RuntimeError(f"the Bronze of the day holds {bronze_n:,} records, the file {n:,}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchResult(
        records=n,
        decode_rps=round(n / decode_s),
        floor_rps=round(n / floor_s),
        book_kernel_rps=round(n / kernel_s),
        flow_rps=round(n / flow_s),
        flow_vs_floor=round(floor_s / flow_s, 3),
        flow_full_rps=round(n / full_s),
        analytics_cost=round(flow_s / full_s, 3),
        peak_rss_mib=round(peak, 1),
        bronze_read_rps=round(n / bronze_s),
        bronze_read_vs_decode=round(decode_s / bronze_s, 3),
        flow_bronze_rps=round(n / from_bronze_s),
        bronze_flow_vs_file=round(full_s / from_bronze_s, 3),
    )


def run(args: argparse.Namespace) -> int:
    if args.scoring:
        return _run_scoring(args)
    if args.options:
        from flows.bench.options import measure_options, print_options

        options = measure_options(args.cache, args.records, args.workers, args.repeats)
        if args.json:
            print(json.dumps({**asdict(options), "met": options.met}))
        else:
            print_options(options, Console(width=None if sys.stdout.isatty() else 140))
        return 0
    if args.hud:
        from connectors.mlflow.tracking import tracking_uri
        from flows.bench.hud import measure_hud, print_hud

        day = sorted(bench_day(args.cache, args.records).parent.glob("*.dbn.zst"))
        print_hud(measure_hud(day, speed=args.speed, window_minutes=args.window_minutes, pages=args.pages,
                              tracking_uri=tracking_uri()), as_json=args.json)
        return 0
    if args.live:
        from connectors.mlflow.tracking import tracking_uri
        from flows.bench.live import measure_live, print_live

        day = sorted(bench_day(args.cache, args.records).parent.glob("*.dbn.zst"))
        print_live(measure_live(day, speed=args.speed, window_minutes=args.window_minutes, epoch_ms=args.epoch_ms,
                                broker=args.broker, fetch_wait_ms=args.fetch_wait_ms, tracking_uri=tracking_uri(),
                                eventhouse=args.eventhouse),
                   as_json=args.json)
        return 0
    if args.eventhouse:
        from flows.bench.eventhouse import measure_eventhouse, print_eventhouse

        day = sorted(bench_day(args.cache, args.records).parent.glob("*.dbn.zst"))
        with tempfile.TemporaryDirectory(prefix="spymaster-bench-") as scratch:
            found = measure_eventhouse(day, Path(scratch), _records_in(day), args.workers)
        if args.json:
            print(json.dumps(asdict(found)))
        else:
            print_eventhouse(found, Console(width=None if sys.stdout.isatty() else 120))
        return 0
    result = measure(args.records, args.workers, args.cache)
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    table = Table(title=f"spymaster bench: {result.records:,} MBO records, {args.workers} worker(s)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("(a) decode, records/s", f"{result.decode_rps:,.0f}")
    table.add_row("(b) decode + Delta write floor, records/s", f"{result.floor_rps:,.0f}")
    table.add_row("(c) book kernel alone, records/s", f"{result.book_kernel_rps:,.0f}")
    table.add_row("(d) whole flow to Bronze + Silver, records/s", f"{result.flow_rps:,.0f}")
    table.add_row("flow_vs_floor = (d) / (b)", f"{result.flow_vs_floor:.2f}")
    table.add_row("(e) whole flow with Silver + Gold analytics, records/s", f"{result.flow_full_rps:,.0f}")
    table.add_row("analytics_cost = (e) / (d)", f"{result.analytics_cost:.2f}")
    table.add_row("(f) Bronze read back (bronze.mbo -> ordered MBO records), records/s",
                  f"{result.bronze_read_rps:,.0f}")
    table.add_row("bronze_read_vs_decode = (f) / (a), target >= 1", f"{result.bronze_read_vs_decode:.2f}")
    table.add_row("(g) whole flow from Bronze into Silver + Gold, records/s", f"{result.flow_bronze_rps:,.0f}")
    table.add_row("bronze_flow_vs_file = (g) / (e)", f"{result.bronze_flow_vs_file:.2f}")
    table.add_row("peak RSS, MiB", f"{result.peak_rss_mib:,.0f}")
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    return 0


def _records_in(day: list[Path]) -> int:
    """MBO records of the day's file (decoded once; not timed)."""
    mbo = next(p for p in day if p.name.endswith(".mbo.dbn.zst"))
    records, _, _ = _decode(mbo)
    return len(records)


def _run_scoring(args: argparse.Namespace) -> int:
    from connectors.mlflow.tracking import tracking_uri
    from flows.bench.scoring import measure_scoring, print_scoring

    console = Console(width=None if sys.stdout.isatty() else 140, stderr=args.json)
    result = measure_scoring(args.episodes, tracking_uri=tracking_uri(),
                             say=lambda m: console.print(m) if not args.json else None)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print_scoring(result, console)
    return 0
