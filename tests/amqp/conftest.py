"""AMQP fixtures: the stand-in Event Hubs namespace (one per session, a hub per test) and a
bounded flow run over one of its hubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from flows.app import prepare
from flows.runner import run_flow
from tests.conftest import app_config
from tests.services.eventhubs_amqp import StandIn, running_namespace

HUBS = {"parity": 4, "bad": 1, "resume": 2, "keys": 4, "sizes": 1, "config": 2, "ingest": 2, "crash": 4}
"""Every test reads or writes its own hub: the stand-in keeps events for the whole session."""


@pytest.fixture(name="eventhubs", scope="session")
def fixture_eventhubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """The stand-in namespace on a free loopback port (Basic tier's 256 KB limit), stopped by PID."""
    with running_namespace(tmp_path_factory.mktemp("eventhubs") / "stand-in.log", HUBS) as namespace:
        yield namespace


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
