"""Azure Event Hubs through its Kafka endpoint: connection strings in, librdkafka settings out.

Event Hubs speaks the Kafka protocol on port 9093 over TLS, with SASL PLAIN where the user name is
the literal ``$ConnectionString`` and the password is the whole SAS connection string. Microsoft's
recommended client settings for librdkafka are applied: TCP keep-alive (Azure closes idle
connections after 240 s), metadata refresh below that, a request timeout above 20 s, gzip as the
only compression, and requests under 1 MB (the Standard tier's limit; larger ones close the
connection). The Basic tier has no Kafka endpoint, and the local emulator neither: those are
reached over AMQP (``connectors.eventhubs_amqp``, ``?transport=amqp`` / ``--transport amqp``),
where emulator connection strings are valid.

Nothing here logs or raises with the key in it: error messages name the problem, not the secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from operators.errors import ConfigError

KAFKA_PORT = 9093
MAX_REQUEST_BYTES = 1_000_000
"""Below Event Hubs' 1,046,528-byte ceiling for one Kafka request (Standard tier and up)."""

Role = Literal["consumer", "producer", "admin"]


@dataclass(frozen=True, slots=True)
class EventHubsConnection:
    """A parsed SAS connection string; ``secret`` is the whole string (the SASL password)."""

    namespace_host: str
    key_name: str
    entity_path: str | None
    secret: str = field(repr=False)
    emulator: bool = False
    """``UseDevelopmentEmulator=true``: plain AMQP (no TLS) to the endpoint's host and port."""

    @property
    def bootstrap(self) -> str:
        return f"{self.namespace_host}:{KAFKA_PORT}"


def parse_connection_string(text: str, *, allow_emulator: bool = False) -> EventHubsConnection:
    """Parse ``Endpoint=sb://<ns>.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]``.

    A pre-signed ``SharedAccessSignature=…`` may stand in for the key name and key.
    ``allow_emulator``: the AMQP path accepts ``UseDevelopmentEmulator=true`` (the Kafka path cannot).
    """
    text = (text or "").strip()
    if not text:
        from connectors.secrets import where_looked

        msg = (f"the Event Hubs connection string is missing ({where_looked('EVENTHUBS_CONNECTION_STRING')}); "
               "copy one from the namespace's shared access policies")
        raise ConfigError(msg)
    parts: dict[str, str] = {}
    for piece in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = piece.partition("=")
        if not sep or not key.strip():
            msg = "the Event Hubs connection string is not a list of Key=Value pairs separated by ';'"
            raise ConfigError(msg)
        parts[key.strip().lower()] = value.strip()
    emulator = parts.get("usedevelopmentemulator", "").lower() == "true"
    if emulator and not allow_emulator:
        msg = "the Event Hubs emulator has no Kafka endpoint; use a namespace of the Standard tier or higher"
        raise ConfigError(msg)
    endpoint = parts.get("endpoint", "")
    if not endpoint.lower().startswith("sb://"):
        msg = "the Event Hubs connection string needs Endpoint=sb://<namespace>.servicebus.windows.net/"
        raise ConfigError(msg)
    host = endpoint[5:].split("/", 1)[0].split(":", 1)[0]
    if not host or "." not in host:
        msg = f"the Event Hubs endpoint host {host!r} is not a namespace host name"
        raise ConfigError(msg)
    signed = bool(parts.get("sharedaccesssignature"))
    if not signed and not (parts.get("sharedaccesskeyname") and parts.get("sharedaccesskey")):
        msg = ("the Event Hubs connection string needs SharedAccessKeyName and SharedAccessKey "
               "(or SharedAccessSignature)")
        raise ConfigError(msg)
    return EventHubsConnection(host, parts.get("sharedaccesskeyname", ""), parts.get("entitypath") or None, text,
                               emulator)


def kafka_config(conn: EventHubsConnection, role: Role) -> dict[str, str]:
    """librdkafka settings for one client role against the namespace's Kafka endpoint."""
    config = {
        "bootstrap.servers": conn.bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "$ConnectionString",
        "sasl.password": conn.secret,
        "socket.keepalive.enable": "true",
        "metadata.max.age.ms": "180000",
        "connections.max.idle.ms": "180000",
    }
    if role == "producer":
        config |= {"request.timeout.ms": "60000", "compression.codec": "gzip",
                   "message.max.bytes": str(MAX_REQUEST_BYTES)}
    elif role == "consumer":
        config |= {"session.timeout.ms": "30000", "fetch.max.bytes": str(MAX_REQUEST_BYTES)}
    return config


def topic_for(conn: EventHubsConnection, topic: str | None) -> str:
    """The event hub to use: the connection string's EntityPath wins; it must agree with ``topic``."""
    if conn.entity_path and topic and topic != conn.entity_path:
        msg = f"topic {topic!r} differs from the connection string's EntityPath {conn.entity_path!r}"
        raise ConfigError(msg)
    chosen = conn.entity_path or topic
    if not chosen:
        msg = "name the event hub: add EntityPath to the connection string or give a topic"
        raise ConfigError(msg)
    return chosen


def from_environment(env: Mapping[str, str], role: Role) -> tuple[EventHubsConnection, dict[str, str]]:
    """``EVENTHUBS_CONNECTION_STRING`` → the parsed connection and the client settings."""
    conn = parse_connection_string(env.get("EVENTHUBS_CONNECTION_STRING", ""))
    return conn, kafka_config(conn, role)


Transport = Literal["kafka", "amqp"]


@dataclass(frozen=True, slots=True)
class ProducerTarget:
    """Where a producer command writes: a plain broker, or an event hub (Kafka endpoint or AMQP)."""

    bootstrap: str
    settings: dict[str, str]
    topic: str
    may_create_topic: bool
    """Event Hubs cannot create hubs over Kafka (create them with ARM/Bicep); a plain broker can."""
    transport: Transport = "kafka"
    connection: str = field(default="", repr=False)
    """AMQP only: the connection string the producer client opens (a secret)."""


def producer_target(bootstrap: str | None, eventhubs: bool, topic: str, env: Mapping[str, str],
                    default_topic: str = "mbo_raw", transport: Transport = "kafka") -> ProducerTarget:
    """``--bootstrap HOST:PORT`` or ``--eventhubs`` (EVENTHUBS_CONNECTION_STRING), exactly one;
    ``transport="amqp"`` (event hubs only) writes with azure-eventhub instead of the Kafka endpoint."""
    if transport not in ("kafka", "amqp"):
        raise ConfigError(f"--transport must be kafka or amqp, not {transport!r}")
    if transport == "amqp":
        if not eventhubs or bootstrap:
            raise ConfigError("--transport amqp writes to Event Hubs: use it with --eventhubs, not --bootstrap")
        conn = parse_connection_string(env.get("EVENTHUBS_CONNECTION_STRING", ""), allow_emulator=True)
        explicit = topic if topic != default_topic or not conn.entity_path else None
        return ProducerTarget(conn.namespace_host, {}, topic_for(conn, explicit), may_create_topic=False,
                              transport="amqp", connection=conn.secret)
    if eventhubs:
        if bootstrap:
            raise ConfigError("give either --bootstrap or --eventhubs, not both")
        conn, settings = from_environment(env, "producer")
        servers = settings.pop("bootstrap.servers")
        explicit = topic if topic != default_topic or not conn.entity_path else None
        return ProducerTarget(servers, settings, topic_for(conn, explicit), may_create_topic=False)
    if not bootstrap:
        raise ConfigError("name the broker with --bootstrap HOST:PORT (or use --eventhubs)")
    return ProducerTarget(bootstrap, {}, topic, may_create_topic=True)
