"""Databento Live → the ``mbo_raw`` topic, with the same codec as ``spymaster publish``.

The record stream is injected: :func:`ingest` takes a *connect* callable that opens one session
and yields DBN records (``databento_dbn`` record objects as ``databento.Live`` yields them, raw
record bytes, or rows of a numpy record array). :func:`databento_connect` is the real one
(``databento.Live``, key from ``DATABENTO_API_KEY``, one ``subscribe`` per schema,
``snapshot=True`` for MBO so every (re)connection starts with a book snapshot: an ``R`` clear
then the resting orders, which rebuilds each book exactly). Tests pass their own.

Records are buffered per instrument in arrival order (definitions, statistics and MBO of one
instrument share a message, so a consumer always sees a definition before that instrument's
book events) and flushed as one message when the buffer spans ``window_ms`` of event time,
would pass ``max_bytes``, or the session ends. Messages are keyed by instrument id.

A session that fails (an exception from the stream) is reconnected with exponential backoff;
``max_reconnects`` failures in a row without a record in between give up with one sentence. The
counts are end to end: ``received == published + skipped + faults`` once the producer is flushed
(``skipped``: records that are not market data, such as symbol mappings, system and error
messages; ``faults``: records the broker did not acknowledge or that could not be read).

Not exercised here: the live Databento gateway (no API key or network access on this machine);
everything behind the ``connect`` seam is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from connectors.dbn.reader import record_dtype
from connectors.kafka.codec import SCHEMA_OF_RTYPE, encode_headers, instrument_key
from operators.errors import ConfigError, SourceError
from operators.records import structured_fields

log = logging.getLogger("spymaster.ingest")

Connect = Callable[[], Iterable[object]]
"""Opens one live session and yields its records; raising means the session failed."""

_TS_RECV_OFFSET = {rtype: structured_fields(record_dtype(schema, 3))["ts_recv"][1]
                   for rtype, schema in SCHEMA_OF_RTYPE.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveConfig:
    dataset: str = "GLBX.MDP3"
    schemas: tuple[str, ...] = ("definition", "mbo", "statistics")
    symbols: tuple[str, ...] = ("ES.FUT",)
    stype_in: str = "parent"
    snapshot: bool = True
    """MBO only: start every session with a book snapshot (Databento's snapshot-on-subscribe)."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.schemas if s not in SCHEMA_OF_RTYPE.values()]
        if unknown:
            raise ConfigError(f"schema {unknown[0]!r} cannot be ingested; use definition, mbo and statistics")
        if not self.symbols:
            raise ConfigError("name at least one symbol to subscribe to (e.g. ES.FUT with --stype-in parent)")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between reconnections: ``initial`` × ``factor``^n, at most ``cap`` seconds."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.initial * self.factor ** max(failures - 1, 0))


@dataclass(slots=True)
class IngestCounts:
    received: int = 0
    published: int = 0
    skipped: int = 0
    faults: int = 0
    messages: int = 0
    sessions: int = 0
    reconnects: int = 0
    delays: list[float] = field(default_factory=list)

    def summary(self) -> str:
        return (f"received {self.received:,} records, published {self.published:,} in {self.messages:,} messages, "
                f"skipped {self.skipped:,} (not market data), faults {self.faults:,}; "
                f"{self.sessions} session(s), {self.reconnects} reconnect(s)")


class MessageSink(Protocol):
    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], records: int) -> None: ...
    def flush(self) -> None: ...


class KafkaMessageSink:
    """The shared Kafka producer (``connectors.kafka.producer``), counting records into ``counts``."""

    def __init__(self, bootstrap: str, topic: str, counts: IngestCounts,
                 add_config: Mapping[str, str] | None = None) -> None:
        from connectors.kafka.producer import KafkaSink

        self._topic, self._counts = topic, counts
        self._sink = KafkaSink(bootstrap, topic, {"linger.ms": "5", "message.max.bytes": "1046000",
                                                  **(add_config or {})}, on_delivery=self._delivered)

    def _delivered(self, records: int, ok: bool, err: object) -> None:
        if ok:
            self._counts.published += records
        else:
            self._counts.faults += records
            log.error("a message of %d records was not delivered: %s", records, err)

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], records: int) -> None:
        self._sink.send(key, value, headers, records)

    def flush(self) -> None:
        left = self._sink.flush(30)
        if left:
            raise SourceError(f"{left} message(s) to {self._topic} were not acknowledged within 30 s")


@dataclass(slots=True)
class _Buffer:
    first_ts: int
    parts: list[bytes]
    size: int


class LiveBatcher:
    """Per-instrument buffers of raw records, flushed by event-time window or size."""

    def __init__(self, window_ns: int, max_bytes: int) -> None:
        self._window, self._max = window_ns, max_bytes
        self._buffers: dict[int, _Buffer] = {}

    def add(self, instrument_id: int, ts_recv: int, raw: bytes) -> list[tuple[int, list[bytes]]]:
        out = [(iid, b.parts) for iid, b in self._buffers.items() if ts_recv - b.first_ts >= self._window]
        for iid, _ in out:
            del self._buffers[iid]
        buf = self._buffers.get(instrument_id)
        if buf is not None and buf.size + len(raw) > self._max:
            out.append((instrument_id, buf.parts))
            buf = None
        if buf is None:
            buf = self._buffers[instrument_id] = _Buffer(ts_recv, [], 0)
        buf.parts.append(raw)
        buf.size += len(raw)
        return out

    def drain(self) -> list[tuple[int, list[bytes]]]:
        out = [(iid, b.parts) for iid, b in self._buffers.items()]
        self._buffers.clear()
        return out


def record_parts(record: object) -> tuple[int, int, int, bytes] | None:
    """``(rtype, instrument_id, ts_recv, raw v3 bytes)`` of a record we publish, else None."""
    if isinstance(record, np.void):
        raw = record.tobytes()
    elif isinstance(record, bytes | bytearray | memoryview):
        raw = bytes(record)
    else:
        rtype = getattr(record, "rtype", None)
        try:
            code = int(rtype)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if code not in SCHEMA_OF_RTYPE:
            return None
        raw = bytes(record)  # type: ignore[call-overload]
    if len(raw) < 16 or raw[1] not in SCHEMA_OF_RTYPE or raw[0] * 4 != len(raw):
        return None
    rtype = raw[1]
    at = _TS_RECV_OFFSET[rtype]
    return rtype, int.from_bytes(raw[4:8], "little"), int.from_bytes(raw[at : at + 8], "little"), raw


def ingest(connect: Connect, sink: MessageSink, counts: IngestCounts, *, dataset: str, window_ms: float = 100.0,
           max_bytes: int = 960_000, backoff: Backoff = Backoff(), max_reconnects: int | None = None,
           on_end: Literal["stop", "reconnect"] = "stop", sleep: Callable[[float], None] = time.sleep,
           stop: Callable[[], bool] = lambda: False) -> IngestCounts:
    """Pump sessions from ``connect`` into ``sink`` until a session ends cleanly (``on_end="stop"``),
    ``stop()`` says so, or ``max_reconnects`` consecutive failures."""
    batcher = LiveBatcher(int(window_ms * 1e6), max_bytes)
    failures = 0

    def emit(batches: Sequence[tuple[int, list[bytes]]]) -> None:
        for iid, parts in batches:
            sink.send(instrument_key(iid), b"".join(parts), encode_headers(3, dataset), len(parts))
            counts.messages += 1

    while not stop():
        counts.sessions += 1
        try:
            for record in connect():
                counts.received += 1
                parts = record_parts(record)
                if parts is None:
                    counts.skipped += 1
                    _log_control(record)
                    continue
                failures = 0  # data flows again: the next failure starts the backoff afresh
                _rtype, iid, ts, raw = parts
                emit(batcher.add(iid, ts, raw))
                if stop():
                    break
        except Exception as exc:  # noqa: BLE001 - any session failure is retried with backoff
            emit(batcher.drain())
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                sink.flush()
                raise SourceError(f"the live feed failed {failures} times in a row; last error: {exc}") from None
            delay = backoff.delay(failures)
            counts.reconnects += 1
            counts.delays.append(delay)
            log.warning("live session failed (%s); reconnecting in %.1f s", exc, delay)
            sleep(delay)
            continue
        emit(batcher.drain())
        if on_end == "stop":
            break
    emit(batcher.drain())
    sink.flush()
    return counts


def _log_control(record: object) -> None:
    name = type(record).__name__
    if name == "ErrorMsg":
        log.error("gateway error: %s", getattr(record, "err", record))
    elif name == "SystemMsg":
        log.info("gateway: %s", getattr(record, "msg", record))


def api_key(env: Mapping[str, str]) -> str:
    key = (env.get("DATABENTO_API_KEY") or "").strip()
    if not key:
        from connectors.secrets import where_looked

        raise ConfigError(f"the Databento API key is missing ({where_looked('DATABENTO_API_KEY', env)}); it starts "
                          "with 'db-'")
    return key


def databento_connect(cfg: LiveConfig, key: str) -> Connect:
    """The real stream: a ``databento.Live`` session per call, subscribed to every schema."""

    def connect() -> Iterator[object]:
        import databento as db

        client = db.Live(key=key)
        for schema in cfg.schemas:
            client.subscribe(dataset=cfg.dataset, schema=schema, symbols=list(cfg.symbols), stype_in=cfg.stype_in,
                             snapshot=cfg.snapshot and schema == "mbo")
        try:
            yield from client
        finally:
            client.terminate()

    return connect
