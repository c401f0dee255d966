"""The live display's input: the flow's output topics of the eight tables a frame is made of.

The flow tees any Delta table to a topic (``SPYMASTER_OUTPUT_TOPICS`` = ``TABLE=TOPIC,...``,
``connectors.kafka.outputs``), one JSON object per row. The display reads every partition of
those topics from the beginning (so it can show the session so far), without a consumer group
(it commits nothing and any number of displays can follow), on a thread of its own; ``drain``
hands the rows received since the last call to the asyncio side.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from connectors.hud.lake import GEX_TABLES, TABLES
from connectors.kafka.outputs import OutputConfig
from operators.errors import ConfigError

log = logging.getLogger("spymaster.hud")

FETCH_WAIT_MS = 20
"""How long a fetch may wait for data: the display's share of the latency to the page."""


def hud_topics(outputs: OutputConfig) -> dict[str, str]:
    """``SessionRows`` field -> topic, from the flow's output settings; a clear error naming what
    to add when a table the display needs is not teed to a topic. The option chains' GEX tables
    are read when they are teed too (both of them), and the GEX panel stays empty when not."""
    by_table = dict(outputs.topics)
    missing = [spec.name for spec in TABLES.values() if spec.name not in by_table]
    if not outputs.bootstrap or missing:
        wanted = ",".join(f"{name}={name.split('.')[-1]}" for name in missing)
        msg = ("the live display follows the flow's output topics; "
               + ("set SPYMASTER_OUTPUT_BOOTSTRAP and " if not outputs.bootstrap else "")
               + f"add to SPYMASTER_OUTPUT_TOPICS (the flow's and the display's): {wanted}")
        raise ConfigError(msg)
    out = {field: by_table[spec.name] for field, spec in TABLES.items()}
    gex = {field: by_table[spec.name] for field, spec in GEX_TABLES.items() if spec.name in by_table}
    return {**out, **gex} if len(gex) == len(GEX_TABLES) else out


class TopicRows:
    """Rows of the display's topics as they arrive: ``drain()`` -> ``[(field, row), ...]``."""

    def __init__(self, outputs: OutputConfig, topics: Mapping[str, str]) -> None:
        self._settings = {"bootstrap.servers": outputs.bootstrap, "group.id": "spymaster-hud",
                          "enable.auto.commit": "false", "fetch.wait.max.ms": str(FETCH_WAIT_MS),
                          **outputs.client}  # the connection's own settings (Event Hubs SASL), no producer ones
        self._field_of = {topic: field for field, topic in topics.items()}
        self._lock = threading.Lock()
        self._rows: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hud-topics", daemon=True)
        self._notify: Callable[[], object] = lambda: None

    def start(self, notify: Callable[[], object] = lambda: None) -> None:
        """Read in a thread; ``notify`` is called from it after rows arrive (and on an error)."""
        self._notify = notify
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            rows, self._rows = self._rows, []
            error = self._error
        if error is not None:
            raise ConfigError(f"the display stopped reading its topics: {error}") from error
        return rows

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(self._settings)
        try:
            assigned = []
            for topic in self._field_of:
                meta = consumer.list_topics(topic, timeout=10).topics[topic]
                if meta.error is not None:
                    raise ConfigError(f"topic {topic!r}: {meta.error.str()}")
                assigned += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
            consumer.assign(assigned)
            while not self._stop.is_set():
                # wait for the first message only, then take what is already fetched: consume(n, t)
                # alone would hold every batch for its whole timeout unless n messages came
                first = consumer.poll(0.05)
                if first is None:
                    continue
                batch = [first, *consumer.consume(2000, 0)]
                got = []
                for msg in batch:
                    name, value = msg.topic(), msg.value()
                    if msg.error() is not None or name is None or value is None:
                        log.warning("HUD topics: %s", msg.error())
                        continue
                    got.append((self._field_of[name], json.loads(value)))
                if got:
                    with self._lock:
                        self._rows += got
                    self._notify()
        except Exception as err:  # noqa: BLE001 - handed to the asyncio side by drain()
            with self._lock:
                self._error = err
            self._notify()
        finally:
            consumer.close()
