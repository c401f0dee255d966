"""What a topic input is: where to read and how (``TopicInput``), and whether an input names one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from connectors.topic.ticks import TickConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicInput:
    """Where to read: brokers, topic, client settings (Event Hubs SASL, …), bounded or tailing."""

    bootstrap: str
    topic: str
    add_config: Mapping[str, str] = field(default_factory=dict, repr=False)
    stop_at_end: bool = False
    batch_messages: int = 1000
    batch_records: int = 65_536
    """Consecutive messages read in one poll join into chunks of at most this many records."""
    fetch_wait_ms: int | None = None
    """``fetch.wait.max.ms``: how long the broker may hold a fetch that found no data (None:
    librdkafka's 500 ms; settings in ``add_config`` win). A broker that answers a held fetch as
    soon as data arrives makes this irrelevant to latency. One that does not (tansu, our test
    broker, holds every fetch for the whole wait) puts it under a tailing flow's latency, but tansu
    also returns *nothing* when it cannot gather a fetch in time, and on a long partition it never
    can with a very short wait: choose it per broker (``?fetch_wait_ms=N``; docs/live.md)."""
    label: str = ""
    """``kafka://host:port/topic`` or ``eventhubs://namespace/hub``, for messages and the manifest."""
    transport: Literal["kafka", "amqp"] = "kafka"
    """``amqp``: an event hub read with azure-eventhub (``connectors.eventhubs_amqp``): the Basic tier."""
    connection: str = field(default="", repr=False)
    """AMQP only: the namespace's connection string (a secret)."""
    ticks: TickConfig = field(default_factory=TickConfig)
    """Tailing only: how quiet books advance on the wall clock (``connectors.topic.ticks``)."""


def is_topic_input(inputs: tuple[str, ...] | list[str]) -> bool:
    return len(inputs) == 1 and str(inputs[0]).startswith(("kafka://", "eventhubs://"))
