"""``spymaster bench --live``: the live path measured end to end on a local broker.

A local broker starts on loopback (``flows.services.broker``). One simulated day is published
with the live-market simulator (``replay.publish``) while the flow consumes the topic in tailing
mode, in its own process, with recovery on (as a live deployment runs it), an epoch of
``epoch_ms`` and the ``inference_scores`` output topic on. Two phases, each on a fresh broker,
topic, lake and flow process:

- **×speed** (default 10), on ``broker`` (default librdkafka's mock cluster with a 10 ms fetch
  wait, see ``MOCK_FETCH_WAIT_MS``; or tansu): the session up to 09:30 ET is published as fast
  as possible (warm-up: levels, books and the prior part of the session must exist before
  episodes can open; on the mock held within what it keeps ahead of the flow, ``_Ahead``), then
  the first ``window_minutes`` of RTH at real time × speed, which is what is measured.
- **max**, on tansu (its backlog is the whole window, more than the mock keeps): the same
  records, all as fast as possible.

What "written" means, per latency (publish time = the ``published-ns`` header the publisher
stamps on each message, recorded as it sends, ``_Stamps``; a row at event time T of a contract
is caused by that contract's first message holding a record with ``ts_recv >= T``, the record
that lets T be sampled):

- *Silver row durable*: the commit time of the Delta log entry that added the row's file
  (``commitInfo.timestamp``) of ``silver.book_snapshot_1s``;
- *Silver row on topic*: the producer timestamp of that row's message on a topic the flow tees
  ``silver.book_snapshot_1s`` to: the flow's first step (source, book, sink) with one sample per
  contract-second (thousands per window, where a 20-minute window has only a handful of scores),
  so its tail says how long and how often the worker pauses;
- *score computed*: ``scored_at`` of the ``gold.inference_scores`` row (the scorer returned);
- *score on topic*: the producer timestamp of the row's message on ``inference_scores``;
- *score row durable*: the Delta commit time, as for Silver.
- *score acknowledged by the Eventhouse* (with ``eventhouse``): the flow's Eventhouse sink feeds
  all five tables into a local Eventhouse in a process of its own, at the topic default flush
  (1 s); the time is when the Eventhouse replied to the request that carried the score row
  (its acknowledgement journal), the first time if it was sent twice.
- *broker floor*: a plain consumer (the flow's fetch settings) tailing the same topic in a process
  of its own (in the bench process it waited for the GIL behind the publisher and the lag
  sampling), message receive time minus its ``published-ns``: what the broker itself adds before
  any of the flow runs (see ``TopicInput.fetch_wait_ms``).

Consumer lag is records published minus records durable in ``bronze.mbo`` (read from the Delta
log incrementally, so sampling stays cheap as the log grows), sampled twice a second until the
phase has drained; it is *growing* when its least-squares slope while records
are being offered exceeds 5 % of the offered record rate. Sustained records/s: records over the
time from first send to the last record durable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from connectors.delta.lake import Lake, rows_in
from connectors.delta.tables import BRONZE_MBO, GOLD_INFERENCE_SCORES, SILVER_BOOK_1S, TableSpec
from flows.bench.latency import Percentiles
from flows.config import RECOVERY_EPOCH_S

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flows.services.broker import Broker
    from replay.publish import Message

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
SCORE_P99_TARGET_MS = 100.0
BROKERS = ("mock", "tansu")
MOCK_FETCH_WAIT_MS = 10
"""The paced phase's fetch wait on the mock. Neither local broker answers a waiting fetch when
data arrives (a Kafka broker does, at ``fetch.min.bytes``); they hold it for the whole wait. The
mock serves a 10 ms wait cheaply, which stands in for a broker that answers on arrival; on tansu
a short wait costs the CPU the flow needs (docs/live.md)."""


@dataclass(frozen=True, slots=True)
class PhaseResult:
    name: str
    records: int
    offered_rps: float
    sustained_rps: float
    lag_samples: list[tuple[float, int]]
    lag_slope_rps: float
    lag_growing: bool
    silver_durable: Percentiles
    silver_on_topic: Percentiles
    score_computed: Percentiles
    score_on_topic: Percentiles
    score_durable: Percentiles
    score_status: dict[str, int] = field(default_factory=dict)
    broker_floor: Percentiles = Percentiles(0, float("nan"), float("nan"), float("nan"))
    score_after_broker: Percentiles = Percentiles(0, float("nan"), float("nan"), float("nan"))
    """Score computed minus when the plain consumer got the cause message: the flow's own share."""
    score_acknowledged: Percentiles = Percentiles(0, float("nan"), float("nan"), float("nan"))
    """Publish -> the Eventhouse acknowledged the request carrying the score (``eventhouse`` only)."""


@dataclass(frozen=True, slots=True)
class LiveBench:
    speed: float
    window_minutes: float
    epoch_ms: int
    phases: list[PhaseResult]
    model: str = ""
    """What scored (the registry's champion, or a synthetic model in a temporary store)."""
    fetch_wait_ms: int | None = None
    """The paced phase's consumer ``fetch.wait.max.ms`` (None: librdkafka's 500)."""
    broker: str = "tansu"
    """The paced phase's broker; the max-speed phase always runs on tansu."""
    max_fetch_wait_ms: int | None = None
    eventhouse: bool = False
    """Whether the flow fed a local Eventhouse (all five tables, 1 s flush) while measured."""

    def meets_target(self) -> bool:
        paced = self.phases[0]
        return paced.score_computed.p99_ms < SCORE_P99_TARGET_MS and not paced.lag_growing

    def as_json(self) -> str:
        return json.dumps(asdict(self) | {"meets_target": self.meets_target()}, default=str)


def split_day(files: list[Path], window_minutes: float):
    """(warm-up, measured) ``Loaded`` halves of a day: before 09:30 ET, then the RTH window."""
    from replay.publish import Loaded, load_files

    loaded = load_files(files)
    mbo = loaded.by_schema["mbo"]
    open_ns = _rth_open_ns(int(mbo["ts_recv"][len(mbo) // 2]))
    end_ns = open_ns + int(window_minutes * 60e9)
    ts = mbo["ts_recv"].astype(np.int64)
    warm = Loaded(loaded.dataset, {"definition": loaded.by_schema["definition"], "mbo": mbo[ts < open_ns]})
    measured = Loaded(loaded.dataset, {"mbo": mbo[(ts >= open_ns) & (ts < end_ns)]})
    return warm, measured


def _window(measured) -> tuple[int, int]:
    """Event times of rows caused by the measured records: from the first record's second on."""
    ts = measured.by_schema["mbo"]["ts_recv"].astype(np.int64)
    return int(ts.min()) // 1_000_000_000 * 1_000_000_000 + 1_000_000_000, int(ts.max())


def _rth_open_ns(any_ts_ns: int) -> int:
    day = datetime.fromtimestamp(any_ts_ns / 1e9, NY).date()
    return int(datetime.combine(day, dtime(9, 30), NY).timestamp() * 1e9)


class _FlowProcess:
    """The flow as a live deployment runs it: its own process, tailing the topic, recovery on."""

    def __init__(self, topic_url: str, lake: Path, scratch: Path, bootstrap: str, scores_topic: str,
                 silver_topic: str, epoch_ms: int, tracking_uri: str, extra_env: dict[str, str], *,
                 outputs: str | None = None) -> None:
        """``outputs``: the SPYMASTER_OUTPUT_TOPICS to run with instead of the two topics named."""
        env = {**os.environ, **extra_env, "SPYMASTER_INPUT": topic_url, "SPYMASTER_LAKE": str(lake),
               "MLFLOW_TRACKING_URI": tracking_uri,  # the registry the flow's scorer reads
               "SPYMASTER_OUTPUT_BOOTSTRAP": bootstrap,
               "SPYMASTER_OUTPUT_TOPICS": outputs or f"{GOLD_INFERENCE_SCORES.name}={scores_topic},"
                                                    f"{SILVER_BOOK_1S.name}={silver_topic}",
               "SPYMASTER_KAFKA_STOP_AT_END": "0",
               # no wall-clock ticks: a row a tick closes exists before the message that would have
               # closed it, and each Silver row's latency is measured from that message
               "SPYMASTER_TICK_S": "0"}
        self.log = scratch / f"{lake.name}.log"
        cmd = [sys.executable, "-m", "flows.bench.live", str(scratch / f"{lake.name}-recovery"), str(epoch_ms)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                         start_new_session=True)

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            msg = f"the flow exited with {self.proc.returncode} during the bench: {tail[0]}"
            raise RuntimeError(msg)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # tailing never ends; what is measured is already durable
        self.proc.wait()


class _DurableRows:
    """Rows in one table, following its Delta log incrementally: opening the table anew replays
    the whole log, which grows by a commit a second, and the bench samples it twice a second on
    the machine the flow runs on."""

    def __init__(self, lake: Lake, spec: TableSpec) -> None:
        self._lake, self._spec = lake, spec
        self._table: DeltaTable | None = None

    def __call__(self) -> int:
        if self._table is None:
            self._table = self._lake.open(self._spec)
            if self._table is None:
                return 0
        else:
            self._table.update_incremental()
        return rows_in(self._table)


def _wait_durable(durable: _DurableRows, want: int, flow: _FlowProcess, timeout: float) -> float:
    """Block until ``bronze.mbo`` holds ``want`` rows; return the wall time it happened."""
    deadline = time.monotonic() + timeout
    while (n := durable()) < want:
        flow.check()
        if time.monotonic() > deadline:
            msg = f"only {n:,} of {want:,} records became durable within {timeout:.0f} s"
            raise RuntimeError(msg)
        time.sleep(0.1)
    return time.time()


def run_phase(name: str, speed: float | None, warm, measured, broker: Broker, scratch: Path,
              epoch_ms: int, fetch_wait_ms: int | None = None, *, tracking_uri: str,
              eventhouse: bool = False) -> PhaseResult:
    """One phase; the flow scores with the champion registered at ``tracking_uri`` (and feeds a local
    Eventhouse with ``eventhouse``)."""
    with ExitStack() as stack:
        extra_env: dict[str, str] = {}
        eh_url = None
        if eventhouse:
            from flows.jobs.eventhouse import SCHEMA_SCRIPT
            from flows.services.eventhouse import start_local_eventhouse

            eh = stack.enter_context(start_local_eventhouse(log_path=scratch / f"eventhouse-{name}.log",
                                                            schema=SCHEMA_SCRIPT, journal=True))
            eh_url = eh.url
            extra_env = {"SPYMASTER_EVENTHOUSE": eh.url, "SPYMASTER_EVENTHOUSE_AUTH": "none"}
        result, published = _run_phase(name, speed, warm, measured, broker, scratch, epoch_ms, fetch_wait_ms,
                                       tracking_uri=tracking_uri, extra_env=extra_env)
        if eh_url is None:
            return result
        return replace(result, score_acknowledged=_acknowledged(eh_url, scratch / f"lake-{name}",
                                                                 _window(measured), published))


def _acknowledged(url: str, lake_dir: Path, window: tuple[int, int],
                  published: dict[int, tuple[np.ndarray, np.ndarray]]) -> Percentiles:
    """Publish -> acknowledgement of each score of the window the Eventhouse holds (its first copy)."""
    from urllib.request import urlopen

    with urlopen(f"{url}/spymaster/acks?table=Scores", timeout=60) as reply:  # noqa: S310 - the local Eventhouse
        acks = json.loads(reply.read())
    first: dict[tuple[str, int], int] = {}
    for stream, position, acked in zip(acks["stream"], acks["position"], acks["acked_ns"], strict=True):
        first.setdefault((stream, position), acked)
    scores = _in_window(Lake(str(lake_dir)).read(GOLD_INFERENCE_SCORES, ["episode_id", "model_id", "instrument_id",
                                                                         "vector_time"]), "vector_time", window)
    if scores is None or not scores.num_rows:
        return Percentiles.of([])
    vector_time = scores["vector_time"].cast("int64").to_numpy()
    acked_ns = np.array([first.get((f"{e}|{m}", int(t)), -1) for e, m, t in zip(
        scores["episode_id"].to_pylist(), scores["model_id"].to_pylist(), vector_time.tolist(), strict=True)],
        np.int64)
    cause = _cause_ns(published, scores["instrument_id"].to_numpy().astype(np.int64), vector_time)
    keep = (acked_ns >= 0) & (cause >= 0)
    return Percentiles.of((acked_ns[keep] - cause[keep]).astype(np.float64))


def _run_phase(name: str, speed: float | None, warm, measured, broker: Broker, scratch: Path,
               epoch_ms: int, fetch_wait_ms: int | None, *, tracking_uri: str,
               extra_env: dict[str, str]) -> tuple[PhaseResult, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """The phase, and the publish stamps its latencies were measured from."""
    from replay.publish import schedule, send

    topic, bootstrap = f"mbo_{name}", broker.bootstrap
    scores_topic, silver_topic = f"inference_scores_{name}", f"book_snapshot_1s_{name}"
    broker.create_topic(topic, 4)
    broker.create_topic(scores_topic, 2)
    broker.create_topic(silver_topic, 2)
    lake_dir = scratch / f"lake-{name}"
    query = "" if fetch_wait_ms is None else f"?fetch_wait_ms={fetch_wait_ms}"
    flow = _FlowProcess(f"kafka://{bootstrap}/{topic}{query}", lake_dir, scratch, bootstrap, scores_topic,
                        silver_topic, epoch_ms, tracking_uri, extra_env)
    lake = Lake(str(lake_dir))
    floor: _BrokerFloor | None = None
    try:
        warm_n, total = len(warm.by_schema["mbo"]), len(warm.by_schema["mbo"]) + len(measured.by_schema["mbo"])
        bronze = _DurableRows(lake, BRONZE_MBO)
        ahead = None if broker.kept_bytes is None else _Ahead(bronze, broker.kept_bytes, flow)
        send(schedule(warm, speed=None), bootstrap=bootstrap, topic=topic, dataset=warm.dataset, on_progress=ahead)
        _wait_durable(bronze, warm_n, flow, timeout=600)
        floor = _BrokerFloor(bootstrap, topic, fetch_wait_ms, scratch)
        sent = [0]
        stamps = _Stamps()
        started = time.time()
        publisher = threading.Thread(target=send, daemon=True, kwargs={
            "messages": schedule(measured, speed=speed), "bootstrap": bootstrap, "topic": topic,
            "dataset": measured.dataset, "on_progress": lambda n, _t: sent.__setitem__(0, n),
            "on_sent": stamps})
        publisher.start()
        samples: list[tuple[float, int]] = []
        deadline, paced = None, 0
        while (durable := bronze()) < total or publisher.is_alive():
            flow.check()
            samples.append((round(time.time() - started, 2), warm_n + sent[0] - durable))
            if deadline is None and not publisher.is_alive():
                deadline, paced = time.monotonic() + 300, len(samples)
            if deadline is not None and time.monotonic() > deadline:
                msg = f"only {durable:,} of {total:,} records became durable within 300 s of the last send"
                raise RuntimeError(msg)
            time.sleep(0.5)
        finished = time.time()
        floor.stop()
        samples.append((round(finished - started, 2), 0))
        time.sleep(max(3 * epoch_ms / 1000, 1.0))  # the last scores' commits
    finally:
        flow.stop()
        if floor is not None:
            floor.close()
    offered = (total - warm_n) / _span_s(measured, speed) if speed else float("nan")
    slope = _slope(samples[:paced])  # while records were being offered; the drain afterwards only falls
    silver, scores, after_broker = _latencies(lake, stamps.published(), bootstrap, (scores_topic, silver_topic),
                                              _window(measured), floor.received)
    (silver_durable, silver_on_topic), (score_computed, score_on_topic, score_durable, status) = silver, scores
    return PhaseResult(name, total - warm_n, round(offered, 1), round((total - warm_n) / (finished - started), 1),
                       samples, round(slope, 1), bool(speed) and slope > 0.05 * offered,
                       silver_durable, silver_on_topic, score_computed, score_on_topic, score_durable, status,
                       broker_floor=Percentiles.of(floor.latencies_ns), score_after_broker=after_broker
                       ), stamps.published()


def _span_s(measured, speed: float) -> float:
    ts = measured.by_schema["mbo"]["ts_recv"].astype(np.int64)
    return max((int(ts.max()) - int(ts.min())) / 1e9 / speed, 1e-9)


def _slope(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 3:
        return 0.0
    t, lag = np.array(samples, dtype=float).T
    return float(np.polyfit(t, lag, 1)[0])


class _Stamps:
    """What the publisher sent, per instrument in send order (= topic order: one key, one
    partition): each message's highest ``ts_recv`` and its ``published-ns`` stamp."""

    def __init__(self) -> None:
        self._per: dict[int, list[tuple[int, int]]] = {}

    def __call__(self, message: Message, stamp: int) -> None:
        if message.raw is None and message.schema == "mbo" and len(message.records):
            self._per.setdefault(message.instrument_id, []).append((int(message.records["ts_recv"].max()), stamp))

    def published(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per instrument: the running-max ``ts_recv`` of its messages and their publish times."""
        out = {}
        for iid, pairs in self._per.items():
            arr = np.array(pairs, dtype=np.int64)
            out[iid] = (np.maximum.accumulate(arr[:, 0]), arr[:, 1])
        return out


class _Ahead:
    """Holds a max-speed publisher while it is more than about half of what the broker keeps per
    partition ahead of the flow (records published minus records durable in Bronze), so that no
    message is dropped before the flow reads it (librdkafka's mock keeps 5 MiB per partition,
    and one contract's records all go to one partition)."""

    RECORD_BYTES = 64  # a 56-byte MBO record plus its share of the message's framing

    def __init__(self, durable: _DurableRows, kept_bytes: int, flow: _FlowProcess) -> None:
        self._durable, self._flow = durable, flow
        self._limit = kept_bytes // (2 * self.RECORD_BYTES)
        self._seen = 0

    def __call__(self, sent: int, _total: int) -> None:
        while sent - self._seen > self._limit:
            self._flow.check()
            time.sleep(0.05)
            self._seen = self._durable()


class _BrokerFloor:
    """A plain consumer tailing ``topic`` from its current end, in its own process (``floor`` below):
    receive time − ``published-ns`` per message."""

    def __init__(self, bootstrap: str, topic: str, fetch_wait_ms: int | None, scratch: Path) -> None:
        self._out = scratch / f"floor-{topic}.npy"
        cmd = [sys.executable, "-m", "flows.bench.live", "floor", bootstrap, topic,
               "" if fetch_wait_ms is None else str(fetch_wait_ms), str(self._out)]
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
        ready = self._proc.stdout.readline() if self._proc.stdout else ""
        if ready.strip() != "ready":
            self._proc.kill()
            msg = f"the broker-floor consumer did not start (exit {self._proc.wait()})"
            raise RuntimeError(msg)
        self.latencies_ns: list[int] = []
        self.received: dict[tuple[int, int], int] = {}
        """(instrument id, published-ns) → when the floor consumer got the message."""

    def seen(self) -> int:
        """Messages the running consumer has taken so far, timed or not (updated every 0.1 s or so)."""
        try:
            return int(_seen_path(self._out).read_text() or 0)
        except FileNotFoundError:
            return 0

    def close(self) -> None:
        """Kill the process if ``stop`` never ran (the phase failed)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGTERM)
        if self._proc.wait(timeout=30) != 0:
            msg = f"the broker-floor consumer exited with {self._proc.returncode}"
            raise RuntimeError(msg)
        got = np.load(self._out)  # int64 rows: instrument id (-1: none), published-ns, received-ns
        self.latencies_ns = (got[:, 2] - got[:, 1]).tolist()
        keyed = got[got[:, 0] >= 0]
        self.received = {(int(i), int(p)): int(r) for i, p, r in keyed}


def _floor(bootstrap: str, topic: str, fetch_wait_ms: str, out: Path) -> None:
    """The broker-floor process: say ``ready`` once assigned at the end, record until SIGTERM."""
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    from connectors.kafka.codec import published_ns

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    settings = {"bootstrap.servers": bootstrap, "group.id": "spymaster-bench-floor", "enable.auto.commit": "false"}
    if fetch_wait_ms:
        settings["fetch.wait.max.ms"] = fetch_wait_ms
    consumer = Consumer(settings)
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
    consumer.consume(1, 0.5)  # resolves the end offsets before anything is published
    ready_ns = time.time_ns()
    print("ready", flush=True)
    rows: list[tuple[int, int, int]] = []
    seen, told, told_at = 0, 0, 0.0
    try:
        while not stopping.is_set():
            if seen != told and time.monotonic() - told_at >= 0.1:  # progress, for whoever waits on it
                _seen_path(out).with_suffix(".tmp").write_text(str(seen))
                _seen_path(out).with_suffix(".tmp").replace(_seen_path(out))
                told, told_at = seen, time.monotonic()
            # poll returns with the first message; consume(n, timeout) would wait out its timeout
            # for n messages, up to 50 ms added to every delivery it times
            first = consumer.poll(0.05)
            if first is None:
                continue
            batch = [first, *consumer.consume(1000, 0)]
            seen += len(batch)
            for msg in batch:
                now = time.time_ns()
                stamp = None if msg.error() else published_ns(msg.headers())
                # tansu's end offset can fall short of the end (docs/live.md): what was published
                # before this consumer listened is not a delivery it can time
                if stamp is not None and stamp >= ready_ns:
                    key = msg.key() or b""
                    rows.append((int(key) if key.isdigit() else -1, stamp, now))
    finally:
        consumer.close()
        np.save(out, np.array(rows, dtype=np.int64).reshape(-1, 3))


def _seen_path(out: Path) -> Path:
    return out.with_name(out.name + ".seen")


def _consume(bootstrap: str, topic: str):
    from confluent_kafka import Consumer, TopicPartition

    # earliest, not END, where the broker no longer has offset 0 (the mock keeps 5 MiB a partition)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "spymaster-bench", "enable.auto.commit": "false",
                         "enable.partition.eof": "true", "auto.offset.reset": "earliest"})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    ended: set[int] = set()
    try:
        while len(ended) < len(parts):
            msg = consumer.poll(5.0)
            if msg is None:
                break
            if msg.error():
                if (partition := msg.partition()) is not None:  # an end-of-partition event names it
                    ended.add(partition)
                continue
            yield msg
    finally:
        consumer.close()


def _cause_ns(published: dict[int, tuple[np.ndarray, np.ndarray]], iid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Publish time of the message that let event time ``t`` of instrument ``iid`` be sampled (-1: none)."""
    out = np.full(len(t), -1, np.int64)
    for i in np.unique(iid):
        if int(i) not in published:
            continue
        last_ts, stamp = published[int(i)]
        mine = iid == i
        k = np.searchsorted(last_ts, t[mine], side="left")
        ok = k < len(last_ts)
        got = np.full(int(mine.sum()), -1, np.int64)
        got[ok] = stamp[k[ok]]
        out[mine] = got
    return out


def _commit_times(lake: Lake, spec: TableSpec, columns: list[str]):
    """The table's rows (``columns``) with the wall time (ns) of the commit that made each durable."""
    from urllib.parse import unquote

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(lake.uri(spec))
    parts = []
    for entry in sorted((root / "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in entry.read_text().splitlines() if line.strip()]
        stamp = next((a["commitInfo"]["timestamp"] for a in actions if "commitInfo" in a), None)
        for add in (a["add"] for a in actions if "add" in a):
            table = pq.read_table(root / unquote(add["path"]), columns=columns)
            if table.num_rows and stamp is not None:
                parts.append(table.append_column("_durable_ns", pa.array(np.full(table.num_rows, stamp * 1_000_000))))
    return pa.concat_tables(parts) if parts else None


def _latencies(lake: Lake, published: dict[int, tuple[np.ndarray, np.ndarray]], bootstrap: str,
               topics: tuple[str, str], window: tuple[int, int], received: dict[tuple[int, int], int],
               ) -> tuple[tuple[Percentiles, Percentiles],
                          tuple[Percentiles, Percentiles, Percentiles, dict[str, int]], Percentiles]:
    scores_topic, silver_topic = topics
    silver = _in_window(_commit_times(lake, SILVER_BOOK_1S, ["instrument_id", "ts_recv"]), "ts_recv", window)
    silver_ns = _lat(published, silver, "ts_recv", silver["_durable_ns"] if silver is not None else None)
    silver_topic_ns = _on_topic(published, bootstrap, silver_topic, "ts_recv", window, identity=None)
    scores = _in_window(lake.read(GOLD_INFERENCE_SCORES, ["episode_id", "instrument_id", "vector_time", "scored_at",
                                                          "status"]), "vector_time", window)
    computed = scores["scored_at"].cast("int64").to_numpy() * 1000 if scores.num_rows else np.zeros(0, np.int64)
    computed_ns = _lat(published, scores, "vector_time", computed)
    after_broker: list[int] = []
    if scores.num_rows:
        iid = scores["instrument_id"].to_numpy().astype(np.int64)
        cause = _cause_ns(published, iid, scores["vector_time"].to_numpy().astype(np.int64))
        for i, stamp, done in zip(iid.tolist(), cause.tolist(), computed.tolist(), strict=True):
            if (int(i), int(stamp)) in received:
                after_broker.append(done - received[(int(i), int(stamp))])
    durable = _in_window(_commit_times(lake, GOLD_INFERENCE_SCORES, ["instrument_id", "vector_time"]), "vector_time",
                         window)
    durable_ns = _lat(published, durable, "vector_time", durable["_durable_ns"] if durable is not None else None)
    topic_ns = _on_topic(published, bootstrap, scores_topic, "vector_time", window, identity="episode_id")
    status: dict[str, int] = {}
    for s in scores["status"].to_pylist() if scores.num_rows else []:
        status[s] = status.get(s, 0) + 1
    return ((Percentiles.of(silver_ns), Percentiles.of(silver_topic_ns)),
            (Percentiles.of(computed_ns), Percentiles.of(topic_ns), Percentiles.of(durable_ns), status),
            Percentiles.of(after_broker))


def _on_topic(published, bootstrap: str, topic: str, time_col: str, window: tuple[int, int], *,
              identity: str | None) -> np.ndarray:
    """Producer timestamp minus the cause's publish time of each row the flow teed to ``topic``,
    the first copy of a row counted once (a resumed flow may send one twice). A row is known by
    its ``identity`` column (a score by its episode: two setups can share a second), else by
    contract and time."""
    first: dict[object, tuple[int, int, int]] = {}
    for msg in _consume(bootstrap, topic):
        row = json.loads(msg.value())
        if window[0] <= row[time_col] <= window[1]:
            key = row[identity] if identity is not None else (row["instrument_id"], row[time_col])
            first.setdefault(key, (row["instrument_id"], row[time_col], msg.timestamp()[1] * 1_000_000))
    if not first:
        return np.zeros(0)
    rows = np.array(list(first.values()), dtype=np.int64)
    cause = _cause_ns(published, rows[:, 0], rows[:, 1])
    return (rows[:, 2] - cause)[cause >= 0].astype(np.float64)


def _in_window(table, time_col: str, window: tuple[int, int]):
    import pyarrow.compute as pc

    if table is None or table.num_rows == 0:
        return table
    t = table[time_col]
    return table.filter(pc.and_(pc.greater_equal(t, window[0]), pc.less_equal(t, window[1])))


def _lat(published, table, time_col: str, done_ns) -> np.ndarray:
    if table is None or done_ns is None or table.num_rows == 0:
        return np.zeros(0)
    iid = table["instrument_id"].to_numpy().astype(np.int64)
    t = table[time_col].to_numpy().astype(np.int64)
    cause = _cause_ns(published, iid, t)
    done = np.asarray(done_ns, dtype=np.int64)
    keep = cause >= 0
    return (done[keep] - cause[keep]).astype(np.float64)


def measure_live(day_files: list[Path], *, speed: float = 10.0, window_minutes: float = 20.0,
                 epoch_ms: int = RECOVERY_EPOCH_S * 1000, broker: str = "mock", fetch_wait_ms: int | None = None,
                 say: Callable[[str], None] | None = None, tracking_uri: str, eventhouse: bool = False) -> LiveBench:
    """The paced phase on ``broker`` (its fetch wait: ``fetch_wait_ms``, else ``MOCK_FETCH_WAIT_MS`` on
    the mock and librdkafka's default on tansu), the max-speed phase on tansu (``fetch_wait_ms``):
    at max speed the backlog outgrows what the mock keeps. The flow scores with the champion
    registered at ``tracking_uri``, or a synthetic model in a temporary store when there is none."""
    from flows.bench.scoring import registry_for_bench
    from flows.services.broker import running_broker, running_mock_cluster

    if broker not in BROKERS:
        msg = f"unknown broker {broker!r}; choose one of {', '.join(BROKERS)}"
        raise ValueError(msg)
    say = say or (lambda line: print(line, file=sys.stderr))
    paced_wait = fetch_wait_ms if fetch_wait_ms is not None or broker != "mock" else MOCK_FETCH_WAIT_MS
    warm, measured = split_day(day_files, window_minutes)
    scratch = Path(tempfile.mkdtemp(prefix="spymaster-bench-live-"))
    try:
        with registry_for_bench("ES_MODEL", say, tracking_uri) as (uri, _version, model):
            start = running_mock_cluster if broker == "mock" else running_broker
            with start(scratch / f"{broker}.log") as paced_broker:
                paced = run_phase(f"x{speed:g}", speed, warm, measured, paced_broker, scratch, epoch_ms, paced_wait,
                                  tracking_uri=uri, eventhouse=eventhouse)
            with running_broker(scratch / "tansu-max.log") as max_broker:
                top = run_phase("max", None, warm, measured, max_broker, scratch, epoch_ms, fetch_wait_ms,
                                tracking_uri=uri, eventhouse=eventhouse)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return LiveBench(speed, window_minutes, epoch_ms, [paced, top], model, paced_wait, broker, fetch_wait_ms,
                     eventhouse)


def _serve(recovery: Path, epoch_ms: int) -> None:
    """The bench's flow process: the configured flow with recovery and a short epoch."""
    from flows.app import prepare
    from flows.config import load_config
    from flows.runner import run_flow

    run_flow(prepare(load_config()), recovery=recovery, epoch_interval=timedelta(milliseconds=epoch_ms))


def print_live(bench: LiveBench, *, as_json: bool) -> None:
    """The bench as a table (or one JSON object), the target beside the ×speed score latency."""
    if as_json:
        print(bench.as_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"spymaster bench --live: first {bench.window_minutes:g} min of RTH, epoch {bench.epoch_ms} ms")
    table.add_column("measure")
    for p in bench.phases:
        table.add_column(p.name, justify="right")
    rows: list[tuple[str, Callable[[PhaseResult], str]]] = [("records in the window", lambda p: f"{p.records:,}"),
            ("offered records/s", lambda p: "max" if p.offered_rps != p.offered_rps else f"{p.offered_rps:,.0f}"),
            ("sustained records/s", lambda p: f"{p.sustained_rps:,.0f}"),
            ("lag max / last (records)", lambda p: f"{max((s[1] for s in p.lag_samples), default=0):,} / "
                                                   f"{p.lag_samples[-1][1] if p.lag_samples else 0:,}"),
            ("lag slope records/s (growing?)",
             lambda p: f"{p.lag_slope_rps:,.0f} ({'yes' if p.lag_growing else 'no'})")]
    for label, key in (("publish -> plain consumer (broker floor)", "broker_floor"),
                       ("publish -> Silver row durable", "silver_durable"),
                       ("publish -> Silver row on topic (the first step)", "silver_on_topic"),
                       ("publish -> score computed", "score_computed"),
                       ("plain consumer got it -> score computed (the flow's share)", "score_after_broker"),
                       ("publish -> score on topic", "score_on_topic"),
                       ("publish -> score row durable", "score_durable"),
                       ("publish -> score acknowledged by the Eventhouse", "score_acknowledged")):
        if key != "score_acknowledged" or any(p.score_acknowledged.n for p in bench.phases):
            rows.append((f"{label} p50/p95/p99 ms", _percentiles_of(key)))
    rows.append(("score statuses", lambda p: ", ".join(f"{k} {v}" for k, v in sorted(p.score_status.items())) or "-"))
    for label, fn in rows:
        table.add_row(label, *(fn(p) for p in bench.phases))
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(table)
    def wait(ms: int | None) -> str:
        return "librdkafka's default (500)" if ms is None else f"{ms}"

    console.print(f"model: {bench.model or 'none'}; x{bench.speed:g} on {bench.broker} (fetch.wait.max.ms "
                  f"{wait(bench.fetch_wait_ms)}), max on tansu (fetch.wait.max.ms {wait(bench.max_fetch_wait_ms)})")
    paced = bench.phases[0]
    verdict = "met" if bench.meets_target() else "NOT met"
    console.print(f"target at x{bench.speed:g}: score latency p99 < {SCORE_P99_TARGET_MS:.0f} ms with no growing lag: "
                  f"p99 {paced.score_computed.p99_ms} ms (computed), lag growing: "
                  f"{'yes' if paced.lag_growing else 'no'} -> {verdict}")


def _percentiles_of(field_name: str) -> Callable[[PhaseResult], str]:
    return lambda p: _fmt(getattr(p, field_name))


def _fmt(p: Percentiles) -> str:
    return f"{p.p50_ms:,.0f} / {p.p95_ms:,.0f} / {p.p99_ms:,.0f} (n={p.n:,})" if p.n else "no rows"


if __name__ == "__main__":
    if sys.argv[1] == "floor":
        _floor(sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5]))
    else:
        _serve(Path(sys.argv[1]), int(sys.argv[2]))
