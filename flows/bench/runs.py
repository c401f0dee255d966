"""What the benchmarks share: the simulator's fingerprint (the key of a cached day) and a timed
whole-flow run into a fresh lake."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path


def source_fingerprint(package: Path) -> str:
    """A short hash of every Python source file in ``package`` (for the day: ``replay``)."""
    digest = hashlib.sha256()
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:12]


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
