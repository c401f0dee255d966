"""Talking to the Eventhouse with Microsoft's SDKs: sign-in, queries and commands, and shipping rows.

Rows go through ``ManagedStreamingIngestClient`` (streaming first; queued for payloads over
4 MB or after repeated transient failures) with the table's stored mapping, as Parquet by
default: Arrow encodes it in C++ off the GIL, so the flow's worker hardly notices the sink
(MULTIJSON, the other choice, is built row by row in Python and costs ~80 times more), and a
request holds ~80 times more rows. Both keep ``dynamic`` columns (the neighbours' episode ids)
whole, where CSV would flatten them. Parquet times are microseconds (Kusto keeps 100 ns ticks;
the exact nanoseconds stay in ``position``). ``Shipper.send`` cuts a batch into requests of at
most ``max_request_bytes`` so every request can stream, and retries what is transient
(throttling, 5xx, timeouts, resets) with exponential backoff; a permanent error (the service
says so: an unknown table or mapping, a schema that does not fit) is raised at once as
``EventhouseError``, one sentence naming the table and the fix.
"""

from __future__ import annotations

import io
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat, IngestionMappingKind
from azure.kusto.data.exceptions import KustoApiError, KustoError, KustoServiceError
from azure.kusto.ingest import IngestionProperties, ManagedStreamingIngestClient

from connectors.kusto.config import EventhouseConfig
from connectors.kusto.rows import multijson
from connectors.kusto.tables import EventhouseTable
from operators.errors import SinkError

log = logging.getLogger("spymaster.eventhouse")

_BACKOFF_FIRST_S = 0.25
_BACKOFF_MAX_S = 30.0


class EventhouseError(SinkError):
    """The Eventhouse refused rows for good; the message names the table and the fix."""


def connection(cfg: EventhouseConfig, uri: str | None = None) -> KustoConnectionStringBuilder:
    """The SDK's connection for ``uri`` (the query URI by default) in ``cfg.auth`` mode."""
    target = uri or cfg.uri
    if cfg.auth == "none":
        return KustoConnectionStringBuilder.with_no_authentication(target)
    if cfg.auth == "app":
        return KustoConnectionStringBuilder.with_aad_application_key_authentication(
            target, cfg.client_id, cfg.client_secret, cfg.tenant_id)
    from azure.identity import DefaultAzureCredential

    return KustoConnectionStringBuilder.with_azure_token_credential(target, DefaultAzureCredential())


def query_client(cfg: EventhouseConfig) -> KustoClient:
    return KustoClient(connection(cfg))


def ingest_client(cfg: EventhouseConfig) -> ManagedStreamingIngestClient:
    client = ManagedStreamingIngestClient(connection(cfg), connection(cfg, cfg.ingest))
    client._set_retry_settings(max_seconds_per_retry=2.0, num_of_attempts=3)  # our own backoff follows
    return client


def is_permanent(err: BaseException) -> bool:
    """The service marked the error permanent (Kusto's ``@permanent``), or it is a 4xx other than 429."""
    if isinstance(err, KustoApiError):
        api = err.get_api_error()
        if api.permanent:
            return True
    status = getattr(getattr(err, "http_response", None), "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def refusal(table: EventhouseTable, database: str, err: BaseException) -> EventhouseError:
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
    return EventhouseError(
        f"the Eventhouse refused rows for table {table.name} in database {database} ({first}); apply the schema "
        f"with `spymaster eventhouse apply` so the table and its mapping {table.mapping} match this version")


@dataclass
class ShipStats:
    rows: int = 0
    requests: int = 0
    retries: int = 0
    bytes: int = 0


class Shipper:
    """Sends one Eventhouse table's rows; thread-safe counters in ``stats``."""

    def __init__(self, cfg: EventhouseConfig, table: EventhouseTable,
                 client: ManagedStreamingIngestClient | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self._cfg, self.table = cfg, table
        self._client = client or ingest_client(cfg)
        parquet = cfg.format == "parquet"
        self._props = IngestionProperties(
            database=cfg.database, table=table.name,
            data_format=DataFormat.PARQUET if parquet else DataFormat.MULTIJSON,
            ingestion_mapping_reference=table.parquet_mapping if parquet else table.mapping,
            ingestion_mapping_kind=IngestionMappingKind.PARQUET if parquet else IngestionMappingKind.JSON)
        self._encode = parquet_body if parquet else multijson
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.stats = ShipStats()

    def stop(self) -> None:
        """Ends any backoff in progress; ``send`` then raises ``InterruptedError`` for what is unsent."""
        self._stop.set()

    def close(self) -> None:
        self._client.close()

    def send(self, rows: pa.Table) -> None:
        """Every row acknowledged, or ``EventhouseError`` (permanent), or ``InterruptedError`` (stopped)."""
        for body, n in requests(rows, self._cfg.max_request_bytes, self._encode):
            self._send_one(body, n)

    def _send_one(self, body: bytes, n: int) -> None:
        delay = _BACKOFF_FIRST_S
        while True:
            if self._stop.is_set():
                raise InterruptedError
            try:
                self._client.ingest_from_stream(io.BytesIO(body), self._props)
                self.stats.rows += n
                self.stats.requests += 1
                self.stats.bytes += len(body)
                return
            except (KustoError, OSError) as err:  # OSError: requests' connection errors and timeouts
                if isinstance(err, KustoServiceError | KustoApiError) and is_permanent(err):
                    raise refusal(self.table, self._cfg.database, err) from None
                self.stats.retries += 1
                log.warning("Eventhouse %s: %s; retrying in %.1f s", self.table.name,
                            str(err).splitlines()[0][:200] if str(err) else type(err).__name__, delay)
            self._sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, _BACKOFF_MAX_S)


def parquet_body(rows: pa.Table) -> bytes:
    """One Parquet file (snappy) of ``rows``, times as microseconds."""
    columns = [rows[n].cast(pa.timestamp("us", tz="UTC"), safe=False)  # truncates below the microsecond
               if pa.types.is_timestamp(rows.schema.field(n).type) else rows[n] for n in rows.column_names]
    sink = pa.BufferOutputStream()  # Arrow's own buffer: no Python file object for Arrow threads to call
    pq.write_table(pa.table(columns, names=rows.column_names), sink, compression="snappy")
    return sink.getvalue().to_pybytes()


def requests(rows: pa.Table, max_bytes: int,
             encode: Callable[[pa.Table], bytes] = parquet_body) -> list[tuple[bytes, int]]:
    """``rows`` as request bodies of at most ``max_bytes`` each (a single row larger than that
    goes alone: the managed client queues it)."""
    out: list[tuple[bytes, int]] = []
    start, n = 0, rows.num_rows
    step = max(1, n)
    while start < n:
        chunk = rows.slice(start, step)
        body = encode(chunk)
        if len(body) > max_bytes and step > 1:
            step = max(1, int(step * max_bytes / len(body) * 0.9))
            continue
        out.append((body, chunk.num_rows))
        start += chunk.num_rows
    return out
