"""The Eventhouse sink: one Bytewax output per Eventhouse table, beside (never in front of) the Delta sinks.

The Delta tables are the system of record; this sink only follows them. Its rows are queued in
memory and shipped by a thread of each partition when a batch is due (``flush_s`` after its
first row, or as soon as it would fill a request), so the worker never waits for the
Eventhouse: a slow or absent Eventhouse delays nothing in the lake and costs no row there.

Delivery is at-least-once. The partition's recovery state is what was not yet acknowledged (the
queued batch and the one in flight); after a crash it is sent again, and the input's replay
after the snapshot brings the rest. A row the Eventhouse had acknowledged just before the crash
may so arrive twice, with the same ``stream`` and ``position``: the schema's ``*Dedup``
materialized views show it once. A permanent refusal (``EventhouseError``) stops the flow at the
next batch or snapshot; transient failures are retried with backoff for as long as the flow
runs. Past ``max_pending_rows`` (an Eventhouse down for long) the oldest rows are dropped from
the queue and counted, with a warning naming ``spymaster eventhouse sync``, which ships what the
lake holds for a range through the same path.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field

import pyarrow as pa
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from typing_extensions import override

from connectors.delta.clock import MONOTONIC, CommitClock
from connectors.kusto.client import EventhouseError, Shipper
from connectors.kusto.config import EventhouseConfig
from connectors.kusto.tables import EventhouseTable

log = logging.getLogger("spymaster.eventhouse")

JSON_BYTES_PER_ARROW_BYTE = 3
"""A MULTIJSON request is about this many times the rows' Arrow size (names repeated per row)."""
MAX_PENDING_ROWS = 2_000_000
CLOSE_STALL_S = 60.0
"""At the end of input, the sender keeps going as long as batches are being acknowledged; it gives
up once none has been for this long (an Eventhouse that is down), leaving the rest to ``sync``."""


@dataclass
class EventhouseStats:
    """Per table: rows acknowledged, dropped from a full queue, and left unsent at close."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    unsent: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, which: dict[str, int], table: str, n: int) -> None:
        with self.lock:
            which[table] = which.get(table, 0) + n


class _Partition(StatefulSinkPartition[pa.Table, pa.Table | None]):
    def __init__(self, shipper: Shipper, cfg: EventhouseConfig, stats: EventhouseStats, clock: CommitClock,
                 resume: pa.Table | None, max_pending_rows: int) -> None:
        self._shipper, self._cfg, self._stats, self._clock = shipper, cfg, stats, clock
        self._name = shipper.table.name
        self._max_pending = max_pending_rows
        self._cond = threading.Condition()
        self._queue: deque[pa.Table] = deque()
        self._queued_rows = self._queued_bytes = 0
        self._first_at: float | None = None
        self._inflight: pa.Table | None = None
        self._closing = False
        self._error: BaseException | None = None
        if resume is not None and resume.num_rows:
            self._enqueue(resume)
        self._thread = threading.Thread(target=self._run, name=f"eventhouse-{self._name}", daemon=True)
        self._thread.start()

    @override
    def write_batch(self, values: list[pa.Table]) -> None:
        self._raise_error()
        with self._cond:
            for rows in values:
                if rows.num_rows:
                    self._enqueue(rows)
            self._cond.notify()

    @override
    def snapshot(self) -> pa.Table | None:
        """What is not acknowledged yet: the batch in flight and the queue, in order."""
        self._raise_error()
        with self._cond:
            parts = ([self._inflight] if self._inflight is not None else []) + list(self._queue)
        return pa.concat_tables(parts) if parts else None

    @override
    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        acknowledged = -1
        while self._thread.is_alive() and self._shipper.stats.rows != acknowledged:
            acknowledged = self._shipper.stats.rows
            self._thread.join(CLOSE_STALL_S)
        if self._thread.is_alive():
            self._shipper.stop()
            self._thread.join(10)
        self._shipper.close()
        with self._cond:
            left = self._queued_rows + (self._inflight.num_rows if self._inflight is not None else 0)
        if left:
            self._stats.add(self._stats.unsent, self._name, left)
            log.error("Eventhouse %s: %d row(s) not acknowledged (none for %.0f s at the end); the lake has them: "
                      "ship them with `spymaster eventhouse sync --dates …`", self._name, left, CLOSE_STALL_S)
        self._raise_error()

    def _enqueue(self, rows: pa.Table) -> None:
        if self._first_at is None:
            self._first_at = self._clock.now()
        self._queue.append(rows)
        self._queued_rows += rows.num_rows
        self._queued_bytes += rows.nbytes * JSON_BYTES_PER_ARROW_BYTE
        while self._queued_rows > self._max_pending and len(self._queue) > 1:
            old = self._queue.popleft()
            self._queued_rows -= old.num_rows
            self._queued_bytes -= old.nbytes * JSON_BYTES_PER_ARROW_BYTE
            self._stats.add(self._stats.dropped, self._name, old.num_rows)
            log.warning("Eventhouse %s: queue full (%d rows unacknowledged); dropped the oldest %d rows, which "
                        "the lake holds: ship them later with `spymaster eventhouse sync`", self._name,
                        self._queued_rows, old.num_rows)

    def _due_in(self) -> float | None:
        """0 when a batch is due, else seconds until it is (None: nothing queued)."""
        if not self._queue:
            return None
        if self._closing or self._queued_bytes >= self._cfg.max_request_bytes:
            return 0.0
        assert self._first_at is not None
        return max(0.0, self._first_at + self._cfg.flush_s - self._clock.now())

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    wait = self._due_in()
                    if wait == 0.0:
                        break
                    if wait is None and self._closing:
                        return
                    self._clock.wait(self._cond, wait)
                batch = pa.concat_tables(self._queue)
                self._queue.clear()
                self._queued_rows = self._queued_bytes = 0
                self._first_at = None
                self._inflight = batch
            try:
                self._shipper.send(batch)
            except InterruptedError:
                return
            except Exception as err:  # noqa: BLE001 - raised on the worker thread (_raise_error)
                with self._cond:
                    self._error = err
                return
            self._stats.add(self._stats.acknowledged, self._name, batch.num_rows)
            with self._cond:
                self._inflight = None

    def _raise_error(self) -> None:
        with self._cond:
            err = self._error
        if err is not None:
            if isinstance(err, EventhouseError):
                raise err
            msg = f"the Eventhouse sender for {self._name} stopped: {err!r}"
            raise EventhouseError(msg) from err


class EventhouseSink(FixedPartitionedSink[pa.Table, pa.Table | None]):
    """One Eventhouse table; items are ``(key, rows)`` with ``rows`` in the table's columns."""

    def __init__(self, cfg: EventhouseConfig, table: EventhouseTable, *, partitions: int = 1,
                 stats: EventhouseStats | None = None, clock: CommitClock = MONOTONIC,
                 max_pending_rows: int = MAX_PENDING_ROWS) -> None:
        self._cfg, self._table, self._partitions = cfg, table, partitions
        self.stats = stats or EventhouseStats()
        self._clock, self._max_pending = clock, max_pending_rows

    @override
    def list_parts(self) -> list[str]:
        return [f"eventhouse.{self._table.name}#{i}" for i in range(self._partitions)]

    @override
    def part_fn(self, item_key: str) -> int:
        return zlib.adler32(item_key.encode())

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: pa.Table | None) -> _Partition:
        return _Partition(Shipper(self._cfg, self._table), self._cfg, self.stats, self._clock, resume_state,
                          self._max_pending)
