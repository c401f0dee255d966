"""The exactly-once Delta sink's snapshots: rows not yet durable ride in the recovery state.

A real Delta table on disk; the "crash" is a sink partition thrown away and a new one built from
its last snapshot, as Bytewax does on resume.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from bytewax.outputs import StatefulSinkPartition
from deltalake.exceptions import CommitFailedError

import connectors.delta.sink as sink_module
from connectors.delta.clock import MONOTONIC, CommitClock
from connectors.delta.lake import Lake
from connectors.delta.sink import DeltaAppendSink, SinkCarry, TableWrite
from connectors.delta.tables import TableSpec
from tests.connectors.manual_clock import ManualClock

SPEC = TableSpec("test.ticks", pa.schema([pa.field("stream", pa.string()), pa.field("position", pa.int64()),
                                          pa.field("price", pa.float64())]))


def _write(stream: str, first: int, n: int, marks: tuple[str, ...] = ()) -> TableWrite:
    pos = np.arange(first, first + n, dtype=np.int64)
    rows = pa.table({"stream": [stream] * n, "position": pos, "price": pos * 0.25}, schema=SPEC.schema)
    return TableWrite(stream, rows, pos, marks)


Part = StatefulSinkPartition[TableWrite, SinkCarry | None]


def _sink(lake: Lake, *, carry_rows: int = 1_000, commit_every_s: float | None = None,
          clock: CommitClock = MONOTONIC) -> DeltaAppendSink:
    return DeltaAppendSink(lake, SPEC, partitions=1, flush_rows=1_000_000, carry_rows=carry_rows,
                           commit_every_s=commit_every_s, clock=clock)


def _part(lake: Lake, *, resume: SinkCarry | None = None, carry_rows: int = 1_000,
          commit_every_s: float | None = None, clock: CommitClock = MONOTONIC) -> Part:
    """The partition of a one-partition sink, built as Bytewax builds it."""
    return _of(_sink(lake, carry_rows=carry_rows, commit_every_s=commit_every_s, clock=clock), resume)


def _of(sink: DeltaAppendSink, resume: SinkCarry | None = None,
        before_commit: Callable[[], None] | None = None) -> Part:
    return sink.build_part("test_ticks", sink.list_parts()[0], resume, before_commit=before_commit)


def _await_rows(lake: Lake, n: int, timeout_s: float = 60.0) -> None:
    """Poll the table until it holds ``n`` rows (a commit asked for lands on the committer thread)."""
    deadline = time.monotonic() + timeout_s
    while lake.count(SPEC) < n:
        assert time.monotonic() < deadline, f"{lake.count(SPEC)} of {n} rows after {timeout_s} s"
        time.sleep(0.01)


def _rows(lake: Lake) -> list[tuple[str, int]]:
    table = lake.read(SPEC, ["stream", "position"])
    return sorted(zip(table["stream"].to_pylist(), table["position"].to_pylist(), strict=True))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    lake.ensure(SPEC)
    return lake


def test_a_snapshot_starts_the_commit_and_carries_its_rows_instead_of_waiting(lake: Lake) -> None:
    part = _part(lake)
    part.write_batch([_write("a", 0, 10), _write("b", 0, 5)])
    carried = part.snapshot()
    assert carried is not None and [(w.stream_id, w.rows.num_rows) for w in carried.writes()] == [("a", 10), ("b", 5)]
    _await_rows(lake, 15)                             # the commit the snapshot asked for lands on its own
    assert len(_rows(lake)) == 15                     # ... without a close or another snapshot
    assert part.snapshot() is None                    # nothing left to carry
    part.close()
    assert len(_rows(lake)) == 15


def test_a_resume_from_a_carrying_snapshot_commits_rows_that_never_landed(lake: Lake, tmp_path: Path) -> None:
    elsewhere = Lake(str(tmp_path / "scratch"))       # the first run's commit goes here: it "never landed"
    elsewhere.ensure(SPEC)
    first = _part(elsewhere)
    first.write_batch([_write("a", 0, 10, marks=("a-done",))])
    carried = first.snapshot()
    first.close()
    assert carried is not None

    resumed = _part(lake, resume=carried)
    resumed.write_batch([_write("a", 10, 3)])         # what the source replays after the snapshot
    resumed.close()
    assert _rows(lake) == [("a", i) for i in range(13)]
    table = lake.open(SPEC)
    assert table is not None and table.transaction_version("a") == 12 and table.transaction_version("a-done") == 1


def test_a_resume_drops_carried_rows_that_had_landed_before_the_crash(lake: Lake) -> None:
    first = _part(lake)
    first.write_batch([_write("a", 0, 10)])
    carried = first.snapshot()
    first.close()                                     # the commit landed; the process died after that
    assert carried is not None

    sink = _sink(lake)
    resumed = _of(sink, resume=carried)
    resumed.write_batch([_write("a", 10, 2)])
    resumed.close()
    assert _rows(lake) == [("a", i) for i in range(12)]
    assert sink.stats.dropped_duplicates == 10


def test_a_carry_packs_its_writes_and_gives_them_back_exactly_through_pickle() -> None:
    """Carried writes are often slices of a bigger batch: the recovery state holds their rows only."""
    batch = _write("a", 0, 100_000)
    writes = [TableWrite("a", batch.rows.slice(10 * k, 10), batch.positions[10 * k:10 * k + 10]) for k in range(50)]
    writes.append(_write("b", 7, 3, marks=("b-done", "b-day")))
    writes.append(TableWrite.mark("c", SPEC, ("c-done",)))
    narrow = pa.schema([pa.field("stream", pa.dictionary(pa.int16(), pa.string()))] + list(SPEC.schema)[1:])
    writes.append(TableWrite("d", _write("d", 0, 4).rows.cast(narrow), np.arange(4, dtype=np.int64)))
    writes.append(_write("a", 500, 2))
    carry = SinkCarry.of(writes)
    assert carry is not None and [t.column(0).num_chunks for t in carry.tables] == [1, 1, 1]
    blob = pickle.dumps(carry)
    per_row = batch.rows.nbytes / batch.rows.num_rows
    assert len(blob) < 16_384 + 2 * 509 * per_row     # 509 rows' worth, not the 100,000-row batch's
    back = pickle.loads(blob).writes()
    assert [(w.stream_id, w.marks) for w in back] == [(w.stream_id, w.marks) for w in writes]
    for got, sent in zip(back, writes, strict=True):
        assert got.rows.equals(sent.rows, check_metadata=True) and got.rows.schema == sent.rows.schema
        assert got.positions.tolist() == sent.positions.tolist()
    assert SinkCarry.of([]) is None


def test_more_than_carry_rows_uncommitted_makes_the_snapshot_wait_instead(lake: Lake) -> None:
    part = _part(lake, carry_rows=100)
    part.write_batch([_write("a", 0, 101)])
    assert part.snapshot() is None                    # waited: the rows are durable, none carried
    assert len(_rows(lake)) == 101
    part.close()


def test_a_run_without_recovery_neither_waits_nor_carries_at_a_snapshot(lake: Lake) -> None:
    """Bytewax calls ``snapshot`` at every epoch end even without a recovery store, and keeps
    nothing: over the carry limit, such a snapshot asks for the commit but does not wait for it."""
    entered, release = threading.Event(), threading.Event()

    def hold_the_commit() -> None:                    # runs on the committer thread before each commit
        entered.set()
        assert release.wait(60)

    sink = _sink(lake, carry_rows=100)
    sink.snapshots_kept = False
    part = _of(sink, before_commit=hold_the_commit)
    part.write_batch([_write("a", 0, 101)])
    assert part.snapshot() is None                    # returned with the commit it asked for held
    assert entered.wait(60) and lake.count(SPEC) == 0
    release.set()
    _await_rows(lake, 101)
    part.close()
    assert len(_rows(lake)) == 101


def test_on_a_clock_more_than_carry_rows_makes_the_snapshot_ask_and_wait(lake: Lake) -> None:
    """A live flow catching up (a backlog, max speed) must not wait for its commit clock at every
    epoch end: over the carry limit, the snapshot asks for the commit it waits for."""
    part = _part(lake, carry_rows=100, commit_every_s=1.0, clock=ManualClock())  # a clock that never moves
    part.write_batch([_write("a", 0, 101)])
    got: list[object] = []
    snapshot = threading.Thread(target=lambda: got.append(part.snapshot()), daemon=True)
    snapshot.start()
    snapshot.join(timeout=60)                         # a hang detector: without the ask it waits forever
    assert not snapshot.is_alive() and got == [None]
    assert len(_rows(lake)) == 101
    part.close()


def test_snapshots_while_a_commit_runs_are_served_together_in_order(lake: Lake) -> None:
    entered, release = threading.Event(), threading.Event()

    def hold_the_first_commit() -> None:              # runs on the committer thread before each commit
        entered.set()
        assert release.wait(60)

    sink = _sink(lake, carry_rows=1_000_000)
    part = _of(sink, before_commit=hold_the_first_commit)
    part.write_batch([_write("a", 0, 10)])
    part.snapshot()                                   # asks: the committer takes these rows and is held
    assert entered.wait(60)
    for k in range(1, 9):                             # requests pile up behind the running commit
        part.write_batch([_write("a", 10 * k, 10)])
        carried = part.snapshot()
        assert carried is not None
        writes = carried.writes()
        assert writes[0].positions[0] == 0                        # the running commit's rows ride along
        assert writes[-1].positions[-1] == 10 * k + 9             # ... and so do the newest
    assert lake.count(SPEC) == 0
    release.set()
    _await_rows(lake, 90)
    part.close()
    assert _rows(lake) == [("a", i) for i in range(90)]
    table = lake.open(SPEC)
    assert table is not None and table.transaction_version("a") == 89
    assert sink.stats.commits == 2                    # grouped: the held commit, then all 8 requests in one


def test_with_commit_every_rows_land_although_nothing_asks(lake: Lake) -> None:
    """A tailing flow without recovery never snapshots: the committer commits waiting rows itself."""
    clock = ManualClock()
    part = _part(lake, commit_every_s=5.0, clock=clock)
    part.write_batch([_write("a", 0, 10)])            # no snapshot, no mark, far below flush_rows
    clock.advance(4.9)
    assert _rows(lake) == []                          # not yet due
    clock.advance(0.1)                                # due: committed before advance returns
    assert _rows(lake) == [("a", i) for i in range(10)]
    part.close()


def test_with_commit_every_a_snapshot_carries_without_waking_the_committer(lake: Lake) -> None:
    """On a clock, the epoch end asks nothing of the committer (a live flow's sinks all woke at
    once there and took the GIL from the worker): the rows ride in the carry until the clock says,
    and a resume from that carry still commits each of them once."""
    clock = ManualClock()
    part = _part(lake, commit_every_s=30.0, clock=clock)
    part.write_batch([_write("a", 0, 10)])
    carried = part.snapshot()
    assert carried is not None and [(w.stream_id, w.rows.num_rows) for w in carried.writes()] == [("a", 10)]
    clock.advance(29.0)                               # the committer wakes and looks: not asked, not due
    assert _rows(lake) == []                          # so nothing is committed yet
    resumed = _part(lake, resume=pickle.loads(pickle.dumps(carried)))
    resumed.write_batch([_write("a", 5, 10)])          # a resume replays what followed the snapshot
    resumed.close()
    part.close()                                       # its own rows are all committed by now: dropped
    assert _rows(lake) == [("a", i) for i in range(15)]


def test_two_writers_of_one_table_commit_through_their_open_tables_and_every_row_lands_once(lake: Lake) -> None:
    """Each partition writes through the table it keeps open, which falls behind whenever another
    partition or process commits: the commit must bring it forward rather than lose or repeat."""
    one, two = _part(lake), _part(lake)               # as two processes would hold them
    for k in range(4):                                # each commit lands on the other's newer version
        one.write_batch([_write("a", 10 * k, 10)])
        one.snapshot()
        _await_rows(lake, 20 * k + 10)
        two.write_batch([_write("b", 10 * k, 10)])
        two.snapshot()
        _await_rows(lake, 20 * k + 20)
    two.write_batch([_write("c", 0, 3)])              # a stream new to ``two``, read from its table
    two.close()
    one.close()
    assert _rows(lake) == sorted([("a", i) for i in range(40)] + [("b", i) for i in range(40)] +
                                 [("c", i) for i in range(3)])
    table = lake.open(SPEC)
    assert table is not None and table.version() == 9  # one commit each, no retry left a gap
    assert [table.transaction_version(app) for app in ("a", "b", "c")] == [39, 39, 2]

    sink = _sink(lake)
    resumed = _of(sink)                               # ``one`` after a crash: the source replays
    resumed.write_batch([_write("a", 35, 10), _write("b", 38, 4)])
    resumed.close()
    assert sink.stats.dropped_duplicates == 5 + 2
    assert _rows(lake) == sorted([("a", i) for i in range(45)] + [("b", i) for i in range(42)] +
                                 [("c", i) for i in range(3)])


def _write_deltalake_failing(monkeypatch: pytest.MonkeyPatch, error: Exception) -> list[int]:
    """The sink's ``write_deltalake`` raises ``error`` on its first call, then writes; the calls."""
    real, calls = sink_module.write_deltalake, list[int]()

    def first_fails(*args: Any, **kwargs: Any) -> None:  # passed through as the sink gave them
        calls.append(len(calls))
        if len(calls) == 1:
            raise error
        real(*args, **kwargs)

    monkeypatch.setattr(sink_module, "write_deltalake", first_fails)
    return calls


def test_a_commit_lost_to_a_concurrent_one_is_retried_and_lands_once(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _write_deltalake_failing(monkeypatch, CommitFailedError("a concurrent transaction added new data"))
    sink = _sink(lake)
    part = _of(sink)
    part.write_batch([_write("a", 0, 10, marks=("a-done",))])  # a mark asks for a commit at once
    part.close()
    assert len(calls) == 2 and sink.stats.commits == 1
    assert _rows(lake) == [("a", i) for i in range(10)]
    table = lake.open(SPEC)
    assert table is not None and table.version() == 1 and table.transaction_version("a-done") == 1


def test_any_other_commit_error_is_raised_at_once_whatever_its_message_says(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _write_deltalake_failing(monkeypatch, OSError("no space left to resolve the conflict"))
    part = _part(lake)
    part.write_batch([_write("a", 0, 10, marks=("a-done",))])
    with pytest.raises(OSError, match="no space left"):
        part.close()
    assert len(calls) == 1 and lake.count(SPEC) == 0
