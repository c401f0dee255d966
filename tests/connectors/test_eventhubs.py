"""Event Hubs Kafka settings from real connection-string shapes, and clear errors for bad ones."""

from __future__ import annotations

import confluent_kafka
import pytest

from connectors.kafka.eventhubs import from_environment, kafka_config, parse_connection_string, topic_for
from operators.errors import ConfigError

ENDPOINT = "Endpoint=sb://spymaster-dev.servicebus.windows.net/"
NAMESPACE = f"{ENDPOINT};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=notarealkey"
HUB = f"{ENDPOINT};SharedAccessKeyName=listen;SharedAccessKey=notarealkey;EntityPath=mbo_raw"
SIGNED = f"{ENDPOINT};SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1&skn=listen"


@pytest.mark.parametrize(
    "text", [NAMESPACE, HUB, SIGNED, NAMESPACE + ";", "  " + HUB.replace("Endpoint", "endpoint") + "  "]
)
def test_real_shapes_give_the_documented_client_settings(text: str) -> None:
    conn = parse_connection_string(text)
    config = kafka_config(conn, "consumer")
    assert conn.namespace_host == "spymaster-dev.servicebus.windows.net"
    assert config["bootstrap.servers"] == "spymaster-dev.servicebus.windows.net:9093"
    assert (config["security.protocol"], config["sasl.mechanism"], config["sasl.username"]) == (
        "SASL_SSL", "PLAIN", "$ConnectionString")
    assert config["sasl.password"] == text.strip()
    assert config["socket.keepalive.enable"] == "true" and int(config["metadata.max.age.ms"]) < 240_000
    producer = kafka_config(conn, "producer")
    assert producer["compression.codec"] == "gzip" and int(producer["message.max.bytes"]) <= 1_046_528
    assert int(producer["request.timeout.ms"]) > 20_000
    assert "notarealkey" not in repr(conn)


def test_entity_path_names_the_hub() -> None:
    assert topic_for(parse_connection_string(HUB), None) == "mbo_raw"
    assert topic_for(parse_connection_string(NAMESPACE), "mbo_raw") == "mbo_raw"
    with pytest.raises(ConfigError, match="differs from the connection string's EntityPath"):
        topic_for(parse_connection_string(HUB), "features_gold")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is missing"),
        ("hello world", "Key=Value pairs"),
        ("Endpoint=https://spymaster-dev.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b", "sb://"),
        ("Endpoint=sb:///;SharedAccessKeyName=a;SharedAccessKey=b", "not a namespace host"),
        ("Endpoint=sb://spymaster-dev.servicebus.windows.net/;SharedAccessKeyName=a", "SharedAccessKey"),
        ("Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true", "emulator"),
    ],
)
def test_bad_strings_are_one_sentence_without_the_secret(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_connection_string(text)
    assert "SharedAccessKey=b" not in str(err.value)


def test_librdkafka_accepts_the_settings() -> None:
    _, config = from_environment({"EVENTHUBS_CONNECTION_STRING": HUB}, "producer")
    config["bootstrap.servers"] = "127.0.0.1:9"  # parse the settings only; never leave the machine
    producer = confluent_kafka.Producer(config)
    assert producer.flush(0) == 0
    _, consumer_config = from_environment({"EVENTHUBS_CONNECTION_STRING": HUB}, "consumer")
    consumer_config |= {"bootstrap.servers": "127.0.0.1:9", "group.id": "spymaster-test"}
    confluent_kafka.Consumer(consumer_config).close()
    with pytest.raises(confluent_kafka.KafkaException):
        confluent_kafka.Producer({**config, "sasl.mechanism": "PLAINX"})
