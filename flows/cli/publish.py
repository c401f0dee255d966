"""``spymaster publish``: the live-market simulator (DBN files → a Kafka or Event Hubs topic)."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.secrets import secret_env
from operators.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish",
        help="replay DBN files onto a Kafka / Event Hubs topic like a live feed",
        description=(
            "Publish DBN files (definitions first, then MBO merged by ts_recv across files, then "
            "statistics) onto a topic, keyed by instrument and batched like a live feed (records of one "
            "instrument within --window-ms of event time, at most ~1 MB per message), at real time x "
            "--speed or as fast as possible (--max). Creates the topic if it is missing (Kafka only). "
            "With --eventhubs, the namespace and key come from EVENTHUBS_CONNECTION_STRING."
        ),
    )
    p.add_argument("paths", nargs="+", help="DBN files, directories or globs")
    p.add_argument("--topic", default="mbo_raw", help="topic (event hub) name (default mbo_raw)")
    p.add_argument("--bootstrap", help="Kafka bootstrap HOST:PORT (not with --eventhubs)")
    p.add_argument("--eventhubs", action="store_true",
                   help="publish to Azure Event Hubs using EVENTHUBS_CONNECTION_STRING (Kafka endpoint by default)")
    p.add_argument("--transport", choices=("kafka", "amqp"), default="kafka",
                   help="with --eventhubs: kafka (Standard tier and up) or amqp (any tier, also Basic and the "
                        "emulator; events of at most 250 kB of records)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, help="pace at real time x SPEED, on ts_recv")
    pace.add_argument("--max", action="store_true", help="as fast as the broker takes it (the default)")
    p.add_argument("--partitions", type=int, default=4, help="partitions of a topic created here (default 4)")
    p.add_argument("--window-ms", type=float, default=100.0,
                   help="event-time window of one batch per instrument (default 100 ms)")
    p.add_argument("--max-idle", type=float,
                   help="with --speed: never wait more than this many seconds between two messages (skips "
                        "overnight gaps)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from replay.publish import publish_files

    if args.partitions < 1:
        raise ConfigError(f"--partitions must be at least 1, not {args.partitions}")
    from connectors.kafka.eventhubs import producer_target

    env = secret_env(os.environ)  # the connection string may come from SPYMASTER_KEYVAULT
    target = producer_target(args.bootstrap, args.eventhubs, args.topic, env, transport=args.transport)
    bootstrap, settings, topic, create = target.bootstrap, target.settings, target.topic, target.may_create_topic
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    with Progress(TextColumn(f"publish → {topic}"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
                  TimeElapsedColumn(), console=console, transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task("publish", total=None)

        def tick(sent: int, total: int) -> None:
            progress.update(task, completed=sent, total=total)

        if target.transport == "amqp":
            from replay.publish import publish_files_amqp

            report = publish_files_amqp(args.paths, target.connection, topic, None if args.max else args.speed,
                                        window_ms=args.window_ms, max_idle_s=args.max_idle, on_progress=tick)
        else:
            report = publish_files(args.paths, bootstrap, topic, None if args.max else args.speed,
                                   partitions=args.partitions, window_ms=args.window_ms, max_idle_s=args.max_idle,
                                   add_config=settings, create_topic=create, on_progress=tick)
    print(report.summary())
    by_schema = ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_schema.items()))
    print(f"records by schema: {by_schema}; largest message {report.max_message_bytes:,} bytes")
    return 0

