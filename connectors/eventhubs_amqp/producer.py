"""Writing ``mbo_raw`` messages to an event hub over AMQP, behind the producers' ``MessageSink``.

``spymaster publish`` and ``spymaster ingest`` hand every message to a sink as (key, value,
headers, records); this one sends them with ``EventHubProducerClient`` in buffered mode: events
are queued per partition and sent in batches by the SDK's own threads, so thousands of small
messages do not cost a round trip each, and every partition keeps its send order (the order
the consumer's session logic relies on). The key (the instrument id) is the event's
``partition_key``, so an instrument stays on one partition as on Kafka; the headers become the
event's application properties (string values, readable by any AMQP client). ``flush`` waits
for every send and counts what failed.

Size: one event is at most ``AMQP_RECORD_BYTES`` of records, below the Basic tier's 256 KB
(262,144 bytes per event and per batch, properties and AMQP framing included), so the same
messages fit every tier. The SDK sizes its batches by the link's ``max-message-size``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from connectors.databento_live import IngestCounts
from connectors.eventhubs_amqp.client import describe
from operators.errors import ConfigError, SourceError

log = logging.getLogger("spymaster.eventhubs")

BASIC_TIER_EVENT_BYTES = 262_144
"""Event Hubs Basic tier: the largest event (and batch); Standard and up take 1 MB."""
AMQP_RECORD_BYTES = 250_000
"""Records per event on the AMQP path: under 256 KB with the properties and the AMQP envelope."""
FLUSH_TIMEOUT_S = 60.0


class AmqpMessageSink:
    """A buffered ``EventHubProducerClient`` that counts acknowledged records into ``counts``."""

    def __init__(self, connection: str, hub: str, counts: IngestCounts, *, max_wait_s: float = 0.05) -> None:
        from azure.eventhub import EventHubProducerClient

        self._hub, self._counts, self._connection = hub, counts, connection
        self._records: dict[int, int] = {}
        self._lock = threading.Lock()
        self.failed = 0
        """Messages the service did not accept."""
        self.sent_bytes = 0
        self.largest = 0
        try:
            self._client = EventHubProducerClient.from_connection_string(
                connection, eventhub_name=hub, buffered_mode=True, on_success=self._ok, on_error=self._failed,
                max_wait_time=max_wait_s)
        except ValueError as exc:
            raise ConfigError(f"the Event Hubs connection string is not usable: {exc}") from None
        self._where = self._client._address.hostname  # noqa: SLF001 - for messages only

    def check(self) -> int:
        """The hub's partition count, asked with short retries: a wrong key, a missing hub or an
        unreachable namespace is one :class:`SourceError` sentence in seconds, before any data."""
        from azure.eventhub import EventHubProducerClient

        from connectors.eventhubs_amqp.client import client_options

        probe = EventHubProducerClient.from_connection_string(self._connection, eventhub_name=self._hub,
                                                              **client_options(checking=True))
        try:
            return len(probe.get_partition_ids())
        except Exception as exc:  # noqa: BLE001
            raise SourceError(describe(exc, self._where, self._hub)) from None
        finally:
            probe.close()

    def _ok(self, events: Sequence[Any], _partition: str | None) -> None:
        with self._lock:
            self._counts.published += sum(self._records.pop(id(e), 0) for e in events)

    def _failed(self, events: Sequence[Any], _partition: str | None, error: Exception) -> None:
        with self._lock:
            records = sum(self._records.pop(id(e), 0) for e in events)
            self._counts.faults += records
            self.failed += len(events)
        log.error("%d event(s) (%d records) were not accepted by %s: %s", len(events), records, self._hub, error)

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], records: int) -> None:
        from azure.eventhub import EventData

        event = EventData(value)
        event.properties = {name: raw.decode("utf-8", errors="replace") for name, raw in headers}
        with self._lock:
            self._records[id(event)] = records
        try:
            self._client.send_event(event, partition_key=key.decode())
        except Exception as exc:  # noqa: BLE001 - one sentence: bad key, no hub, unreachable, too large
            with self._lock:
                self._records.pop(id(event), None)
            raise SourceError(describe(exc, self._where, self._hub)) from None
        self.sent_bytes += len(value)
        self.largest = max(self.largest, len(value))

    def flush(self) -> None:
        try:
            self._client.flush(timeout=FLUSH_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001
            raise SourceError(describe(exc, self._where, self._hub)) from None
        with self._lock:
            left = len(self._records)
        if left:
            raise SourceError(f"{left} message(s) to {self._hub} were not acknowledged within {FLUSH_TIMEOUT_S:.0f} s")

    def close(self) -> None:
        self._client.close(flush=False)
