"""One confluent-kafka producer for every command that writes messages to a topic (``publish``,
``ingest``): waits out a full local queue, counts what was not delivered, reports each delivery."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from operators.errors import ConfigError

Delivered = Callable[[int, bool, object], None]
"""Called per message with (records in it, delivered?, the error if not)."""


class KafkaSink:
    """A producer to one topic; ``failed`` counts messages not delivered (after ``flush``, also
    those still queued when it gave up)."""

    def __init__(self, bootstrap: str, topic: str, settings: Mapping[str, str] | None = None, *,
                 on_delivery: Delivered | None = None) -> None:
        from confluent_kafka import KafkaException, Producer

        try:
            self._producer = Producer({"bootstrap.servers": bootstrap, **(settings or {})})
        except KafkaException as exc:
            raise ConfigError(f"the producer settings are not valid: {exc.args[0].str()}") from None
        self._topic, self._on_delivery = topic, on_delivery
        self.failed = 0

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], records: int) -> None:
        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                self.failed += 1
            if self._on_delivery is not None:
                self._on_delivery(records, err is None, err)

        while True:
            try:
                # confluent_kafka's stub types headers as a list of (str, str | bytes | None): a list of
                # (str, bytes) is a valid value, but list is invariant
                self._producer.produce(self._topic, value=value, key=key, headers=headers,  # type: ignore[arg-type]
                                       on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let the broker catch up
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> int:
        """Wait for every acknowledgement; the messages still queued at the timeout (also in ``failed``)."""
        left = int(self._producer.flush(timeout_s))
        self.failed += left
        return left
