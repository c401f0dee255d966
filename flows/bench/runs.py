"""What the benchmarks share: a cached simulated day, keyed by the simulator's fingerprint, and a
timed whole-flow run into a fresh lake."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from connectors.fingerprint import source_fingerprint


def simulator_fingerprint() -> str:
    """What keys a cached day: the simulator's own source (``replay``)."""
    import replay

    return source_fingerprint(Path(replay.__file__).parents[1], ("replay",))


def simulated_day(cache: Path, records: int, *, options: bool = False) -> Path:
    """The directory of a cached simulated day (with the ES options chain if ``options``),
    generated on first use.

    The cache is keyed by the simulator's own source as well as the size: keyed by size alone, a
    day generated before a change to the simulator was measured again ever after, and the figures
    of a long-lived checkout and of a fresh clone (which generates the day anew) stopped agreeing.
    """
    from replay.synth import write_sample

    kind = "options-day" if options else "day"
    day = cache / f"{kind}-{records}-{simulator_fingerprint()}"
    if not sorted(day.glob("*.options.mbo.dbn.zst" if options else "*.mbo.dbn.zst")):
        shutil.rmtree(day, ignore_errors=True)
        write_sample(day, days=1, seed=11, events_per_day=records, truth=False, options=options)
    return day


def timed_flow(inputs: tuple[str, ...], lake: Path, workers: int, *, analytics: bool) -> float:
    from flows.app import prepare
    from flows.config import load_config
    from flows.runner import run_flow

    cfg = load_config({})
    cfg = replace(cfg, source=replace(cfg.source, inputs=inputs), lake=replace(cfg.lake, root=str(lake)),
                  run=replace(cfg.run, workers=workers), analytics=replace(cfg.analytics, enabled=analytics))
    prepared = prepare(cfg)  # creates the (empty) tables: a one-time cost of a new lake, not timed
    started = time.perf_counter()
    run_flow(prepared, workers=workers)
    return time.perf_counter() - started
