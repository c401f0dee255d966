"""Bytewax's recovery partitions (SQLite files): clear what a killed execution left past its resume point.

Bytewax 0.21 resumes an execution at the *resume epoch* (the oldest epoch some worker had not
finished) and loads, per step and key, the newest snapshot from before it. Snapshots are written
as each epoch closes, so a SIGKILL can land after a worker wrote epoch E's snapshots but before
its frontier past E was recorded: those rows stay in the store. The next execution reruns epoch E,
and it overwrites E's snapshot of every key it touches, but epochs are wall-clock slices, so the
rerun's epoch E may cover less data and miss a key the killed run had reached. That key's stale
snapshot survives, is committed with epoch E, and once a later execution resumes past E it is
loaded: state from further along the stream than the input's position (a session's bars that have
already seen the seconds about to be replayed). Bytewax never reads snapshots at or after the
resume epoch, so deleting them before an execution starts is always safe, and it makes every
snapshot in the store one that a finished epoch of some execution wrote.

The resume epoch is computed here as Bytewax computes it (``RecoveryPart::resume_from``) over the
union of the partitions' progress tables; that needs every partition, which one directory holds
for a single process or the local cluster (``flows.cluster``). Where the partitions are spread
over machines, no process sees them all, and nothing is deleted.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("spymaster.recovery")


@dataclass(frozen=True, slots=True)
class ResumePoint:
    execution: int
    """The number the next execution will have."""
    epoch: int
    """The epoch it resumes from: snapshots from before it are loaded, none at or after it."""


def _part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("part-*.sqlite3"))


def resume_point(directory: Path) -> ResumePoint | None:
    """Where the next execution on ``directory`` resumes; None before any execution has started,
    or if the directory does not hold every partition (then it cannot be known here)."""
    parts: set[tuple[int, int]] = set()
    executions: dict[int, tuple[int, int]] = {}
    fronts: dict[tuple[int, int], int] = {}
    for path in _part_files(directory):
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            parts.update(db.execute("SELECT part_index, part_count FROM parts"))
            for ex_num, workers, epoch in db.execute("SELECT ex_num, worker_count, resume_epoch FROM exs"):
                executions[ex_num] = (workers, epoch)
            for ex_num, worker, frontier in db.execute("SELECT ex_num, worker_index, worker_frontier FROM fronts"):
                fronts[(ex_num, worker)] = max(frontier, fronts.get((ex_num, worker), frontier))
    counts = {count for _, count in parts}
    if len(counts) != 1 or {index for index, _ in parts} != set(range(counts.pop())):
        return None
    if not executions:
        return None
    last = max(executions)
    workers, started_at = executions[last]
    epoch = min(max(fronts.get((last, w), started_at), started_at) for w in range(workers))
    return ResumePoint(last + 1, epoch)


def prepare_store(directory: Path, partitions: int = 1) -> None:
    """Make ``directory`` ready for the next execution: ``partitions`` new partitions on first use
    (what ``python -m bytewax.recovery DIR N`` does), else the aborted snapshots discarded."""
    directory.mkdir(parents=True, exist_ok=True)
    if not _part_files(directory):
        from bytewax.recovery import init_db_dir

        init_db_dir(directory, partitions)
    else:
        discard_aborted_snapshots(directory)


def discard_aborted_snapshots(directory: Path) -> int:
    """Delete the snapshots at or after the resume epoch (left by a killed execution); how many.

    Run it before the execution starts, while nothing writes to the store.
    """
    point = resume_point(directory)
    if point is None:
        return 0
    deleted = 0
    for path in _part_files(directory):
        with closing(sqlite3.connect(path)) as db, db:
            deleted += db.execute("DELETE FROM snaps WHERE snap_epoch >= ?", (point.epoch,)).rowcount
    if deleted:
        log.info("recovery: discarded %d snapshots a killed execution wrote at or after epoch %d, where "
                 "execution %d resumes", deleted, point.epoch, point.execution)
    return deleted
