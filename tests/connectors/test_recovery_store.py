"""The recovery store guard (``connectors.recovery``) on real Bytewax stores, written by real executions.

A killed execution can leave snapshots of an epoch it never finished; the rerun of that epoch
may not touch the same keys, and a later resume then loads the stale state. These tests pin the
resume-epoch formula to what Bytewax itself records, and show the stale state reaching a
resumed execution without the guard and not with it.
"""

from __future__ import annotations

import pickle
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, cluster_main

from connectors.recovery import discard_aborted_snapshots, prepare_store, resume_point
from flows.cluster import recovery_directory

Item = tuple[str, int]


def _running_sums(items: list[Any], out: list[tuple[str, tuple[str, int]]]) -> Dataflow:
    flow = Dataflow("sums")
    source: TestingSource[Item] = TestingSource(items, batch_size=1)
    keyed = op.key_on("key", op.input("in", flow, source), lambda x: x[0])

    def add(total: int | None, item: Item) -> tuple[int, tuple[str, int]]:
        total = (total or 0) + item[1]
        return total, (item[0], total)

    op.output("out", op.stateful_map("sum", keyed, add), TestingSink(out))
    return flow


def _execute(items: list[object], store: Path, workers: int = 1) -> list[tuple[str, int]]:
    """One execution: every item a Bytewax epoch of its own; the (key, running sum) it emitted."""
    out: list[tuple[str, tuple[str, int]]] = []
    try:
        cluster_main(_running_sums(items, out), [], 0, worker_count_per_proc=workers,
                     epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(store)))
    except RuntimeError as e:  # TestingSource.ABORT: the execution stops as if killed
        assert "abort" in str(e).lower(), e
    return [value for _, value in out]


def _last_execution(store: Path) -> tuple[int, int, int]:
    rows: list[tuple[int, int, int]] = []
    for part in store.glob("part-*.sqlite3"):
        with closing(sqlite3.connect(part)) as db:
            rows += db.execute("SELECT ex_num, worker_count, resume_epoch FROM exs").fetchall()
    return max(rows)


def _snapshot(store: Path, key: str, epoch: int, state: int) -> None:
    """A ``sum`` snapshot of ``key`` at ``epoch``, as a worker writes it when the epoch closes."""
    with closing(sqlite3.connect(store / "part-0.sqlite3")) as db, db:
        db.execute("INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
                   ("sums.sum.stateful_flat_map.stateful.stateful_batch", key, epoch, pickle.dumps(state)))


def test_resume_point_is_the_epoch_bytewax_resumes_from(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    assert resume_point(tmp_path) is None  # no execution yet
    items: list[object] = [("a", 1), ("b", 1), ("a", 1), TestingSource.ABORT(), ("b", 1), ("a", 1),
                           TestingSource.ABORT(), ("a", 1)]
    for _ in range(3):
        _execute(items, tmp_path)
        predicted = resume_point(tmp_path)
        assert predicted is not None
        _execute(items, tmp_path)
        assert _last_execution(tmp_path) == (predicted.execution, 1, predicted.epoch)


def test_resume_point_of_two_workers_over_two_partitions(tmp_path: Path) -> None:
    """Progress rows of both workers, spread over both partitions (an abort would hang a
    two-worker TestingSource, so these executions finish)."""
    init_db_dir(tmp_path, 2)
    for n in range(3):
        _execute([("a", 1), ("b", 1), ("a", 1)], tmp_path, workers=2)
        predicted = resume_point(tmp_path)
        assert predicted is not None and predicted.execution == 2 * n + 1
        _execute([("a", 1)], tmp_path, workers=2)
        assert _last_execution(tmp_path) == (predicted.execution, 2, predicted.epoch)


def test_a_killed_executions_snapshot_reaches_a_later_resume_without_the_guard(tmp_path: Path) -> None:
    """What the guard is for: Bytewax alone loads the stale state two executions later."""
    for guarded in (False, True):
        store = tmp_path / ("guarded" if guarded else "bare")
        store.mkdir()
        init_db_dir(store, 1)
        items: list[object] = [("a", 1), TestingSource.ABORT(), ("a", 1), ("a", 1), TestingSource.ABORT(),
                               ("g", 1)]
        assert _execute(items, store) == [("a", 1)]
        point = resume_point(store)
        assert point is not None
        # the killed execution had also closed the next epoch, with key g in it, before it died
        _snapshot(store, "g", point.epoch, 100)
        if guarded:
            assert discard_aborted_snapshots(store) >= 1
            with closing(sqlite3.connect(store / "part-0.sqlite3")) as db:
                assert db.execute("SELECT count(*) FROM snaps WHERE state_key = 'g'").fetchone() == (0,)
        assert _execute(items, store) == [("a", 2), ("a", 3)]  # reruns that epoch without g
        g = [v for v in _execute(items, store) if v[0] == "g"]
        assert g == ([("g", 1)] if guarded else [("g", 101)])


def test_only_snapshots_from_the_resume_epoch_on_are_deleted(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    items: list[object] = [("a", 1), ("b", 2), TestingSource.ABORT(), ("a", 1)]
    _execute(items, tmp_path)
    point = resume_point(tmp_path)
    assert point is not None

    def snaps() -> list[tuple[str, str, int]]:
        with closing(sqlite3.connect(tmp_path / "part-0.sqlite3")) as db:
            return db.execute("SELECT step_id, state_key, snap_epoch FROM snaps ORDER BY 1, 2, 3").fetchall()

    before = snaps()
    kept = [s for s in before if s[2] < point.epoch]
    assert kept and len(kept) < len(before)  # even an abort leaves the input's snapshot of its last epoch
    assert discard_aborted_snapshots(tmp_path) == len(before) - len(kept)
    assert snaps() == kept
    assert _execute(items, tmp_path) == [("a", 2)]


def test_nothing_is_deleted_without_every_partition(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 2)
    _execute([("a", 1), ("a", 1)], tmp_path, workers=2)
    point = resume_point(tmp_path)
    assert point is not None
    _snapshot(tmp_path, "g", point.epoch, 100)
    (tmp_path / "part-1.sqlite3").rename(tmp_path / "elsewhere.sqlite3")  # held by another machine
    assert resume_point(tmp_path) is None
    assert discard_aborted_snapshots(tmp_path) == 0


def test_prepare_store_initializes_once_then_guards(tmp_path: Path) -> None:
    store = tmp_path / "recovery"
    prepare_store(store, 3)
    assert sorted(p.name for p in store.glob("part-*.sqlite3")) == [f"part-{i}.sqlite3" for i in range(3)]
    prepare_store(store, 3)  # no execution yet: nothing to clear, nothing re-created
    assert len(list(store.glob("part-*.sqlite3"))) == 3


def test_recovery_directory_is_read_as_bytewax_run_reads_it() -> None:
    assert recovery_directory(["flows.main", "-r", "/r", "-s", "1"], {}) == Path("/r")
    assert recovery_directory(["flows.main", "--recovery-directory", "/r2"], {}) == Path("/r2")
    assert recovery_directory(["flows.main"], {"BYTEWAX_RECOVERY_DIRECTORY": "/r3"}) == Path("/r3")
    assert recovery_directory(["flows.main", "-w", "2"], {}) is None
