"""The tests' Kafka-protocol broker: tansu on 127.0.0.1 (now in ``connectors.kafka.broker``,
which ``spymaster bench --live`` uses too)."""

from connectors.kafka.broker import Broker, free_port, running_broker, tansu_binary

__all__ = ["Broker", "free_port", "running_broker", "tansu_binary"]
