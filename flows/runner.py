"""Run a prepared flow in this process, with optional recovery, and watch its progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bytewax._bytewax import cli_main
from bytewax.recovery import RecoveryConfig

from connectors.delta.sink import DeltaAppendSink
from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ
from connectors.recovery import prepare_store
from flows.app import PreparedRun


@dataclass(frozen=True, slots=True)
class Progress:
    records: int
    files_done: int


def recovery_config(directory: Path, partitions: int = 1) -> RecoveryConfig:
    """A Bytewax recovery store in ``directory``, initialized on first use and cleared of what a
    killed execution left past its resume point (``connectors.recovery``)."""
    prepare_store(directory, partitions)
    return RecoveryConfig(str(directory))


def progress_of(run: PreparedRun) -> Progress:
    """Rows committed so far in this process (records that reached Bronze or its DLQ); for a
    replay from Bronze, which writes no Bronze rows, the records its source has emitted."""
    def rows(name: str) -> int:
        sink = run.sinks.by_table[name]
        return sink.stats.rows if isinstance(sink, DeltaAppendSink) else 0

    if run.records_read is not None:
        return Progress(run.records_read(), rows(BRONZE_MANIFEST.name))
    return Progress(rows(BRONZE_MBO.name) + rows(BRONZE_MBO_DLQ.name), rows(BRONZE_MANIFEST.name))


def run_flow(
    run: PreparedRun,
    *,
    workers: int = 1,
    recovery: Path | None = None,
    epoch_interval: timedelta | None = None,
    on_tick: Callable[[Progress], None] | None = None,
) -> None:
    """Run to completion in this thread; ``on_tick`` is called about 5 times a second meanwhile.

    The dataflow runs on the calling thread (Bytewax's runtime is not meant to outlive a helper
    thread at interpreter exit); progress is reported from a small daemon thread.
    """
    config = recovery_config(recovery) if recovery is not None else None
    run.sinks.keep_snapshots(config is not None)
    done = threading.Event()

    def report() -> None:
        while not done.wait(0.2):
            if on_tick is not None:
                on_tick(progress_of(run))

    ticker = threading.Thread(target=report, name="spymaster-progress", daemon=True)
    ticker.start()
    try:
        cli_main(run.flow, workers_per_process=workers, epoch_interval=epoch_interval, recovery_config=config)
    finally:
        done.set()
        ticker.join()
    if on_tick is not None:
        on_tick(progress_of(run))
