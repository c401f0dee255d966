"""Reading and writing a stand-in hub with the SDK directly (not through the code under test)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient


def send_to_partition(connection: str, hub: str, partition: str, values: Sequence[bytes],
                      properties: Sequence[dict[str, str] | None] | None = None) -> None:
    """Send ``values`` in order as one batch to one partition (so their sequence numbers are 0, 1, …
    on an empty partition), each with its application properties."""
    producer = EventHubProducerClient.from_connection_string(connection, eventhub_name=hub)
    try:
        batch = producer.create_batch(partition_id=partition)
        for i, value in enumerate(values):
            event = EventData(value)
            props = properties[i] if properties is not None else None
            if props:
                event.properties = {name: value for name, value in props.items()}  # the setter's own type
            batch.add(event)
        producer.send_batch(batch)
    finally:
        producer.close()


def read_partition(connection: str, hub: str, partition: str, timeout: float = 20.0) -> list:
    """Every event the partition holds (its last enqueued sequence number + 1 of them), from its start."""
    client = EventHubConsumerClient.from_connection_string(connection, consumer_group="$Default", eventhub_name=hub,
                                                      load_balancing_interval=1.0)
    props = client.get_partition_properties(partition)
    expected = 0 if props["is_empty"] else props["last_enqueued_sequence_number"] + 1
    if not expected:
        client.close()
        return []
    got: list = []
    done = threading.Event()

    def on_batch(_ctx: object, events: list) -> None:
        got.extend(events)
        if len(got) >= expected or done.is_set():
            done.set()
            client.close()  # from the receiving thread, as the source does (closing from another races)

    thread = threading.Thread(target=client.receive_batch, kwargs={
        "on_event_batch": on_batch, "partition_id": partition, "starting_position": "-1",
        "max_batch_size": 500, "max_wait_time": 0.25}, daemon=True)
    thread.start()
    done.wait(timeout)
    done.set()
    thread.join(10)
    if thread.is_alive():
        client.close()
    return got
