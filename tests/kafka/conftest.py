"""Kafka fixtures: a fresh topic on the session's tansu broker, and a bounded flow run over it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from flows.app import prepare
from flows.runner import run_flow
from tests.conftest import app_config


@pytest.fixture(name="topic")
def fixture_topic() -> str:
    """A topic name no other test uses (the broker is shared by the session)."""
    return f"mbo_raw_{uuid.uuid4().hex[:10]}"


@pytest.fixture(name="kafka_replay")
def fixture_kafka_replay(kafka_broker) -> Callable[..., Lake]:
    """Run the real flow over ``topic`` in bounded mode: ``kafka_replay(topic, lake_dir, workers=1)``."""

    def run(topic: str, lake: Path, *, workers: int = 1) -> Lake:
        cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], lake)
        cfg = replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True))
        prepared = prepare(cfg)
        run_flow(prepared, workers=workers)
        return prepared.lake

    return run
