"""The tests' Kafka-protocol broker: tansu on 127.0.0.1 (now in ``flows.services.broker``,
which ``spymaster bench --live`` uses too)."""

from flows.services.broker import Broker, free_port, running_broker, tansu_binary

__all__ = ["Broker", "free_port", "running_broker", "tansu_binary"]
