"""The exactly-once Delta sink's snapshots: rows not yet durable ride in the recovery state.

A real Delta table on disk; the "crash" is a sink partition thrown away and a new one built from
its last snapshot, as Bytewax does on resume.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from connectors.delta.lake import Lake
from connectors.delta.sink import SinkCarry, SinkStats, TableWrite, _DeltaAppendPartition
from connectors.delta.tables import TableSpec

SPEC = TableSpec("test.ticks", pa.schema([pa.field("stream", pa.string()), pa.field("position", pa.int64()),
                                          pa.field("price", pa.float64())]))


def _write(stream: str, first: int, n: int, marks: tuple[str, ...] = ()) -> TableWrite:
    pos = np.arange(first, first + n, dtype=np.int64)
    rows = pa.table({"stream": [stream] * n, "position": pos, "price": pos * 0.25}, schema=SPEC.schema)
    return TableWrite(stream, rows, pos, marks)


def _part(lake: Lake, *, carry_rows: int = 1_000, resume: SinkCarry | None = None) -> _DeltaAppendPartition:
    return _DeltaAppendPartition(lake, SPEC, 1_000_000, SinkStats(), carry_rows=carry_rows, resume=resume)


def _settle(part: _DeltaAppendPartition) -> None:
    """Wait until everything the partition was asked to commit is durable (as close does)."""
    with part._lock:
        part._drain()


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
    _settle(part)                                     # the commit the snapshot asked for lands on its own
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

    stats = SinkStats()
    resumed = _DeltaAppendPartition(lake, SPEC, 1_000_000, stats, resume=carried)
    resumed.write_batch([_write("a", 10, 2)])
    resumed.close()
    assert _rows(lake) == [("a", i) for i in range(12)]
    assert stats.dropped_duplicates == 10


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


def test_on_a_clock_more_than_carry_rows_makes_the_snapshot_ask_and_wait(lake: Lake) -> None:
    """A live flow catching up (a backlog, max speed) must not wait for its commit clock at every
    epoch end: over the carry limit, the snapshot asks for the commit it waits for."""
    import threading

    part = _DeltaAppendPartition(lake, SPEC, 1_000_000, SinkStats(), carry_rows=100, commit_every_s=3600.0)
    part.write_batch([_write("a", 0, 101)])
    got: list[object] = []
    snapshot = threading.Thread(target=lambda: got.append(part.snapshot()), daemon=True)
    snapshot.start()
    snapshot.join(timeout=60)                         # a hang detector: without the ask it waits an hour
    assert not snapshot.is_alive() and got == [None]
    assert len(_rows(lake)) == 101
    part.close()


def test_snapshots_while_a_commit_runs_are_served_together_in_order(lake: Lake) -> None:
    stats = SinkStats()
    part = _DeltaAppendPartition(lake, SPEC, 1_000_000, stats, carry_rows=1_000_000)
    with part._lock:                                  # hold the committer so requests pile up
        for k in range(8):
            part._pending.append(_write("a", 10 * k, 10))
            part._pending_rows += 10
            part._ask()
            carried = (*part._running, *part._pending)
            assert carried[-1].positions[-1] == 10 * k + 9          # the newest rows ride along
    part.write_batch([_write("a", 80, 10)])
    part.snapshot()
    _settle(part)
    part.close()
    assert _rows(lake) == [("a", i) for i in range(90)]
    table = lake.open(SPEC)
    assert table is not None and table.transaction_version("a") == 89
    assert stats.commits < 9                          # grouped: fewer commits than requests


def test_with_commit_every_rows_land_although_nothing_asks(lake: Lake) -> None:
    """A tailing flow without recovery never snapshots: the committer commits waiting rows itself."""
    import time

    part = _DeltaAppendPartition(lake, SPEC, 1_000_000, SinkStats(), commit_every_s=0.05)
    part.write_batch([_write("a", 0, 10)])            # no snapshot, no mark, far below flush_rows
    deadline = time.monotonic() + 60
    while len(_rows(lake)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(lake) == [("a", i) for i in range(10)]
    part.close()


def test_with_commit_every_a_snapshot_carries_without_waking_the_committer(lake: Lake) -> None:
    """On a clock, the epoch end asks nothing of the committer (a live flow's sinks all woke at
    once there and took the GIL from the worker): the rows ride in the carry until the clock says,
    and a resume from that carry still commits each of them once."""
    import time

    part = _DeltaAppendPartition(lake, SPEC, 1_000_000, SinkStats(), commit_every_s=30.0)
    part.write_batch([_write("a", 0, 10)])
    carried = part.snapshot()
    assert carried is not None and [(w.stream_id, w.rows.num_rows) for w in carried.writes()] == [("a", 10)]
    time.sleep(0.3)
    assert _rows(lake) == [] and not part._asked     # not asked: nothing committed yet
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
        _settle(one)
        two.write_batch([_write("b", 10 * k, 10)])
        two.snapshot()
        _settle(two)
    two.write_batch([_write("c", 0, 3)])              # a stream new to ``two``, read from its table
    two.close()
    one.close()
    assert _rows(lake) == sorted([("a", i) for i in range(40)] + [("b", i) for i in range(40)] +
                                 [("c", i) for i in range(3)])
    table = lake.open(SPEC)
    assert table is not None and table.version() == 9  # one commit each, no retry left a gap
    assert (table.transaction_version("a"), table.transaction_version("b"), table.transaction_version("c")) == (39, 39, 2)

    stats = SinkStats()
    resumed = _DeltaAppendPartition(lake, SPEC, 1_000_000, stats)  # ``one`` after a crash: the source replays
    resumed.write_batch([_write("a", 35, 10), _write("b", 38, 4)])
    resumed.close()
    assert stats.dropped_duplicates == 5 + 2
    assert _rows(lake) == sorted([("a", i) for i in range(45)] + [("b", i) for i in range(42)] +
                                 [("c", i) for i in range(3)])
