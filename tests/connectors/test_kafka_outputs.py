"""Output topics: the rows of gold.feature_series and gold.inference_scores, as JSON, on a real broker."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from connectors.delta.tables import ALL_TABLES, GOLD_FEATURE_SERIES, GOLD_INFERENCE_SCORES
from connectors.kafka.outputs import OutputConfig, rows_as_json
from flows.app import prepare
from flows.config import DateRange, load_config
from flows.runner import run_flow
from operators.errors import ConfigError
from tests.conftest import app_config
from tests.flows.conftest import NO_REGISTRY
from tests.typed import headers_of, present

TABLES = {t.name for t in ALL_TABLES}


def _consume_all(bootstrap: str, topic: str, partitions: int) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-outputs", "enable.auto.commit": "false",
                         "enable.partition.eof": "true", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages: list[Message] = []
    ended: set[int | None] = set()
    try:
        while len(ended) < partitions:
            msg = consumer.poll(5.0)
            assert msg is not None, f"no message nor end of partition on {topic} within 5 s"
            if msg.error():
                assert present(msg.error()).code() == -191, msg.error()  # _PARTITION_EOF
                ended.add(msg.partition())
                continue
            messages.append(msg)
    finally:
        consumer.close()
    return messages


def _canonical(rows: list[dict], drop: tuple[str, ...]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True) for r in rows)


@pytest.mark.integration
def test_gold_rows_on_topics_equal_the_delta_rows(sample_dir: Path, tmp_path: Path, kafka_broker,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{NO_REGISTRY}")
    kafka_broker.create_topic("features_gold", 4)
    kafka_broker.create_topic("inference_scores", 2)
    cfg = app_config([sample_dir], tmp_path / "lake")
    outputs = OutputConfig.from_settings({}, {"SPYMASTER_OUTPUT_BOOTSTRAP": kafka_broker.bootstrap,
                                              "SPYMASTER_OUTPUT_TOPICS": "features_gold,inference_scores"}, TABLES)
    cfg = replace(cfg, outputs=outputs, source=replace(cfg.source, dates=DateRange.parse("2025-11-04:2025-11-04")))

    prepared = prepare(cfg)
    run_flow(prepared, workers=2)

    for spec, topic, partitions in ((GOLD_FEATURE_SERIES, "features_gold", 4),
                                    (GOLD_INFERENCE_SCORES, "inference_scores", 2)):
        delta = prepared.lake.read(spec)
        messages = _consume_all(kafka_broker.bootstrap, topic, partitions)
        rows = [json.loads(present(m.value())) for m in messages]
        assert delta.num_rows > 0 and len(rows) == delta.num_rows, spec.name
        assert all(present(m.key()).decode() == r["contract_id"] for m, r in zip(messages, rows, strict=True))
        headers = [headers_of(m) for m in messages]
        assert {h["table"] for h in headers} == {spec.name.encode()}
        assert len({(h["stream"], h["position"]) for h in headers}) == len(rows)  # no row twice
        by_contract: dict[bytes | None, set[int | None]] = {}
        for m in messages:  # one contract, one partition
            by_contract.setdefault(m.key(), set()).add(m.partition())
        assert all(len(p) == 1 for p in by_contract.values())
        expected = json.loads(json.dumps([_jsonable(r) for r in delta.to_pylist()]))
        assert _canonical(rows, ("ts_ingest",)) == _canonical(expected, ("ts_ingest",)), spec.name


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        elif isinstance(v, datetime | date):
            v = v.isoformat()
        out[k] = v
    return out


def test_rows_as_json_is_one_plain_object_per_row() -> None:
    table = pa.table({"contract_id": ["ESZ5", "ESH6"], "ts": pa.array([1, 2], pa.int64()),
                      "p": [0.5, float("nan")], "d": [date(2025, 11, 3), None],
                      "at": pa.array([datetime(2025, 11, 3, 14, 30, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
                      "ids": [["a", "b"], []], "depth": [[1.5, float("nan")], [float("inf")]],
                      "raw": [b"\x00\xff", None], "big": pa.array([2**64 - 1, 0], pa.uint64())})

    lines = [json.loads(b) for b in rows_as_json(table)]

    assert lines == [
        {"contract_id": "ESZ5", "ts": 1, "p": 0.5, "d": "2025-11-03", "at": "2025-11-03T14:30:00+00:00",
         "ids": ["a", "b"], "depth": [1.5, None], "raw": "AP8=", "big": 2**64 - 1},
        {"contract_id": "ESH6", "ts": 2, "p": None, "d": None, "at": None, "ids": [], "depth": [None],
         "raw": None, "big": 0},
    ]
    assert rows_as_json(table.slice(0, 0)) == []


def test_output_settings_from_toml_and_environment(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('[outputs]\nbootstrap = "10.0.0.1:9092"\ntopics = {"gold.feature_series" = "fs"}\n')

    from_toml = load_config({}, toml).outputs
    from_env = load_config({"SPYMASTER_OUTPUT_BOOTSTRAP": "h:1", "SPYMASTER_OUTPUT_TOPICS": "inference_scores"}).outputs

    assert from_toml.topics == (("gold.feature_series", "fs"),) and from_toml.bootstrap == "10.0.0.1:9092"
    assert from_env.topic_of("gold.inference_scores") == "inference_scores" and not load_config({}).outputs.enabled
    assert from_env.producer_config()["compression.codec"] == "gzip"
    assert int(from_env.producer_config()["message.max.bytes"]) <= 1_000_000


@pytest.mark.parametrize(("env", "sentence"), [
    ({"SPYMASTER_OUTPUT_TOPICS": "features_gold"}, "output topics are set but no broker"),
    ({"SPYMASTER_OUTPUT_BOOTSTRAP": "h:1", "SPYMASTER_OUTPUT_TOPICS": "scores"}, "is not one of features_gold"),
    ({"SPYMASTER_OUTPUT_BOOTSTRAP": "h:1", "SPYMASTER_OUTPUT_TOPICS": "gold.nope=x"}, "'gold.nope' does not exist"),
    ({"SPYMASTER_OUTPUT_BOOTSTRAP": "eventhubs", "SPYMASTER_OUTPUT_TOPICS": "features_gold"},
     "the Event Hubs connection string is missing"),
])
def test_bad_output_settings_are_one_sentence(env: dict[str, str], sentence: str) -> None:
    with pytest.raises(ConfigError, match=sentence):
        load_config(env)


def test_event_hubs_outputs_use_the_namespace_kafka_endpoint() -> None:
    conn = ("Endpoint=sb://spymaster-events.servicebus.windows.net/;SharedAccessKeyName=send;"
            "SharedAccessKey=c2VjcmV0c2VjcmV0c2VjcmV0")
    out = load_config({"SPYMASTER_OUTPUT_BOOTSTRAP": "eventhubs", "SPYMASTER_OUTPUT_TOPICS": "features_gold",
                       "EVENTHUBS_CONNECTION_STRING": conn}).outputs

    settings = out.producer_config()
    assert settings["bootstrap.servers"] == "spymaster-events.servicebus.windows.net:9093"
    assert settings["security.protocol"] == "SASL_SSL" and settings["sasl.username"] == "$ConnectionString"
    assert "SharedAccessKey=" not in repr(out)
