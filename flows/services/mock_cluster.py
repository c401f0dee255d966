"""librdkafka's mock cluster as a broker process: ``python -m flows.services.mock_cluster``.

A client configured with ``test.mock.num.brokers`` starts a Kafka-protocol cluster inside
librdkafka, listening on a random 127.0.0.1 port, for as long as that client lives. This
process owns such a client, prints the bootstrap address on its first line, and serves until it
is stopped (by PID, like tansu).

Why keep it beside tansu: tansu holds every fetch for the consumer's whole
``fetch.wait.max.ms`` even when data has arrived, and with a short wait its polling costs CPU
that a 2-core machine does not have; the mock answers a 10 ms wait cheaply, which is the
closest this machine gets to a Kafka broker answering a fetch as soon as data lands. Its limit:
it keeps only about 5 MB (or 100,000 messages) per partition, dropping the oldest, so a
publisher must not run further ahead of its consumer than that (``spymaster bench --live``
paces its fast phases on the flow's progress when it uses it).
"""

from __future__ import annotations

import signal
import sys
import threading


def main() -> int:
    from confluent_kafka import Producer

    owner = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "unused:9092", "log_level": "0"})
    brokers = owner.list_topics(timeout=10).brokers
    if not brokers:
        print("the mock cluster did not start", file=sys.stderr)
        return 1
    broker = next(iter(brokers.values()))
    print(f"{broker.host}:{broker.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        owner.poll(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
