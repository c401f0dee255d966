"""Event Hubs over AMQP: the input, client construction, and one-sentence errors.

``azure-eventhub`` (pyamqp transport) connects from the connection string itself: with
``UseDevelopmentEmulator=true`` it turns TLS off and takes the port from ``Endpoint=sb://HOST:PORT``,
otherwise AMQPS on 5671. Its retries are cut to a few short ones for the checks made at start, so
a wrong key, a missing hub or an unreachable namespace fails in seconds with one sentence instead
of a minute of back-off and a traceback (SPEC §2.3). Nothing here logs or raises with the key in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from operators.errors import ConfigError, SourceError

if TYPE_CHECKING:
    from azure.eventhub import EventHubConsumerClient

    from connectors.topic.input import TopicInput

CONSUMER_GROUP = "$Default"
"""The Basic tier has only the default consumer group; the source reads without checkpoints."""
LOAD_BALANCING_S = 1.0
"""How often the SDK's load-balancing thread wakes (30 s by default): a closed client's thread
ends within this, instead of outliving the run by half a minute."""
CHECK_RETRIES = 1
"""Retries of a start-up check (management READ): enough for a blip, few enough to fail fast."""


def amqp_input(netloc: str, hub: str, connection_string: str, *, stop_at_end: bool = False) -> TopicInput:
    """``eventhubs://NAMESPACE/HUB?transport=amqp`` + the connection string → a :class:`TopicInput`."""
    from connectors.kafka.eventhubs import parse_connection_string, topic_for
    from connectors.topic.input import TopicInput

    if not connection_string:
        from connectors.secrets import where_looked

        raise ConfigError(f"eventhubs://{netloc}/{hub} needs the namespace's SAS connection string, which is missing "
                          f"({where_looked('EVENTHUBS_CONNECTION_STRING')})")
    conn = parse_connection_string(connection_string, allow_emulator=True)
    named = netloc.rsplit(":", 1)[0] if conn.emulator else netloc
    host = named if "." in named else f"{named}.servicebus.windows.net"
    if netloc and host.lower() != conn.namespace_host.lower():
        raise ConfigError(f"eventhubs://{netloc}/{hub} names namespace {host}, but the connection string is for "
                          f"{conn.namespace_host}")
    chosen = topic_for(conn, hub or None)
    return TopicInput(bootstrap=conn.namespace_host, topic=chosen, stop_at_end=stop_at_end, transport="amqp",
                      connection=conn.secret, label=f"eventhubs://{conn.namespace_host}/{chosen}?transport=amqp")


def client_options(*, checking: bool = False) -> dict[str, Any]:
    """Keyword arguments for the SDK's clients: short retries while checking, the SDK's own otherwise."""
    if checking:
        return {"retry_total": CHECK_RETRIES, "retry_backoff_factor": 0.2, "retry_backoff_max": 1.0}
    return {}


def consumer_client(source: TopicInput, *, checking: bool = False) -> EventHubConsumerClient:
    from azure.eventhub import EventHubConsumerClient

    try:
        return EventHubConsumerClient.from_connection_string(
            source.connection, consumer_group=CONSUMER_GROUP, eventhub_name=source.topic,
            load_balancing_interval=LOAD_BALANCING_S, **client_options(checking=checking))
    except ValueError as exc:
        raise ConfigError(f"the Event Hubs connection string is not usable: {exc}") from None


def describe(exc: BaseException, where: str, hub: str) -> str:
    """One sentence for an SDK error, naming the cause a person can act on."""
    from azure.eventhub.exceptions import AuthenticationError, ConnectError

    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    status = next((line for line in lines if line.startswith("Status code:")), "")
    text = lines[0].rstrip(".") + (f", {status.lower()}" if status else "")
    if isinstance(exc, AuthenticationError):
        return (f"Event Hubs at {where} refused the connection string's key (CBS token rejected: {text}); "
                f"copy the key again from the namespace's shared access policies")
    if "404" in str(exc) or "NotFound" in str(exc) or "could not be found" in str(exc):
        return f"the event hub {hub} does not exist in {where}; create it (portal, ARM or Bicep) or fix the input"
    if isinstance(exc, ValueError) and "size limit" in text:
        return (f"an event is larger than the event hub {hub} at {where} accepts ({text} bytes: 256 KB on the "
                f"Basic tier); send smaller messages")
    if isinstance(exc, ConnectError | OSError):
        return (f"the Event Hubs namespace {where} is not reachable over AMQP ({text}); check the endpoint "
                f"and that the namespace exists")
    return f"Event Hubs at {where} failed: {text}"


def partition_ids(source: TopicInput) -> list[str]:
    """The hub's partition ids, checked at start: one :class:`SourceError` sentence otherwise."""
    client = consumer_client(source, checking=True)
    try:
        return list(client.get_partition_ids())
    except Exception as exc:  # noqa: BLE001 - every SDK failure becomes one sentence
        raise SourceError(describe(exc, source.bootstrap, source.topic)) from None
    finally:
        client.close()


def end_sequence(client: EventHubConsumerClient, source: TopicInput, partition: str) -> int:
    """Bounded mode's end: the partition's last enqueued sequence number + 1 (its beginning if empty)."""
    try:
        props = client.get_partition_properties(partition)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(describe(exc, source.bootstrap, source.topic)) from None
    if props["is_empty"]:
        return int(props["beginning_sequence_number"])
    return int(props["last_enqueued_sequence_number"]) + 1
