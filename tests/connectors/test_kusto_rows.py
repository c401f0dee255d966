"""Lake rows → Eventhouse rows and request bodies; the ``[eventhouse]`` settings."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from connectors.delta.tables import GOLD_FEATURE_SERIES, GOLD_INFERENCE_SCORES, SILVER_SESSION_LEVELS
from connectors.kusto.client import requests
from connectors.kusto.config import EventhouseConfig
from connectors.kusto.rows import features_rows, levels_rows, multijson, scores_rows
from connectors.kusto.tables import ALL_EVENTHOUSE_TABLES, FEATURES, LEVELS, SCORES
from operators.errors import ConfigError

T0 = 1_762_246_805_000_000_000  # 2025-11-04 09:00:05 UTC


def _series(n: int) -> pa.Table:
    rows: dict[str, list[Any]] = {name: [None] * n for name in GOLD_FEATURE_SERIES.schema.names}
    rows |= {"contract_id": ["ESZ5"] * n, "instrument_id": [42140864] * n, "underlier": ["ES"] * n,
             "session_date": [date(2025, 11, 4)] * n, "ts": [T0 + i * 5_000_000_000 for i in range(n)],
             "mid_close": [6831.875 + i for i in range(n)], "vwap": [math.nan] * n, "volume": list(range(n))}
    return pa.Table.from_pydict(rows, schema=GOLD_FEATURE_SERIES.schema)


def test_features_keep_values_and_take_contract_session_and_time_as_identity() -> None:
    rows = features_rows(_series(3))
    assert rows.column_names == list(FEATURES.column_names)
    got = rows.to_pylist()
    assert [r["stream"] for r in got] == ["ESZ5|2025-11-04"] * 3
    assert [r["position"] for r in got] == [T0, T0 + 5_000_000_000, T0 + 10_000_000_000]
    assert got[1]["mid_close"] == 6832.875 and got[2]["volume"] == 2
    lines = [json.loads(line) for line in multijson(rows).decode().splitlines()]
    assert lines[0]["ts"] == "2025-11-04T09:00:05.0000000Z"
    assert lines[0]["session_date"] == "2025-11-04T00:00:00.0000000Z"
    assert lines[0]["vwap"] is None  # NaN: JSON has none
    assert list(lines[0]) == list(FEATURES.column_names)


def test_levels_prices_in_points_and_positions_in_level_order() -> None:
    levels = pa.Table.from_pylist([
        {"contract_id": "ESZ5", "instrument_id": 1, "underlier": "ES", "session_date": date(2025, 11, 4),
         "level_type": t, "price": 6_830_250_000_000 if t != "ORL" else None,
         "known_ts": T0 if t != "ORL" else None, "status": "ok" if t != "ORL" else "missing",
         "detail": "", "prior_session_date": date(2025, 11, 3)}
        for t in ("ORL", "PDH", "PML")], schema=SILVER_SESSION_LEVELS.schema)
    rows = levels_rows(levels)
    assert rows.column_names == list(LEVELS.column_names)
    got = rows.to_pylist()
    assert [r["position"] for r in got] == [5, 0, 3]
    assert got[1]["price"] == 6830.25 and got[0]["price"] is None


def test_scores_carry_neighbour_ids_as_a_list_and_episode_model_as_stream() -> None:
    row: dict[str, Any] = {name: None for name in GOLD_INFERENCE_SCORES.schema.names}
    row |= {"episode_id": "e1", "model_id": "ES_MODEL", "model_version": "3", "contract_id": "ESZ5",
            "instrument_id": 1, "underlier": "ES", "session_date": date(2025, 11, 4), "vector_time": T0 + 123,
            "p_break": 0.5, "nn_episode_ids": ["a", "b"], "status": "ok", "batch_close_ts": T0}
    rows = scores_rows(pa.Table.from_pylist([row], schema=GOLD_INFERENCE_SCORES.schema))
    assert rows.column_names == list(SCORES.column_names)
    line = json.loads(multijson(rows))
    assert line["nn_episode_ids"] == ["a", "b"]
    assert (line["stream"], line["position"]) == ("e1|ES_MODEL", T0 + 123)
    assert line["vector_time"] == "2025-11-04T09:00:05.0000001Z"  # Kusto keeps 100 ns ticks


def test_requests_stay_under_the_limit_and_carry_every_row_once() -> None:

    import pyarrow.parquet as pq

    rows = features_rows(_series(20_000))
    bodies = requests(rows, 64 * 1024, multijson)
    assert len(bodies) > 3
    assert all(len(body) <= 64 * 1024 for body, _ in bodies)
    positions = [json.loads(line)["position"] for body, _ in bodies for line in body.decode().splitlines()]
    assert positions == rows["position"].to_pylist()
    parquet = requests(rows, 64 * 1024)  # the default: Parquet, many times smaller
    assert 1 < len(parquet) < len(bodies) / 8
    assert all(len(body) <= 64 * 1024 for body, _ in parquet)
    back = pa.concat_tables([pq.read_table(pa.BufferReader(body)) for body, _ in parquet])
    assert back["position"].to_pylist() == rows["position"].to_pylist()
    assert back.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert back["ts"].cast(pa.int64()).to_pylist()[:2] == [T0 // 1000, T0 // 1000 + 5_000_000]


def test_every_table_ends_with_its_identity() -> None:
    for table in ALL_EVENTHOUSE_TABLES:
        assert table.column_names[-2:] == ("stream", "position")
        assert len(set(table.column_names)) == len(table.column_names)


def test_settings_from_the_environment() -> None:
    env = {"SPYMASTER_EVENTHOUSE": "https://abc.z1.kusto.fabric.microsoft.com/", "SPYMASTER_EVENTHOUSE_DB": "Mkt",
           "SPYMASTER_EVENTHOUSE_TABLES": "Scores,Radar", "AZURE_CLIENT_ID": "id", "AZURE_TENANT_ID": "t",
           "AZURE_CLIENT_SECRET": "s3cret", "SPYMASTER_EVENTHOUSE_AUTH": "app"}
    cfg = EventhouseConfig.from_settings({}, env, on_topic=True)
    assert cfg.enabled and cfg.tables == ("Scores", "Radar") and cfg.database == "Mkt"
    assert cfg.ingest == "https://ingest-abc.z1.kusto.fabric.microsoft.com"
    assert cfg.flush_s == 1.0
    assert "s3cret" not in repr(cfg)
    assert EventhouseConfig.from_settings({}, {"SPYMASTER_EVENTHOUSE": "http://127.0.0.1:9"}, on_topic=False).flush_s \
        == 30.0


@pytest.mark.parametrize(("settings", "message"), [
    ({"SPYMASTER_EVENTHOUSE": "https://abc.kusto.fabric.microsoft.com", "SPYMASTER_EVENTHOUSE_AUTH": "none"},
     "only for a local Eventhouse"),
    ({"SPYMASTER_EVENTHOUSE": "https://abc.kusto.fabric.microsoft.com", "SPYMASTER_EVENTHOUSE_AUTH": "app"},
     "AZURE_CLIENT_SECRET"),
    ({"SPYMASTER_EVENTHOUSE": "https://a", "SPYMASTER_EVENTHOUSE_TABLES": "Features,Trades"}, "Trades"),
    ({"SPYMASTER_EVENTHOUSE": "kusto://a"}, "http(s) URI"),
])
def test_settings_that_cannot_work_are_refused_in_one_sentence(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EventhouseConfig.from_settings({}, settings, on_topic=False)


def test_a_secret_in_the_toml_file_is_refused() -> None:
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        EventhouseConfig.from_settings({"client_secret": "x"}, {}, on_topic=False)


def test_loopback_keeps_one_uri_for_query_and_ingest() -> None:
    cfg = EventhouseConfig.from_settings({}, {"SPYMASTER_EVENTHOUSE": "http://127.0.0.1:8082",
                                              "SPYMASTER_EVENTHOUSE_AUTH": "none"}, on_topic=False)
    assert cfg.ingest == "http://127.0.0.1:8082"
    assert np.isfinite(cfg.flush_s)


def test_an_empty_gex_summary_gives_an_empty_gex_table_with_its_types() -> None:
    from connectors.delta.tables import SILVER_GEX_SUMMARY_1S
    from connectors.kusto.rows import gex_rows
    from connectors.kusto.tables import GEX

    rows = gex_rows(SILVER_GEX_SUMMARY_1S.schema.empty_table())
    assert rows.num_rows == 0 and rows.column_names == list(GEX.column_names)
    assert rows.schema.field("stream").type == pa.string() and rows.schema.field("ts").type.tz == "UTC"
