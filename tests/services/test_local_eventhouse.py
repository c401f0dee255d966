"""The local Eventhouse (flows/services/eventhouse.py) driven by the real Kusto SDK clients:
azure-kusto-data's KustoClient for commands and queries, azure-kusto-ingest's streaming and
managed streaming clients for ingestion, all with ``with_no_authentication`` on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat, IngestionMappingKind
from azure.kusto.data.exceptions import KustoApiError, KustoNetworkError
from azure.kusto.ingest import IngestionProperties, KustoStreamingIngestClient, ManagedStreamingIngestClient

from connectors.kusto.script import split_commands
from connectors.kusto.tables import ALL_EVENTHOUSE_TABLES
from flows.services import eventhouse as eventhouse_module
from flows.services.eventhouse import (
    EventhouseServer,
    FaultSettings,
    LocalEventhouse,
    start_local_eventhouse,
)
from operators.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
REAL_SCHEMA = ROOT / "infra" / "fabric" / "eventhouse_schema.kql"
UTC = dt.UTC

MAPPING = json.dumps([
    {"column": "symbol", "path": "$.symbol", "datatype": "string"},
    {"column": "ts", "path": "$.ts", "datatype": "datetime"},
    {"column": "recv", "path": "$.recv_ms", "datatype": "datetime", "transform": "DateTimeFromUnixMilliseconds"},
    {"column": "price", "path": "$.price", "datatype": "real"},
    {"column": "size", "path": "$.size", "datatype": "long"},
    {"column": "aggressor", "path": "$.aggressor", "datatype": "bool"},
    {"column": "venue", "path": "$.meta.venue", "datatype": "string"},
    {"column": "tags", "path": "$.tags", "datatype": "dynamic"},
    {"column": "stream", "path": "$.stream", "datatype": "string"},
    {"column": "position", "path": "$.position", "datatype": "long"},
])

SCRIPT = f"""\
// the tests' schema: one table, its mapping, two policies, a function and a dedup view
.create-merge table Ticks (symbol:string, ts:datetime, recv:datetime, price:real, size:long, aggressor:bool,
    venue:string, tags:dynamic, stream:string, position:long) with (folder = "Tests", docstring = "trades")

.create-or-alter table Ticks ingestion json mapping "TicksMapping" '{MAPPING}'

.alter-merge table Ticks policy retention softdelete = 30d recoverability = disabled

.alter table Ticks policy streamingingestion enable

.create-or-alter function with (folder = "Tests", docstring = "trades above a price") TicksAbove(p:real) {{
    Ticks
    | where price > p
}}

.create-or-alter materialized-view with (backfill = true) TicksDedup on table Ticks {{
    Ticks | summarize take_any(*) by stream, position
}}
"""

TICKS = [
    {"symbol": "ESH4", "ts": "2024-01-02T14:30:00.123456Z", "recv_ms": 1704205800125, "price": 4750.25, "size": 3,
     "aggressor": True, "meta": {"venue": "XCME"}, "tags": ["rth", "open"], "stream": "ESH4|2024-01-02", "position": 1},
    {"symbol": "ESH4", "ts": "2024-01-02T09:30:01-05:00", "recv_ms": 1704205801000, "price": 4750.5, "size": 1,
     "aggressor": False, "meta": {}, "tags": [], "stream": "ESH4|2024-01-02", "position": 2},
    {"symbol": "NQH4", "ts": "2024-01-02T14:30:02Z", "price": 16800.75, "stream": "NQH4|2024-01-02", "position": 1},
]


def multijson(rows: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())


def ticks_properties(mapping: str = "TicksMapping", table: str = "Ticks") -> IngestionProperties:
    return IngestionProperties(database="Spymaster", table=table, data_format=DataFormat.MULTIJSON,
                               ingestion_mapping_reference=mapping)


def apply(client: KustoClient, script: str) -> list[list[list[Any]]]:
    """Every command of ``script`` through /v1/rest/mgmt; the rows each one answered."""
    return [client.execute_mgmt("Spymaster", c).primary_results[0].raw_rows for c in split_commands(script)]


def rows(client: KustoClient, kql: str) -> list[dict[str, Any]]:
    return [r.to_dict() for r in client.execute("Spymaster", kql).primary_results[0]]


def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - loopback
        return dict(json.load(reply))


@pytest.fixture(name="eventhouse")
def fixture_eventhouse() -> Iterator[LocalEventhouse]:
    with LocalEventhouse() as eventhouse:
        yield eventhouse


@pytest.fixture(name="kcsb")
def fixture_kcsb(eventhouse: LocalEventhouse) -> KustoConnectionStringBuilder:
    return KustoConnectionStringBuilder.with_no_authentication(eventhouse.url)


@pytest.fixture(name="client")
def fixture_client(kcsb: KustoConnectionStringBuilder) -> Iterator[KustoClient]:
    with KustoClient(kcsb) as client:
        yield client


@pytest.fixture(name="schema")
def fixture_schema(client: KustoClient) -> None:
    apply(client, SCRIPT)


def test_schema_script_applied_twice_changes_nothing(client: KustoClient) -> None:
    first = apply(client, SCRIPT)
    second = apply(client, SCRIPT)
    assert second == first
    assert len(first) == 6
    shown = {c: client.execute_mgmt("Spymaster", c).primary_results[0].raw_rows
             for c in (".show tables", ".show table Ticks cslschema", ".show functions", ".show materialized-views",
                       ".show table Ticks ingestion json mappings", ".show table Ticks policy retention")}
    assert shown[".show tables"] == [["Ticks", "Spymaster", "Tests", "trades"]]
    assert shown[".show table Ticks cslschema"][0][1] == (
        "symbol:string,ts:datetime,recv:datetime,price:real,size:long,aggressor:bool,venue:string,tags:dynamic,"
        "stream:string,position:long")
    assert [(r[0], r[1], r[3], r[4]) for r in shown[".show functions"]] == [
        ("TicksAbove", "(p:real)", "Tests", "trades above a price")]
    assert [(r[0], r[1], r[2]) for r in shown[".show materialized-views"]] == [
        ("TicksDedup", "Ticks", "Ticks | summarize take_any(*) by stream, position")]
    assert [(r[0], r[1], json.loads(r[2])) for r in shown[".show table Ticks ingestion json mappings"]] == [
        ("TicksMapping", "Json", json.loads(MAPPING))]
    assert shown[".show table Ticks policy retention"][0][2] == "softdelete = 30d recoverability = disabled"


def test_streamed_multijson_rows_come_back_with_exact_values(kcsb: KustoConnectionStringBuilder,
                                                             client: KustoClient, schema: None) -> None:
    with KustoStreamingIngestClient(kcsb) as ingest:
        ingest.ingest_from_stream(multijson(TICKS), ticks_properties())

    got = rows(client, "Ticks | order by stream asc, position asc")

    assert got == [
        {"symbol": "ESH4", "ts": dt.datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC),
         "recv": dt.datetime(2024, 1, 2, 14, 30, 0, 125000, tzinfo=UTC), "price": 4750.25, "size": 3,
         "aggressor": True, "venue": "XCME", "tags": ["rth", "open"], "stream": "ESH4|2024-01-02", "position": 1},
        {"symbol": "ESH4", "ts": dt.datetime(2024, 1, 2, 14, 30, 1, tzinfo=UTC),
         "recv": dt.datetime(2024, 1, 2, 14, 30, 1, tzinfo=UTC), "price": 4750.5, "size": 1,
         "aggressor": False, "venue": None, "tags": [], "stream": "ESH4|2024-01-02", "position": 2},
        {"symbol": "NQH4", "ts": dt.datetime(2024, 1, 2, 14, 30, 2, tzinfo=UTC), "recv": None, "price": 16800.75,
         "size": None, "aggressor": None, "venue": None, "tags": None, "stream": "NQH4|2024-01-02", "position": 1},
    ]


def test_kql_runs_summarize_bin_arg_max_and_join_over_ingested_rows(eventhouse: LocalEventhouse,
                                                                     kcsb: KustoConnectionStringBuilder,
                                                                     client: KustoClient, schema: None) -> None:
    with KustoStreamingIngestClient(kcsb) as ingest:
        ingest.ingest_from_stream(multijson(TICKS), ticks_properties())

    by_minute = rows(client, "Ticks | summarize n = count(), volume = sum(size) by symbol, minute = bin(ts, 1m) "
                             "| order by symbol asc")
    latest = rows(client, "Ticks | summarize arg_max(ts, price) by symbol | order by symbol asc")
    joined = rows(client, "Ticks | join kind=inner (TicksDedup | project stream, position, p2 = price) "
                          "on stream, position | summarize total = sum(p2)")

    assert by_minute == [  # sum() skips nulls, as Kusto's does
        {"symbol": "ESH4", "minute": dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC), "n": 2, "volume": 4},
        {"symbol": "NQH4", "minute": dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC), "n": 1, "volume": 0},
    ]
    assert latest == [{"symbol": "ESH4", "ts": dt.datetime(2024, 1, 2, 14, 30, 1, tzinfo=UTC), "price": 4750.5},
                      {"symbol": "NQH4", "ts": dt.datetime(2024, 1, 2, 14, 30, 2, tzinfo=UTC), "price": 16800.75}]
    assert joined == [{"total": 4750.25 + 4750.5 + 16800.75}]
    assert eventhouse.query("Ticks | count") == [{"Count": 3}]


def test_dedup_view_shows_each_stream_position_once(eventhouse: LocalEventhouse, kcsb: KustoConnectionStringBuilder,
                                                   client: KustoClient, schema: None) -> None:
    resent = [{**TICKS[0], "price": 1.0}, TICKS[1]]  # a crash re-sends rows; the first landing wins
    with KustoStreamingIngestClient(kcsb) as ingest:
        ingest.ingest_from_stream(multijson(TICKS), ticks_properties())
        ingest.ingest_from_stream(multijson(resent), ticks_properties())

    dedup = rows(client, "TicksDedup | order by stream asc, position asc | project stream, position, price")

    assert rows(client, "Ticks | count") == [{"Count": 5}]
    assert dedup == [{"stream": "ESH4|2024-01-02", "position": 1, "price": 4750.25},
                     {"stream": "ESH4|2024-01-02", "position": 2, "price": 4750.5},
                     {"stream": "NQH4|2024-01-02", "position": 1, "price": 16800.75}]
    assert rows(client, "materialized_view('TicksDedup') | count") == [{"Count": 3}]
    assert [c for c in eventhouse.query("TicksDedup | take 1")[0]][:2] == ["stream", "position"]  # keys first


def test_stored_function_is_callable_in_later_queries(kcsb: KustoConnectionStringBuilder, client: KustoClient,
                                                      schema: None) -> None:
    with KustoStreamingIngestClient(kcsb) as ingest:
        ingest.ingest_from_stream(multijson(TICKS), ticks_properties())

    assert rows(client, "TicksAbove(4750.3) | order by price asc | project symbol, price") == [
        {"symbol": "ESH4", "price": 4750.5}, {"symbol": "NQH4", "price": 16800.75}]


def test_unknown_mapping_is_permanent_and_the_managed_client_stops_after_its_attempts(
        eventhouse: LocalEventhouse, kcsb: KustoConnectionStringBuilder, schema: None) -> None:
    with ManagedStreamingIngestClient(kcsb) as managed, pytest.raises(KustoApiError) as raised:
        managed.ingest_from_stream(multijson(TICKS), ticks_properties(mapping="NoSuchMapping"))

    error = raised.value.get_api_error()
    assert error.permanent is True
    assert error.description == "ingestion mapping 'NoSuchMapping' of kind json does not exist for table 'Ticks'"
    stats = eventhouse.stats()
    assert (stats["ingest_requests"], stats["ingest_rejected"], stats["rows_ingested"]) == (3, 3, 0)
    assert stats["queued_ingestion_refused"] == 0  # a permanent error does not fall back to queued


def test_unknown_table_is_a_permanent_error_naming_it(eventhouse: LocalEventhouse,
                                                      kcsb: KustoConnectionStringBuilder, schema: None) -> None:
    with KustoStreamingIngestClient(kcsb) as ingest, pytest.raises(KustoApiError) as raised:
        ingest.ingest_from_stream(multijson(TICKS), ticks_properties(table="Quotes"))

    assert raised.value.get_api_error().permanent is True
    assert raised.value.get_api_error().description == "table 'Quotes' does not exist in database 'Spymaster'"
    assert eventhouse.stats()["ingest_requests"] == 1


def test_managed_client_lands_every_row_through_injected_429_and_500(eventhouse: LocalEventhouse,
                                                                     kcsb: KustoConnectionStringBuilder,
                                                                     schema: None) -> None:
    # seed 0 fails 6 of the 14 requests below and never three in a row, which would exhaust the
    # client's three streaming attempts and send it to the queued fallback (refused here)
    eventhouse.set_faults(FaultSettings(fail_share=0.5, kinds=("429", "500"), seed=0))
    batches = [[{**TICKS[0], "position": 10 * b + i} for i in range(5)] for b in range(8)]

    with ManagedStreamingIngestClient(kcsb) as managed:
        for batch in batches:
            managed.ingest_from_stream(multijson(batch), ticks_properties())

    stats = eventhouse.stats()
    assert eventhouse.query("Ticks | summarize n = count(), d = dcount(position)") == [{"n": 40, "d": 40}]
    assert stats["faults"] == {"429": 4, "500": 2, "reset": 0, "timeout": 0}
    assert (stats["ingest_requests"], stats["ingest_ok"], stats["rows_ingested"]) == (8 + 6, 8, 40)
    assert stats["queued_ingestion_refused"] == 0


def test_reset_is_a_connection_error_and_faults_turn_off_at_run_time(eventhouse: LocalEventhouse,
                                                                     kcsb: KustoConnectionStringBuilder,
                                                                     schema: None) -> None:
    post_json(eventhouse.url + "/spymaster/faults", {"fail_share": 1.0, "kinds": ["reset"]})
    with KustoStreamingIngestClient(kcsb) as ingest:
        with pytest.raises(KustoNetworkError):
            ingest.ingest_from_stream(multijson(TICKS), ticks_properties())
        settings = post_json(eventhouse.url + "/spymaster/faults", {"fail_share": 0.0})
        ingest.ingest_from_stream(multijson(TICKS), ticks_properties())

    with urllib.request.urlopen(eventhouse.url + "/spymaster/stats", timeout=10) as reply:  # noqa: S310
        stats = json.load(reply)
    assert settings == {"fail_share": 0.0, "kinds": ["reset"], "seed": 0, "timeout_s": 60.0}
    assert (stats["faults"]["reset"], stats["ingest_requests"], stats["rows_ingested"]) == (1, 2, 3)


def test_timeout_fault_holds_the_request_past_the_clients_timeout(eventhouse: LocalEventhouse, schema: None) -> None:
    eventhouse.set_faults(FaultSettings(fail_share=1.0, kinds=("timeout",), timeout_s=5.0))
    request = urllib.request.Request(eventhouse.url + "/v1/rest/ingest/Spymaster/Ticks?streamFormat=multijson"
                                     "&mappingName=TicksMapping", multijson(TICKS).getvalue())

    with pytest.raises(TimeoutError):
        urllib.request.urlopen(request, timeout=0.5)  # noqa: S310 - loopback

    assert eventhouse.stats()["faults"]["timeout"] == 1


def test_unknown_command_and_untranslatable_query_are_kusto_errors(client: KustoClient) -> None:
    with pytest.raises(KustoApiError) as command:
        client.execute_mgmt("Spymaster", ".show cluster")
    with pytest.raises(KustoApiError) as query:
        client.execute("Spymaster", "range i from 1 to 3 step 1 | make-series n = count() on i step 1")

    assert str(command.value.get_api_error().description).startswith(
        "the local Eventhouse does not implement the command '.show cluster'")
    assert "unsupported KQL construct 'MakeSeriesOperator'" in str(query.value.get_api_error().description)


def test_queued_ingestion_is_refused_loudly(eventhouse: LocalEventhouse, client: KustoClient) -> None:
    with pytest.raises(KustoApiError) as raised:
        client.execute_mgmt("NetDefaultDB", ".get ingestion resources")

    assert "queued ingestion is not available" in str(raised.value.get_api_error().description)
    # transient, so a caller that retries (the flow's sink) streams again instead of stopping
    assert raised.value.get_api_error().permanent is False
    assert eventhouse.stats()["queued_ingestion_refused"] == 1


def test_catalog_and_rows_survive_a_restart_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "eventhouse.duckdb"
    with LocalEventhouse(db_path=path) as first:
        first.apply_script(SCRIPT)
        kcsb = KustoConnectionStringBuilder.with_no_authentication(first.url)
        with KustoStreamingIngestClient(kcsb) as ingest:
            ingest.ingest_from_stream(multijson(TICKS), ticks_properties())

    with LocalEventhouse(db_path=path) as second:
        kcsb = KustoConnectionStringBuilder.with_no_authentication(second.url)
        with KustoStreamingIngestClient(kcsb) as ingest:  # the mapping is still there
            ingest.ingest_from_stream(multijson(TICKS[:1]), ticks_properties())
        assert second.query("TicksAbove(0.0) | count") == [{"Count": 4}]
        assert second.query("TicksDedup | count") == [{"Count": 3}]
        assert [r["Name"] for r in second.command(".show materialized-views")] == ["TicksDedup"]


def test_only_loopback_may_be_bound() -> None:
    with pytest.raises(ConfigError, match="127.0.0.1 only"):
        EventhouseServer(host="0.0.0.0")  # noqa: S104 - the point of the test


@pytest.mark.integration
def test_subprocess_answers_and_is_stopped_by_pid(tmp_path: Path) -> None:
    faults = FaultSettings(fail_share=0.25, kinds=("500", "reset"), seed=3)
    with start_local_eventhouse(log_path=tmp_path / "eventhouse.log", faults=faults) as process:
        kcsb = KustoConnectionStringBuilder.with_no_authentication(process.url)
        with KustoClient(kcsb) as client:
            version = client.execute_mgmt("Spymaster", ".show version").primary_results[0].raw_rows
            answer = rows(client, "print x = 41 + 1")
        with urllib.request.urlopen(process.url + "/spymaster/stats", timeout=10) as reply:  # noqa: S310
            settings = json.load(reply)["fault_settings"]
        pid = process.pid

    assert version[0][2] == "Engine"
    assert answer == [{"x": 42}]
    assert settings == {"fail_share": 0.25, "kinds": ["500", "reset"], "seed": 3, "timeout_s": 60.0}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.integration
def test_acknowledgement_journal_records_each_request_in_order(tmp_path: Path) -> None:
    """Started with --journal, the Eventhouse says when each row's request was acknowledged: what
    the live bench measures publish -> ingest acknowledgement from. Without it, the route says so."""
    with start_local_eventhouse(log_path=tmp_path / "eventhouse.log", journal=True) as process:
        kcsb = KustoConnectionStringBuilder.with_no_authentication(process.url)
        with KustoClient(kcsb) as client:
            apply(client, SCRIPT)
        with KustoStreamingIngestClient(kcsb) as ingest:
            ingest.ingest_from_stream(multijson(TICKS[:2]), ticks_properties())
            ingest.ingest_from_stream(multijson(TICKS[2:]), ticks_properties())
        with urllib.request.urlopen(process.url + "/spymaster/acks?table=Ticks", timeout=10) as reply:  # noqa: S310
            acks = json.load(reply)
        with urllib.request.urlopen(process.url + "/spymaster/acks?table=Other", timeout=10) as reply:  # noqa: S310
            other = json.load(reply)

    assert acks["stream"] == [t["stream"] for t in TICKS]
    assert acks["position"] == [t["position"] for t in TICKS]
    first, second = acks["acked_ns"][0], acks["acked_ns"][2]
    assert acks["acked_ns"] == [first, first, second]  # one time per request
    assert first <= second
    assert other == {"stream": [], "position": [], "acked_ns": []}
    with LocalEventhouse() as plain, pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(plain.url + "/spymaster/acks?table=Ticks", timeout=10)  # noqa: S310


@pytest.mark.skipif(not REAL_SCHEMA.exists(), reason=f"{REAL_SCHEMA.relative_to(ROOT)} is not written yet")
def test_the_real_schema_script_applies_twice_and_makes_every_eventhouse_table(client: KustoClient) -> None:
    script = REAL_SCHEMA.read_text()

    first = apply(client, script)
    second = apply(client, script)

    assert second == first
    tables = {r[0] for r in client.execute_mgmt("Spymaster", ".show tables").primary_results[0].raw_rows}
    assert tables == {t.name for t in ALL_EVENTHOUSE_TABLES}
    for table in ALL_EVENTHOUSE_TABLES:
        schema = client.execute_mgmt("Spymaster", f".show table {table.name} cslschema").primary_results[0].raw_rows
        assert schema[0][1] == ",".join(f"{c}:{t}" for c, t in table.columns), table.name
        mappings = client.execute_mgmt("Spymaster", f".show table {table.name} ingestion json mappings")
        assert [r[0] for r in mappings.primary_results[0].raw_rows] == [table.mapping]
    views = client.execute_mgmt("Spymaster", ".show materialized-views").primary_results[0].raw_rows
    assert {r[0]: r[1] for r in views} == {t.dedup_view: t.name for t in ALL_EVENTHOUSE_TABLES}


# ---------------------------------------------------------------------------------------------
# Columnar ingestion (Parquet, and MULTIJSON pyarrow.json can read) lands what the row path lands
# ---------------------------------------------------------------------------------------------

ALL_KINDS = ("name:string, ts:datetime, price:real, size:long, big:long, n:int, flag:bool, tags:dynamic, "
             "ids:dynamic, labels:dynamic, amount:decimal, id:guid, span:timespan, position:long")
KIND_COLUMNS = [c.split(":")[0].strip() for c in ALL_KINDS.split(",")]


def kinds_script(*tables: str) -> str:
    """Tables of ALL_KINDS, each with a json and a parquet mapping reading every column from ``$.column``."""
    entries = [{"column": c, "path": f"$['{c}']" if c == "amount" else f"$.{c}"} for c in KIND_COLUMNS]
    verbatim = "@'" + json.dumps(entries).replace("'", "''") + "'"
    return "\n\n".join(f".create table {t} ({ALL_KINDS})\n\n"
                       f".create table {t} ingestion json mapping \"{t}Json\" {verbatim}\n\n"
                       f".create table {t} ingestion parquet mapping \"{t}Parquet\" {verbatim}"
                       for t in tables)


GUID = "6f1c2a52-6b7e-4d6a-9a43-3c1d8e1f0b7a"
KIND_ROWS: list[dict[str, Any]] = [
    {"name": "ESH4", "ts": dt.datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC), "price": 4750.25, "size": 3,
     "big": 2**53 + 1, "n": 7, "flag": True, "tags": ["a", "b"], "ids": [1, 2**60], "labels": ["é", "x"],
     "amount": "1.25", "id": GUID, "span": "01:02:03.5", "position": 1},
    {"name": 'quote "q" and \\ back', "ts": None, "price": float("nan"), "size": None, "big": -(2**62), "n": -5,
     "flag": False, "tags": [], "ids": [], "labels": [], "amount": None, "id": None, "span": None, "position": 2},
    {"name": None, "ts": dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "price": None, "size": 0,
     "big": None, "n": None, "flag": None, "tags": None, "ids": None, "labels": None, "amount": "-0.5",
     "id": GUID.upper(), "span": "-1.00:00:01", "position": 3},
    {"name": "ü", "ts": dt.datetime(2024, 1, 2, 9, 30, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
     "price": -0.0, "size": -(2**63), "big": 2**63 - 1, "n": 2**31 - 1, "flag": True, "tags": ['q"\\', None, ""],
     "ids": [None, -3], "labels": ["tab\there"], "amount": "0", "id": "not a guid", "span": "bad", "position": 4},
]


def kinds_multijson(rows: list[dict[str, Any]]) -> bytes:
    """NaN as the bare ``NaN`` Python's json writes (and reads)."""
    return "\n".join(json.dumps({k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in r.items()})
                     for r in rows).encode()


def kinds_parquet(rows: list[dict[str, Any]]) -> bytes:
    """The flow's Parquet: snappy, timestamp[us, UTC], list<string> for dynamic, and so on."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"name": pa.string(), "ts": pa.timestamp("us", tz="UTC"), "price": pa.float64(), "size": pa.int64(),
             "big": pa.int64(), "n": pa.int32(), "flag": pa.bool_(), "tags": pa.list_(pa.string()),
             "ids": pa.list_(pa.int64()), "labels": pa.list_(pa.string()), "amount": pa.string(), "id": pa.string(),
             "span": pa.string(), "position": pa.int64()}
    table = pa.table({c: pa.array([r[c] for r in rows], type=t) for c, t in types.items()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes()


def stored(server: EventhouseServer, table: str) -> list[tuple[Any, ...]]:
    """The rows as DuckDB holds them (dynamic as its stored text), NaN made comparable."""
    return [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in server.sql(f'SELECT * FROM "{table}" ORDER BY position')]


def queried(server: EventhouseServer, table: str) -> list[list[Any]]:
    """The rows a KQL query answers, NaN made comparable."""
    result = server.query(f"{table} | order by position asc")
    return [["NaN" if isinstance(v, float) and math.isnan(v) else v for v in row] for row in result.rows]


@pytest.fixture(name="server")
def fixture_server() -> Iterator[EventhouseServer]:
    server = EventhouseServer()
    thread = threading.Thread(target=server.serve_forever, name="test-eventhouse", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=10)
    server.close()


@pytest.fixture(name="paths")
def fixture_paths(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(format, columnar?) of each ingest request; MULTIJSON is made to take the row path."""
    taken: list[tuple[str, bool]] = []
    columnar_batch = eventhouse_module._columnar_batch

    def spy(kind: str, *args: Any) -> Any:
        batch = None if kind == "json" else columnar_batch(kind, *args)
        taken.append((kind, batch is not None))
        return batch

    monkeypatch.setattr(eventhouse_module, "_columnar_batch", spy)
    return taken


def test_parquet_columnar_lands_what_multijson_row_path_lands(server: EventhouseServer,
                                                               paths: list[tuple[str, bool]]) -> None:
    server.apply_script(kinds_script("FromJson", "FromParquet"))
    kcsb = KustoConnectionStringBuilder.with_no_authentication(server.url)

    with KustoStreamingIngestClient(kcsb) as ingest:
        ingest.ingest_from_stream(io.BytesIO(kinds_multijson(KIND_ROWS)), IngestionProperties(
            database="Spymaster", table="FromJson", data_format=DataFormat.MULTIJSON,
            ingestion_mapping_reference="FromJsonJson", ingestion_mapping_kind=IngestionMappingKind.JSON))
        ingest.ingest_from_stream(io.BytesIO(kinds_parquet(KIND_ROWS)), IngestionProperties(
            database="Spymaster", table="FromParquet", data_format=DataFormat.PARQUET,
            ingestion_mapping_reference="FromParquetParquet", ingestion_mapping_kind=IngestionMappingKind.PARQUET))

    assert paths == [("json", False), ("parquet", True)]
    from_json, from_parquet = stored(server, "FromJson"), stored(server, "FromParquet")
    assert len(from_json) == len(KIND_ROWS)
    for row_path, columnar in zip(from_json, from_parquet, strict=True):
        assert dict(zip(KIND_COLUMNS, columnar, strict=True)) == dict(zip(KIND_COLUMNS, row_path, strict=True))
    assert queried(server, "FromParquet") == queried(server, "FromJson")
    first, second, third, fourth = (dict(zip(KIND_COLUMNS, r, strict=True)) for r in from_parquet)
    assert (first["ts"], first["big"], first["tags"], first["ids"], first["labels"]) == (
        dt.datetime(2024, 1, 2, 14, 30, 0, 123456), 2**53 + 1, '["a","b"]', "[1,1152921504606846976]",
        '["\\u00e9","x"]')
    assert (second["ts"], second["price"], second["tags"], second["size"]) == (None, "NaN", "[]", None)
    assert (third["price"], third["tags"], third["flag"]) == (None, None, None)
    assert (fourth["ts"], fourth["tags"], fourth["ids"], fourth["id"]) == (
        dt.datetime(2024, 1, 2, 14, 30, 1), '["q\\"\\\\",null,""]', "[null,-3]", None)


def test_parquet_columnar_lands_what_the_row_path_lands_for_other_arrow_types(server: EventhouseServer,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ns_utc, ny = pa.timestamp("ns", tz="UTC"), pa.timestamp("s", tz="America/New_York")
    source = {  # column: (Kusto type, Arrow values)
        "long_i32": ("long", pa.array([1, None, -7, 2**31 - 1], pa.int32())),
        "long_f64": ("long", pa.array([3.0, 2.5, float("nan"), None])),
        "long_u64": ("long", pa.array([0, 2**63 - 1, None, 5], pa.uint64())),
        "long_bool": ("long", pa.array([True, False, None, True])),
        "int_i64": ("int", pa.array([1, 2**31, -(2**31), None], pa.int64())),
        "real_i64": ("real", pa.array([2**53 + 1, -1, None, 2**63 - 1], pa.int64())),
        "real_bool": ("real", pa.array([True, False, None, True])),
        "real_f32": ("real", pa.array([0.1, float("inf"), None, -0.0], pa.float32())),
        "bool_i64": ("bool", pa.array([0, 2, None, -1], pa.int64())),
        "str_dict": ("string", pa.array(["x", "y", None, "x"]).dictionary_encode()),
        "str_i64": ("string", pa.array([5, None, -1, 0], pa.int64())),
        "str_large": ("string", pa.array(["é", "", None, "z"], pa.large_string())),
        "ts_ns": ("datetime", pa.array([1704205800123456789, None, 0, 999], ns_utc)),
        "ts_ns_neg": ("datetime", pa.array([-1500, 1, None, -1000], pa.timestamp("ns"))),
        "ts_ny": ("datetime", pa.array([1704205800, None, 0, -86400], ny)),
        "ts_ms": ("datetime", pa.array([1704205800123, None, -1, 0], pa.timestamp("ms"))),
        "ts_date": ("datetime", pa.array([dt.date(2024, 1, 2), None, dt.date(1970, 1, 1), dt.date(2000, 2, 29)])),
        "ts_iso": ("datetime", pa.array(["2024-01-02T14:30:00.1234567Z", "2024-01-02 09:30:01-05:00", None,
                                         "1969-12-31T23:59:59.9999995Z"])),
        "ts_iso_odd": ("datetime", pa.array(["2024-02-30T00:00:00Z", "2024-01-02", " 2024-01-02T01:02:03 ", "x"])),
        "ts_unix_ms": ("datetime", pa.array([1704205800125, None, -1, 0], pa.int64())),
        "dyn_large": ("dynamic", pa.array([["a"], [], None, ["b", None]], pa.large_list(pa.large_string()))),
        "dyn_str": ("dynamic", pa.array(['say "hi"', None, "", "\\"])),
        "dyn_int": ("dynamic", pa.array([1, None, -2**62, 0])),
        "dyn_bools": ("dynamic", pa.array([[True], [False, None], None, []])),
        "dyn_floats": ("dynamic", pa.array([[1.0, 0.5], [], None, [float("nan")]])),
        "dyn_struct": ("dynamic", pa.array([{"k": 1, "v": "x"}, None, {"k": None, "v": "é"}, {"k": 2, "v": None}])),
        "amount": ("decimal", pa.array([0.1, None, 1e-7, 2.5])),
        "span": ("timespan", pa.array([dt.timedelta(seconds=1.5), None, dt.timedelta(days=-1), dt.timedelta(0)])),
        "id": ("guid", pa.array([GUID, None, "nope", GUID.upper()])),
        "position": ("long", pa.array([1, 2, 3, 4])),
    }
    table = pa.table({c: values for c, (_, values) in source.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    columns = ", ".join(f"{c}:{kind}" for c, (kind, _) in source.items())
    entries = [{"column": c, "path": f"$.{c}"} for c in source if c != "ts_unix_ms"]
    entries += [{"column": "ts_unix_ms", "path": "$.ts_unix_ms", "transform": "DateTimeFromUnixMilliseconds"},
                {"column": "absent", "path": "$.absent"}, {"column": "constant", "ConstValue": "fixed"}]
    server.apply_script("\n\n".join(f".create table {t} ({columns}, absent:string, constant:string)\n\n"
                                    f".create table {t} ingestion parquet mapping \"M\" '{json.dumps(entries)}'"
                                    for t in ("Columnar", "Rows")))

    server.ingest("Spymaster", "Columnar", "parquet", "M", sink.getvalue())
    monkeypatch.setattr(eventhouse_module, "_columnar_batch", lambda *args: None)
    server.ingest("Spymaster", "Rows", "parquet", "M", sink.getvalue())

    names = [*source, "absent", "constant"]
    columnar, rows_path = stored(server, "Columnar"), stored(server, "Rows")
    assert len(columnar) == 4
    for got, want in zip(columnar, rows_path, strict=True):
        assert dict(zip(names, got, strict=True)) == dict(zip(names, want, strict=True))
    assert columnar[0][names.index("ts_ns")] == dt.datetime(2024, 1, 2, 14, 30, 0, 123456)
    assert [r[names.index("constant")] for r in columnar] == ["fixed"] * 4


def test_arrow_converts_the_flows_column_types_without_python() -> None:
    import pyarrow as pa

    fast = {"string": pa.array(["a", None]), "long": pa.array([1, None]), "int": pa.array([1, None], pa.int32()),
            "real": pa.array([0.5, None]), "bool": pa.array([True, None]),
            "datetime": pa.array([0, None], pa.timestamp("us", tz="UTC")),
            "dynamic": pa.array([["a"], None], pa.list_(pa.string()))}
    for kind, values in fast.items():
        target = eventhouse_module._arrow_type(kind)
        converted = eventhouse_module._fast_column(kind, pa.chunked_array([values]), target)
        assert converted is not None, kind
        assert converted.type == target, kind


def test_multijson_read_by_pyarrow_lands_what_the_row_path_lands(server: EventhouseServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [  # the flow's 7-digit times, offsets, naive times, NaN and Infinity, unmapped fields of any type
        '{"name":"a","ts":"2024-01-02T14:30:00.1234567Z","price":NaN,"size":1,"big":9007199254740993,"n":1,'
        '"flag":true,"tags":["x","y\\"z"],"ids":["1","2"],"labels":["\\u00e9"],"amount":"1.50","id":"' + GUID + '",'
        '"span":"00:00:01","position":1,"extra":{"deep":[1,{"x":null}]}}',
        '{"name":"\\u00fc","ts":"2024-01-02T09:30:01-05:00","price":Infinity,"size":null,"tags":[],"ids":[],'
        '"labels":[],"position":2,"extra":5}',
        '{"ts":"2024-01-02 14:30:02","price":-1e-300,"big":-9223372036854775808,"n":2147483648,"flag":false,'
        '"tags":null,"ids":[null],"position":3}',
        '{"ts":"1969-12-31T23:59:59.9999995Z","tags":["",null],"position":4}',
    ]
    body = "\n".join(lines).encode()
    not_plain = body + b'\n{"name":5,"ids":[5],"position":5}'  # numbers where pyarrow.json is told strings
    server.apply_script(kinds_script("JsonArrow", "JsonRows", "OddArrow", "OddRows"))
    mapping = server.mappings[("JsonArrow", "json", "JsonArrowJson")]
    kinds = [dict(server.require_table("JsonArrow"))[m.column] for m in mapping]
    assert eventhouse_module._json_table(body, mapping, kinds) is not None
    assert eventhouse_module._json_table(not_plain, mapping, kinds) is None

    server.ingest("Spymaster", "JsonArrow", "multijson", "JsonArrowJson", body)
    server.ingest("Spymaster", "OddArrow", "multijson", "OddArrowJson", not_plain)
    monkeypatch.setattr(eventhouse_module, "_columnar_batch", lambda *args: None)
    server.ingest("Spymaster", "JsonRows", "multijson", "JsonRowsJson", body)
    server.ingest("Spymaster", "OddRows", "multijson", "OddRowsJson", not_plain)

    assert len(stored(server, "JsonArrow")) == 4
    assert stored(server, "JsonArrow") == stored(server, "JsonRows")
    assert len(stored(server, "OddArrow")) == 5
    assert stored(server, "OddArrow") == stored(server, "OddRows")
    assert stored(server, "JsonArrow")[0][KIND_COLUMNS.index("ts")] == dt.datetime(2024, 1, 2, 14, 30, 0, 123456)
