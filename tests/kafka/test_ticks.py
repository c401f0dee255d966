"""Quiet contracts on a tailed topic: the partition's ticks close their seconds and their sessions.

The wall clock is injected (``StepClock``: the test sets it), so every expectation is a value:
the event time a tick carries, the rows a quiet book writes, the session a tick closes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import run_main
from confluent_kafka import Producer

from connectors.dbn.reader import DbnFileReader
from connectors.delta.lake import Lake
from connectors.delta.tables import SILVER_BOOK_1S
from connectors.kafka.codec import batches, encode_headers, encode_records, instrument_key
from connectors.kafka.source import KafkaMboSource
from connectors.topic.input import TopicInput
from connectors.topic.partition import KafkaPartitionState
from connectors.topic.ticks import NS, PartitionClock, TickConfig
from flows.graph import Sinks, build_flow
from flows.items import BookRows, BookSlice, book_key
from flows.plan import plan_topic
from flows.route import book_slices, check
from flows.steps.book_1s import BookSecondsLogic
from operators.book import L3Book
from operators.chunks import RecordChunk, SourceEnd, SourceTick
from operators.errors import ConfigError
from operators.instruments import instrument_from_definition
from operators.sessions import day_to_date, new_york_instant_ns, trade_date_days
from tests.conftest import app_config, table_content
from tests.topic.test_parity import DROPPED

TICKS = TickConfig(tick_s=1.0, idle_timeout_s=3.0, lateness_s=1.0)
BOOK_FIELDS = ("book_valid", "bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz", "ask_ct", "best_bid_px",
               "best_ask_px", "mid_px", "microprice", "last_trade_px", "last_trade_sz", "spread_ticks")
COUNTS = ("volume", "buy_volume", "sell_volume", "trade_count", "add_count", "cancel_count", "modify_count",
          "event_count")


class StepClock:
    """A wall clock in seconds that only moves when the test sets ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _read(path: Path) -> np.ndarray:
    reader = DbnFileReader(path)
    try:
        return reader.read(1_000_000)
    finally:
        reader.close()


@pytest.fixture(name="day_one", scope="module")
def fixture_day_one(sample_dir: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The sample's first day: definitions, MBO, and its busy and quiet contracts' ids."""
    definitions = _read(sorted(sample_dir.glob("*.definition.dbn.zst"))[0])
    mbo = _read(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    ids, counts = np.unique(mbo["instrument_id"], return_counts=True)
    busy, quiet = (int(i) for i in ids[np.argsort(-counts)][:2])
    return definitions, mbo, busy, quiet


def quiet_and_busy(day_one, quiet_s: float = 410.0, busy_s: float = 900.0, shift_ns: int = 0) -> np.ndarray:
    """Both contracts from the first record on, the busy one for ``busy_s`` and the quiet one for
    only its first ``quiet_s`` (its snapshot at 0 s and, by default, its event at 402 s),
    timestamps moved by ``shift_ns``."""
    _definitions, mbo, _busy, quiet = day_one
    ts = mbo["ts_recv"].astype(np.int64) - int(mbo["ts_recv"].min())
    keep = (ts < busy_s * NS) & ((mbo["instrument_id"] != quiet) | (ts < quiet_s * NS))
    records = mbo[keep].copy()
    records["ts_recv"] += np.uint64(shift_ns)
    records["ts_event"] += np.uint64(shift_ns)
    return records


def publish(bootstrap: str, topic: str, definitions: np.ndarray, records: np.ndarray) -> None:
    """Definitions first, then the records batched per instrument in 1 s windows (as ``spymaster
    publish`` sends them), with the producer's own request batching."""
    producer = Producer({"bootstrap.servers": bootstrap})
    messages = [(int(definitions["instrument_id"][i]), definitions[i:i + 1]) for i in range(len(definitions))]
    messages += list(batches(records, window_ns=NS))
    for iid, batch in messages:
        producer.produce(topic, value=encode_records(batch), key=instrument_key(iid),
                         headers=encode_headers(3, "GLBX.MDP3"))  # type: ignore[arg-type]  # confluent_kafka's stub: list[tuple[str, str | bytes | None]] (list is invariant)
    assert producer.flush(10) == 0


def read_everything(part: StatefulSourcePartition, records: int) -> list:
    """Poll a tailing partition until it has given ``records`` MBO records (it never ends)."""
    out: list = []
    deadline = time.monotonic() + 30
    while sum(len(i.records) for i in out if isinstance(i, RecordChunk) and i.schema == "mbo") < records:
        assert time.monotonic() < deadline, "the partition did not deliver every record"
        out.extend(part.next_batch())
    return out


def book_rows(items: list) -> dict[str, list[BookRows]]:
    """The flow's book steps (``check`` → ``book_slices`` → one ``BookSecondsLogic`` per key)."""
    books: dict[str, BookSecondsLogic] = {}
    out: dict[str, list[BookRows]] = {}
    for item in items:
        for key, value in book_slices(check(item)):
            emitted, _keep = books.setdefault(key, BookSecondsLogic(10, None)).on_item(value)
            out.setdefault(key, []).extend(emitted)
    return out


def rows_of(emitted: list[BookRows]) -> np.ndarray:
    return np.concatenate([r.rows for r in emitted])


def tailing_partition(bootstrap: str, topic: str, clock: Callable[[], float]) -> StatefulSourcePartition:
    source = KafkaMboSource(TopicInput(bootstrap=bootstrap, topic=topic, ticks=TICKS), clock=clock)
    return source.build_part("in", f"0-{topic}", None)


# ------------------------------------------------------------------------------- the clock alone


def test_a_tick_is_the_latest_record_less_the_lateness_once_per_interval() -> None:
    clock = StepClock(100.0)
    ticks = PartitionClock(TICKS, clock)
    last = 1_762_000_000 * NS + 250_000_000

    assert ticks.tick(last) is None  # the first is due one interval after the start
    clock.now = 101.0
    assert ticks.tick(last) == last - NS
    clock.now = 101.5
    assert ticks.tick(last + 3 * NS) is None  # not due yet
    clock.now = 102.0
    ticks.heard()
    assert ticks.tick(last + 3 * NS) == last + 2 * NS
    clock.now = 103.0
    assert ticks.tick(last + 3 * NS + NS // 2) is None  # the same second as the last tick: nothing closes


def test_an_idle_partition_moves_event_time_on_at_real_time_after_the_timeout() -> None:
    clock = StepClock(100.0)
    ticks = PartitionClock(TICKS, clock)  # heard at 100.0
    last = 1_762_000_000 * NS

    clock.now = 103.0  # idle for exactly the timeout: not yet extrapolated
    assert ticks.tick(last) == last - NS
    clock.now = 110.5  # 7.5 s past the timeout
    assert ticks.tick(last) == last - NS + 7_500_000_000
    clock.now = 111.0
    ticks.heard()  # a record again, older than the extrapolated time: the tick never goes back
    clock.now = 112.0
    assert ticks.tick(last + 2 * NS) is None
    assert ticks.tick_ns == last - NS + 7_500_000_000


def test_tick_settings_are_checked_in_one_sentence() -> None:
    with pytest.raises(ConfigError, match=r"^\[source\]\.idle_timeout_s \(SPYMASTER_IDLE_TIMEOUT_S\) must be"):
        TickConfig(idle_timeout_s=0)
    with pytest.raises(ConfigError, match=r"^\[source\]\.tick_s \(SPYMASTER_TICK_S\) must be zero"):
        TickConfig(tick_s=-1)


def test_environment_and_toml_set_the_ticks(tmp_path: Path) -> None:
    from flows.config import load_config

    toml = tmp_path / "spymaster.toml"
    toml.write_text("[source]\ntick_s = 0.5\nlateness_s = 0.25\n")
    cfg = load_config({"SPYMASTER_CONFIG": str(toml), "SPYMASTER_IDLE_TIMEOUT_S": "5"})
    assert cfg.source.ticks == TickConfig(tick_s=0.5, idle_timeout_s=5.0, lateness_s=0.25)
    assert load_config({}).source.ticks == TickConfig(tick_s=1.0, idle_timeout_s=3.0, lateness_s=1.0)


# ------------------------------------------------------------------------------- the book logic


def test_book_rows_are_the_same_with_ticks_as_without(day_one) -> None:
    """Ticks at every slice boundary (the next record's ``ts_recv``: nothing later starts before
    it; some fall inside an event) change when rows come out, never which rows."""
    definitions, mbo, _busy, quiet = day_one
    info = next(instrument_from_definition(d) for d in definitions if int(d["instrument_id"]) == quiet)
    records = mbo[mbo["instrument_id"] == quiet]
    day = int(trade_date_days(records["ts_recv"][:1])[0])

    def run(with_ticks: bool) -> tuple[np.ndarray, int]:
        logic, out, by_tick = BookSecondsLogic(10, None), [], 0
        for start in range(0, len(records), 97):
            out += logic.on_item(BookSlice("s", records[start:start + 97], info, day))[0]
            if with_ticks and start + 97 < len(records):
                ticked = logic.on_item(SourceTick("s", int(records["ts_recv"][start + 97]), ("k",)))[0]
                by_tick += sum(len(r.rows) for r in ticked)
                out += ticked
        out += logic.on_item(SourceEnd("s", "p", "mbo", 0, 0, 0, 0, ("k",), (), "", 0, final=False))[0]
        return rows_of(out), by_tick

    plain, _ = run(False)
    ticked, by_tick = run(True)
    assert by_tick > 100  # the seconds between two slices came from the ticks
    assert ticked.tobytes() == plain.tobytes()


# ------------------------------------------------------------------------------- the partition


def test_a_quiet_contract_gets_its_seconds_from_the_partitions_event_time(
        kafka_broker, topic: str, day_one) -> None:
    definitions, _mbo, busy, quiet = day_one
    records = quiet_and_busy(day_one)
    kafka_broker.create_topic(topic, 1)
    publish(kafka_broker.bootstrap, topic, definitions, records)
    clock = StepClock(0.0)
    source = KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, ticks=TICKS), clock=clock)
    part = source.build_part("in", f"0-{topic}", None)
    items = read_everything(part, len(records))
    assert not any(isinstance(i, SourceTick) for i in items)  # the clock has not moved
    state = part.snapshot()
    part.close()

    resumed = source.build_part("in", f"0-{topic}", state)  # what it needs to tick is in its state
    clock.now = 1.0
    tick = resumed.next_batch()
    again = source.build_part("in", f"0-{topic}", resumed.snapshot())
    resumed.close()
    clock.now = 2.0
    assert again.next_batch() == []  # resumed after the tick: not that second again
    again.close()

    day = int(trade_date_days(records["ts_recv"][:1])[0])
    last = int(records["ts_recv"].max())
    keys = tuple(sorted((book_key(quiet, day), book_key(busy, day))))
    assert tick == [SourceTick(f"kafka:{topic}/0", last - NS, keys)]
    rows = rows_of(book_rows(items + tick)[book_key(quiet, day)])
    mine = records[records["instrument_id"] == quiet]
    reference = L3Book([c for c in items if isinstance(c, RecordChunk)][-1].instruments[quiet].tick)
    expected = np.concatenate([reference.apply_seconds(mine), reference.close_seconds()])
    carried = rows[len(expected):]
    assert len(expected) > 400  # its own seconds: from its snapshot to its event at 402 s
    assert rows[:len(expected)].tobytes() == expected.tobytes()  # ... then carried ones
    first = int(expected["ts_recv"][-1]) // NS + 1
    assert carried["ts_recv"].tolist() == [s * NS for s in range(first, (last - NS) // NS + 1)]
    assert len(carried) > 300
    for name in BOOK_FIELDS:  # the book as after its last event
        assert (carried[name] == expected[name][-1]).all(), name
    for name in COUNTS:
        assert (carried[name] == 0).all(), name


def test_an_idle_partition_closes_its_sessions_once_event_time_passes_the_trade_date(
        kafka_broker, topic: str, day_one) -> None:
    definitions, mbo, busy, quiet = day_one
    day = int(trade_date_days(mbo["ts_recv"][:1])[0])
    roll = new_york_instant_ns(day_to_date(day), 18)  # trade date D+1 begins
    plain = quiet_and_busy(day_one, busy_s=30.0, quiet_s=10.0)
    records = quiet_and_busy(day_one, busy_s=30.0, quiet_s=10.0,
                             shift_ns=roll - 3_500_000_000 - int(plain["ts_recv"].max()))  # last at 17:59:56.5
    kafka_broker.create_topic(topic, 1)
    publish(kafka_broker.bootstrap, topic, definitions, records)
    clock = StepClock(0.0)
    part = tailing_partition(kafka_broker.bootstrap, topic, clock)
    read_everything(part, len(records))
    source, last = f"kafka:{topic}/0", roll - 3_500_000_000
    keys = tuple(sorted((book_key(quiet, day), book_key(busy, day))))

    ticks = []
    for now in (1.0, 3.0, 6.0, 8.0, 20.0):
        clock.now = now
        ticks.append(part.next_batch())
    state = part.snapshot()
    part.close()

    assert ticks[0] == [SourceTick(source, last - NS, keys)]  # 17:59:55.5
    assert ticks[1] == []  # idle for the timeout exactly: still 17:59:55.5
    assert ticks[2] == [SourceTick(source, last - NS + 3 * NS, keys, idle=True)]  # 3 s past the timeout: 17:59:58.5
    end = list(ticks[3])  # 18:00:00.5: trade date D+1, the books of D close (no book is left to tick; the
    # partition still tells its event time, which the option relay hears)
    assert [(type(e).__name__, e.book_keys, getattr(e, "final", None)) for e in end] == \
        [("SourceEnd", keys, False), ("SourceTick", (), None)]
    assert end[1] == SourceTick(source, last - NS + 5 * NS, (), idle=True)
    assert ticks[4] == [SourceTick(source, last - NS + 17 * NS, (), idle=True)]
    assert state.open_keys == () and state.tick_ns == last - NS + 17 * NS and state.event_ns == last


def test_a_bounded_partition_never_ticks(kafka_broker, topic: str, day_one) -> None:
    definitions, _mbo, _busy, _quiet = day_one
    records = quiet_and_busy(day_one, busy_s=30.0, quiet_s=10.0)
    kafka_broker.create_topic(topic, 1)
    publish(kafka_broker.bootstrap, topic, definitions, records)
    clock = itertools.count(0.0, 100.0).__next__  # a hundred seconds between any two looks
    source = KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, stop_at_end=True,
                                       ticks=TICKS), clock=clock)
    from tests.kafka.test_source import drain

    items = drain(source.build_part("in", f"0-{topic}", None))
    assert [type(i).__name__ for i in items if not isinstance(i, RecordChunk)] == ["SourceEnd"]


# ------------------------------------------------------------------------------- the dataflow


class _UntilTicked(FixedPartitionedSource):
    """The tailing source, ended once its partition has read ``records`` and ticked into the
    second of ``at``: a tailing run never ends by itself. A test harness, not product."""

    def __init__(self, inner: KafkaMboSource, records: int, at: int) -> None:
        self._inner, self._records, self._at = inner, records, at

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(self, step_id: str, for_part: str,
                   resume_state: KafkaPartitionState | None) -> StatefulSourcePartition:
        return _UntilTickedPartition(self._inner.build_part(step_id, for_part, resume_state), self._records, self._at)


class _UntilTickedPartition(StatefulSourcePartition):
    def __init__(self, part: StatefulSourcePartition, records: int, at: int) -> None:
        self._part, self._records, self._at, self._polls = part, records, at, 0

    def next_batch(self) -> list:
        state = self._part.snapshot()
        if state.records >= self._records and state.tick_ns // NS == self._at // NS:
            raise StopIteration
        self._polls += 1
        assert self._polls < 200_000, "the partition never ticked to the end of its records"
        return list(self._part.next_batch())

    def next_awake(self):  # noqa: ANN201 - bytewax's signature
        return self._part.next_awake()

    def snapshot(self) -> object:
        return self._part.snapshot()

    def close(self) -> None:
        self._part.close()


def _book_table(lake: Lake, instrument_id: int) -> pa.Table:
    table = table_content(lake, SILVER_BOOK_1S, DROPPED)
    return table.filter(pc.equal(table["instrument_id"], instrument_id)).sort_by("ts_recv")


def test_a_tailed_flow_writes_a_quiet_contracts_seconds_on_the_tick(
        kafka_broker, topic: str, day_one, kafka_replay, tmp_path: Path) -> None:
    """The real graph over the real broker, tailing with an injected clock (half a second more at
    every look, no idle extrapolation): the quiet contract's rows run on to the partition's event
    time; the busy one's are the bounded run's (less the last second, still open)."""
    definitions, _mbo, busy, quiet = day_one
    records = quiet_and_busy(day_one)
    kafka_broker.create_topic(topic, 1)
    publish(kafka_broker.bootstrap, topic, definitions, records)
    last = int(records["ts_recv"].max())
    bounded = kafka_replay(topic, tmp_path / "bounded")

    cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], tmp_path / "tailed")
    lake = Lake(cfg.lake.root)
    lake.ensure_all()
    ticks = replace(TICKS, idle_timeout_s=1e9)
    source = KafkaMboSource(TopicInput(bootstrap=kafka_broker.bootstrap, topic=topic, ticks=ticks),
                            clock=itertools.count(0.0, 0.5).__next__)
    stopping = _UntilTicked(source, len(records) + len(definitions), last - NS)
    run_main(build_flow(cfg, stopping, plan_topic(lake), Sinks.delta(cfg, lake)))

    want_quiet, got_quiet = _book_table(bounded, quiet), _book_table(lake, quiet)
    assert want_quiet.num_rows > 400
    assert got_quiet.slice(0, want_quiet.num_rows).equals(want_quiet)  # its own seconds, as in the replay
    carried = got_quiet.slice(want_quiet.num_rows)
    first = want_quiet["ts_recv"][-1].as_py() // NS + 1
    assert carried["ts_recv"].to_pylist() == [s * NS for s in range(first, (last - NS) // NS + 1)]
    assert len(carried) > 300
    for name in ("best_bid_px", "best_ask_px", "bid_sz_00", "ask_sz_00", "bid_ct_00", "ask_ct_00", "book_valid"):
        assert set(carried[name].to_pylist()) == {want_quiet[name][-1].as_py()}, name
    for name in COUNTS:
        assert set(carried[name].to_pylist()) == {0}, name
    want_busy = _book_table(bounded, busy)
    assert _book_table(lake, busy).equals(want_busy.slice(0, want_busy.num_rows - 1))
