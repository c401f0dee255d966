"""Which transport a topic input names, and its source: the one place that knows them all."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from bytewax.inputs import FixedPartitionedSource

from connectors.topic.input import TopicInput, is_topic_input
from connectors.topic.partition import KafkaPartitionState, partition_source_id
from connectors.topic.positions import Item
from operators.errors import ConfigError, SourceError


def parse_topic_url(url: str, *, connection_string: str = "", stop_at_end: bool = False) -> TopicInput:
    """A topic URL → a :class:`TopicInput`.

    ``kafka://HOST:PORT[,HOST:PORT]/TOPIC`` or ``eventhubs://NAMESPACE/HUB[?transport=amqp]``.

    ``?fetch_wait_ms=N`` sets the consumer's ``fetch.wait.max.ms`` (see ``TopicInput``).

    The Event Hubs form needs ``connection_string`` (EVENTHUBS_CONNECTION_STRING); the namespace
    may be given short (``myns``) or as the host name. ``transport=amqp`` reads over AMQP with
    azure-eventhub (the Basic tier has no Kafka endpoint; emulator strings are valid there).
    """
    parts = urlsplit(url)
    topic = parts.path.strip("/")
    query = parse_qs(parts.query, keep_blank_values=True)
    transport = (query.pop("transport", ["kafka"]) or ["kafka"])[-1]
    fetch_wait = (query.pop("fetch_wait_ms", [""]) or [""])[-1]
    if query or transport not in ("kafka", "amqp"):
        raise ConfigError(f"{url!r}: the query parameters are transport=kafka|amqp and fetch_wait_ms=N")
    if fetch_wait and (not fetch_wait.isdigit() or transport == "amqp"):
        raise ConfigError(f"{url!r}: fetch_wait_ms takes whole milliseconds and the Kafka transport")
    wait = int(fetch_wait) if fetch_wait else None
    if transport == "amqp":
        if parts.scheme != "eventhubs":
            raise ConfigError(f"{url!r}: transport=amqp is for eventhubs://NAMESPACE/HUB inputs")
        from connectors.eventhubs_amqp.client import amqp_input

        return amqp_input(parts.netloc, topic, connection_string, stop_at_end=stop_at_end)
    if parts.scheme == "kafka":
        if not parts.netloc or not topic or "/" in topic:
            raise ConfigError(f"{url!r} is not kafka://HOST:PORT/TOPIC")
        return TopicInput(bootstrap=parts.netloc, topic=topic, stop_at_end=stop_at_end, fetch_wait_ms=wait,
                          label=f"kafka://{parts.netloc}/{topic}")
    if parts.scheme == "eventhubs":
        from connectors.kafka.eventhubs import kafka_config, parse_connection_string, topic_for

        if not connection_string:
            from connectors.secrets import where_looked

            raise ConfigError(f"{url} needs the namespace's SAS connection string, which is missing "
                              f"({where_looked('EVENTHUBS_CONNECTION_STRING')})")
        conn = parse_connection_string(connection_string)
        host = parts.netloc if "." in parts.netloc else f"{parts.netloc}.servicebus.windows.net"
        if parts.netloc and host.lower() != conn.namespace_host.lower():
            raise ConfigError(f"{url} names namespace {host}, but the connection string is for {conn.namespace_host}")
        settings = kafka_config(conn, "consumer")
        bootstrap = settings.pop("bootstrap.servers")
        hub = topic_for(conn, topic or None)
        return TopicInput(bootstrap=bootstrap, topic=hub, add_config=settings,
                          stop_at_end=stop_at_end, fetch_wait_ms=wait, label=f"eventhubs://{conn.namespace_host}/{hub}")
    raise ConfigError(f"{url!r} is not a topic input; use kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB")


def topic_source(cfg: object) -> FixedPartitionedSource[Item, KafkaPartitionState]:
    """The topic source for an ``AppConfig`` whose input is ``kafka://…`` or ``eventhubs://…``
    (``?transport=amqp``: :class:`connectors.eventhubs_amqp.source.AmqpMboSource`).

    Checks at once that the broker answers and the topic exists (one sentence otherwise).
    """
    src_cfg = cfg.source  # type: ignore[attr-defined]
    if not is_topic_input(src_cfg.inputs):
        raise ConfigError(f"the input {src_cfg.inputs!r} is not one kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB")
    topic = parse_topic_url(src_cfg.inputs[0], connection_string=getattr(src_cfg, "eventhubs_connection", ""),
                            stop_at_end=getattr(src_cfg, "kafka_stop_at_end", False))
    topic = replace(topic, ticks=getattr(src_cfg, "ticks", topic.ticks))
    if topic.transport == "amqp":
        from connectors.eventhubs_amqp.source import AmqpMboSource

        return AmqpMboSource.checked(topic)
    from connectors.kafka.source import KafkaMboSource, partitions_of

    try:
        partitions_of(topic)
    except SourceError as err:
        raise ConfigError(str(err)) from None
    return KafkaMboSource(topic)


def partition_source_ids(source: FixedPartitionedSource[Item, KafkaPartitionState]) -> tuple[str, ...]:
    """The ``source_id`` of every partition of a :func:`topic_source`, as its items will carry it."""
    topic: TopicInput = source.input  # type: ignore[attr-defined]
    prefix = "eventhubs" if topic.transport == "amqp" else "kafka"
    return tuple(partition_source_id(prefix, topic.topic, int(part.split("-", 1)[0])) for part in source.list_parts())
