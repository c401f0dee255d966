"""AMQP fixtures: a bounded flow run over one hub of the stand-in Event Hubs namespace (the
session's ``eventhubs`` fixture, in ``tests/conftest.py``: one per session, a hub per test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from flows.app import prepare
from flows.runner import run_flow
from tests.conftest import app_config
from tests.services.eventhubs_amqp import StandIn


def amqp_url(namespace: StandIn, hub: str) -> str:
    return f"eventhubs://127.0.0.1:{namespace.port}/{hub}?transport=amqp"


@pytest.fixture(name="amqp_replay")
def fixture_amqp_replay(eventhubs: StandIn) -> Callable[..., Lake]:
    """Run the real flow over ``hub`` in bounded mode: ``amqp_replay(hub, lake_dir, workers=1)``."""

    def run(hub: str, lake: Path, *, workers: int = 1) -> Lake:
        cfg = app_config([amqp_url(eventhubs, hub)], lake)
        cfg = replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True,
                                          eventhubs_connection=eventhubs.connection_string()))
        prepared = prepare(cfg)
        run_flow(prepared, workers=workers)
        return prepared.lake

    return run
