"""Selecting the AMQP path is configuration; its mistakes are one sentence, in seconds."""

from __future__ import annotations

import pytest

from connectors.databento_live import IngestCounts
from connectors.eventhubs_amqp.producer import AmqpMessageSink
from connectors.eventhubs_amqp.source import AmqpMboSource
from connectors.kafka.eventhubs import parse_connection_string, producer_target
from connectors.topic.dispatch import parse_topic_url, topic_source
from connectors.topic.input import is_topic_input
from flows.config import load_config
from operators.errors import ConfigError, SourceError
from tests.services.eventhubs_amqp import StandIn, free_port

CLOUD = ("Endpoint=sb://spy-ns.servicebus.windows.net/;SharedAccessKeyName=listen;"
         "SharedAccessKey=c2VjcmV0c2VjcmV0c2VjcmV0;EntityPath=mbo_raw")
EMULATOR = "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0;UseDevelopmentEmulator=true"


def test_transport_amqp_selects_the_amqp_source_and_kafka_stays_the_default() -> None:
    cfg = load_config({"SPYMASTER_INPUT": "eventhubs://spy-ns/mbo_raw?transport=amqp",
                       "EVENTHUBS_CONNECTION_STRING": CLOUD, "SPYMASTER_KAFKA_STOP_AT_END": "1"})
    assert is_topic_input(cfg.source.inputs) and cfg.lake.sink_partitions == 1
    amqp = parse_topic_url(cfg.source.inputs[0], connection_string=CLOUD, stop_at_end=True)
    assert (amqp.transport, amqp.topic, amqp.bootstrap, amqp.stop_at_end, dict(amqp.add_config)) == (
        "amqp", "mbo_raw", "spy-ns.servicebus.windows.net", True, {})
    assert amqp.connection == CLOUD and "c2VjcmV0" not in repr(amqp)
    kafka = parse_topic_url("eventhubs://spy-ns/mbo_raw", connection_string=CLOUD)
    assert (kafka.transport, kafka.bootstrap) == ("kafka", "spy-ns.servicebus.windows.net:9093")
    assert parse_topic_url("eventhubs://spy-ns/mbo_raw?transport=kafka", connection_string=CLOUD) == kafka


def test_emulator_strings_are_valid_only_for_amqp() -> None:
    with pytest.raises(ConfigError, match="the Event Hubs emulator has no Kafka endpoint"):
        parse_topic_url("eventhubs://127.0.0.1/mbo_raw", connection_string=EMULATOR)
    with pytest.raises(ConfigError, match="the Event Hubs emulator has no Kafka endpoint"):
        parse_connection_string(EMULATOR)
    conn = parse_connection_string(EMULATOR, allow_emulator=True)
    assert (conn.namespace_host, conn.emulator) == ("127.0.0.1", True)
    amqp = parse_topic_url("eventhubs://127.0.0.1:5672/mbo_raw?transport=amqp", connection_string=EMULATOR)
    assert (amqp.transport, amqp.topic, amqp.bootstrap) == ("amqp", "mbo_raw", "127.0.0.1")


@pytest.mark.parametrize(("url", "conn", "message"), [
    ("eventhubs://spy-ns/mbo_raw?transport=mqtt", CLOUD, "the query parameters are transport=kafka|amqp"),
    ("eventhubs://spy-ns/mbo_raw?transport=amqp&x=1", CLOUD, "the query parameters are transport=kafka|amqp"),
    ("kafka://127.0.0.1:9092/mbo_raw?transport=amqp", "", "transport=amqp is for eventhubs://"),
    ("eventhubs://spy-ns/mbo_raw?transport=amqp", "", "needs the namespace's SAS connection string"),
    ("eventhubs://other-ns/mbo_raw?transport=amqp", CLOUD, "names namespace other-ns.servicebus.windows.net"),
    ("eventhubs://spy-ns/trades?transport=amqp", CLOUD, "differs from the connection string's EntityPath"),
])
def test_bad_amqp_inputs_are_one_sentence(url: str, conn: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_topic_url(url, connection_string=conn)


def test_producer_target_grows_a_transport() -> None:
    env = {"EVENTHUBS_CONNECTION_STRING": EMULATOR + ";EntityPath=mbo_raw"}
    target = producer_target(None, True, "mbo_raw", env, transport="amqp")
    assert (target.transport, target.topic, target.bootstrap, target.may_create_topic) == (
        "amqp", "mbo_raw", "127.0.0.1", False)
    assert target.connection == env["EVENTHUBS_CONNECTION_STRING"] and "c2VjcmV0" not in repr(target)
    assert producer_target("127.0.0.1:9092", False, "t", {}).transport == "kafka"
    with pytest.raises(ConfigError, match="use it with --eventhubs"):
        producer_target("127.0.0.1:9092", False, "t", {}, transport="amqp")
    with pytest.raises(ConfigError, match="the Event Hubs emulator has no Kafka endpoint"):
        producer_target(None, True, "mbo_raw", env)


def _cfg(url: str, conn: str) -> object:
    return load_config({"SPYMASTER_INPUT": url, "EVENTHUBS_CONNECTION_STRING": conn})


def test_the_checked_source_lists_the_hub_partitions(eventhubs: StandIn) -> None:
    url = f"eventhubs://127.0.0.1:{eventhubs.port}/config?transport=amqp"
    source = topic_source(_cfg(url, eventhubs.connection_string()))
    assert isinstance(source, AmqpMboSource) and source.list_parts() == ["0-config", "1-config"]


def test_wrong_key_is_one_sentence_not_a_hang(eventhubs: StandIn) -> None:
    url = f"eventhubs://127.0.0.1:{eventhubs.port}/config?transport=amqp"
    wrong = eventhubs.connection_string(key="d3Jvbmcta2V5LXdyb25nLWtleQ==")
    with pytest.raises(ConfigError, match=r"^Event Hubs at 127\.0\.0\.1 refused the connection string's key "
                                          r"\(CBS token rejected: .*401.*\); copy the key again"):
        topic_source(_cfg(url, wrong))
    sink = AmqpMessageSink(wrong, "config", IngestCounts())
    with pytest.raises(SourceError, match="refused the connection string's key"):
        sink.check()


def test_missing_hub_is_one_sentence(eventhubs: StandIn) -> None:
    url = f"eventhubs://127.0.0.1:{eventhubs.port}/no_such_hub?transport=amqp"
    with pytest.raises(ConfigError, match=r"^the event hub no_such_hub does not exist in 127\.0\.0\.1; create it"):
        topic_source(_cfg(url, eventhubs.connection_string()))


def test_unreachable_namespace_is_one_sentence_in_seconds() -> None:
    port = free_port()  # nothing listens there
    conn = f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0;UseDevelopmentEmulator=true"
    with pytest.raises(ConfigError, match=r"^the Event Hubs namespace 127\.0\.0\.1 is not reachable over AMQP "
                                          r"\(.*\); check the endpoint and that the namespace exists$"):
        topic_source(_cfg(f"eventhubs://127.0.0.1:{port}/mbo_raw?transport=amqp", conn))


def test_start_up_checks_retry_once_with_short_backoff_so_they_end_in_seconds() -> None:
    """What bounds the wrong-key and unreachable cases above (the tests do not time them): the
    checking clients retry once with at most a second of backoff; running clients keep the SDK's."""
    from connectors.eventhubs_amqp.client import CHECK_RETRIES, client_options

    assert CHECK_RETRIES == 1
    assert client_options(checking=True) == {"retry_total": 1, "retry_backoff_factor": 0.2, "retry_backoff_max": 1.0}
    assert client_options() == {}
