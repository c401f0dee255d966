"""``spymaster ingest``: Databento Live → a Kafka / Event Hubs topic, with reconnects and counts."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.databento_live import IngestCounts

log = logging.getLogger("spymaster.ingest")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="stream Databento Live (MBO with snapshot, definitions, statistics) onto a topic",
        description=(
            "Subscribe to Databento Live (API key from DATABENTO_API_KEY) and publish every record onto a "
            "topic with the same format as 'spymaster publish': keyed by instrument, batched per instrument "
            "within --window-ms of event time. MBO subscriptions start with a book snapshot. A failed "
            "session is reconnected with exponential backoff. Counts (received, published, skipped, faults) "
            "are logged every --report seconds and printed at the end (Ctrl-C stops cleanly)."
        ),
    )
    p.add_argument("--topic", default="mbo_raw", help="topic (event hub) name (default mbo_raw)")
    p.add_argument("--bootstrap", help="Kafka bootstrap HOST:PORT (not with --eventhubs)")
    p.add_argument("--eventhubs", action="store_true",
                   help="use EVENTHUBS_CONNECTION_STRING (Kafka endpoint by default)")
    p.add_argument("--transport", choices=("kafka", "amqp"), default="kafka",
                   help="with --eventhubs: kafka (Standard tier and up) or amqp (any tier, also Basic)")
    p.add_argument("--dataset", default="GLBX.MDP3", help="Databento dataset (default GLBX.MDP3)")
    p.add_argument("--symbols", default="ES.FUT", help="comma-separated symbols (default ES.FUT)")
    p.add_argument("--stype-in", default="parent", help="symbology of --symbols (default parent)")
    p.add_argument("--schemas", default="definition,mbo,statistics",
                   help="comma-separated schemas (default definition,mbo,statistics)")
    p.add_argument("--no-snapshot", action="store_true", help="do not request a book snapshot on subscribe")
    p.add_argument("--window-ms", type=float, default=100.0, help="event-time window of one batch (default 100)")
    p.add_argument("--max-reconnects", type=int, help="give up after this many failures in a row (default never)")
    p.add_argument("--report", type=float, default=10.0, help="log the counts every N seconds (default 10)")
    p.add_argument("--health-file", type=Path, default=None,
                   help="touch this file at every report (a container's health check reads its age)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.databento_live import (
        IngestCounts,
        KafkaMessageSink,
        LiveConfig,
        MessageSink,
        api_key,
        databento_connect,
        ingest,
    )
    from connectors.secrets import secret_env

    env = secret_env(os.environ)  # the key and the connection string may come from SPYMASTER_KEYVAULT
    key = api_key(env)
    cfg = LiveConfig(dataset=args.dataset, schemas=_split(args.schemas), symbols=_split(args.symbols),
                     stype_in=args.stype_in, snapshot=not args.no_snapshot)
    from connectors.kafka.eventhubs import producer_target

    target = producer_target(args.bootstrap, args.eventhubs, args.topic, env, transport=args.transport)
    bootstrap, settings, topic = target.bootstrap, target.settings, target.topic
    counts = IngestCounts()
    max_bytes = 960_000
    if target.transport == "amqp":
        from connectors.eventhubs_amqp.producer import AMQP_RECORD_BYTES, AmqpMessageSink

        amqp = AmqpMessageSink(target.connection, topic, counts)
        amqp.check()
        sink: MessageSink = amqp
        max_bytes = AMQP_RECORD_BYTES
    else:
        from replay.publish import ensure_topic

        ensure_topic(bootstrap, topic, 4, settings, create=target.may_create_topic)
        sink = KafkaMessageSink(bootstrap, topic, counts, settings)
    stopping = threading.Event()
    def interrupt(*_: object) -> None:  # first Ctrl-C: finish cleanly; second: stop at once
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()

    previous = signal.signal(signal.SIGINT, interrupt)
    previous_term = signal.signal(signal.SIGTERM, interrupt)  # Kubernetes stops a pod with SIGTERM
    reporter = threading.Thread(target=_report, args=(counts, stopping, args.report, args.health_file), daemon=True)
    reporter.start()
    try:
        ingest(databento_connect(cfg, key), sink, counts, dataset=cfg.dataset, window_ms=args.window_ms,
               max_bytes=max_bytes, max_reconnects=args.max_reconnects, on_end="reconnect", stop=stopping.is_set)
    finally:
        stopping.set()
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        print(counts.summary())
    return 0


def _report(counts: IngestCounts, stopping: threading.Event, every: float, health: Path | None) -> None:
    if health is not None:
        health.touch()
    while not stopping.wait(every):
        log.warning("%s", counts.summary())
        if health is not None:
            health.touch()


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())
