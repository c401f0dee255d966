"""Live frames equal replay frames: the sample published to a broker, the flow reading it with the
eight tables a frame is made of teed to output topics, the HUD in live mode following those topics
while the flow runs, against the HUD replaying the lake the same run wrote.

A WebSocket client connected from the start keeps what it is sent as a page does (a snapshot
replaces, a frame appends, a second sent again replaces the one it had); when the flow is done and
the display has caught up, what it holds for the session equals the replay's frames, second for
second, for both contracts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow as pa
import pytest
from aiohttp.test_utils import TestServer

from connectors.delta.lake import Lake
from connectors.hud.lake import TABLES, session_contracts, session_rows, sessions
from connectors.hud.topics import TopicRows, hud_topics
from connectors.kafka.outputs import OutputConfig
from flows.services.hud import Hud, HudSettings, LiveSource, live_schemas
from operators.hud.frames import frames
from tests.hud.conftest import same_frames

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _flow_env(topic_url: str, lake: Path, tmp: Path, bootstrap: str, topics: dict[str, str], registry: str
              ) -> dict[str, str]:
    """The topic tests' bounded reading, scored with the registry's model, the frame tables teed."""
    from tests.flows.conftest import topic_env

    return {**topic_env(topic_url, lake, tmp), "MLFLOW_TRACKING_URI": registry, "SPYMASTER_OUTPUT_BOOTSTRAP": bootstrap,
            "SPYMASTER_OUTPUT_TOPICS": ",".join(f"{TABLES[f].name}={t}" for f, t in topics.items())}


@pytest.mark.slow
def test_live_frames_equal_replay_frames(kafka_broker: Any, sample_dir: Path, hud_registry: str,
                                         tmp_path: Path) -> None:
    from replay.publish import publish_files

    topics = {field: f"hud_{field}" for field in TABLES}
    for topic in topics.values():
        kafka_broker.create_topic(topic, 1)
    report = publish_files([str(sample_dir / "*.dbn.zst")], kafka_broker.bootstrap, "hud_mbo", None, partitions=2)
    assert report.failed == 0
    outputs = OutputConfig(bootstrap=kafka_broker.bootstrap,
                           topics=tuple((TABLES[f].name, t) for f, t in topics.items()))
    assert hud_topics(outputs) == topics
    lake_dir = tmp_path / "lake"
    env = _flow_env(f"kafka://{kafka_broker.bootstrap}/hud_mbo", lake_dir, tmp_path, kafka_broker.bootstrap, topics,
                    hud_registry)
    held: dict[str, dict[float, dict[str, Any]]] = {}
    stats: dict[str, Any] = {}

    async def main() -> None:
        source = LiveSource(TopicRows(outputs, topics), live_schemas())
        hud = Hud(source, HudSettings(history_minutes=24 * 60.0))
        server = TestServer(hud.app(), host="127.0.0.1", port=0)
        await server.start_server()
        flow = subprocess.Popen([sys.executable, "-m", "bytewax.run", "flows.main"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/ws"),
                                                                              max_msg_size=0) as ws:
                reader = asyncio.create_task(_keep(ws, held))
                while flow.poll() is None:
                    await asyncio.sleep(0.5)
                assert flow.returncode == 0, flow.stderr.read().decode()[-3000:] if flow.stderr else ""
                await _caught_up(source, Lake(str(lake_dir)))
                for contract in [c.contract for c in source.contracts()]:  # every contract's whole session
                    await ws.send_str(json.dumps({"contract": contract}))
                    await _settled(held, contract)
                stats["contracts"] = [c.contract for c in source.contracts()]
                reader.cancel()
        finally:
            if flow.poll() is None:
                flow.kill()
            await server.close()

    asyncio.run(asyncio.wait_for(main(), timeout=600))

    lake = Lake(str(lake_dir))
    day = sessions(lake)[-1]
    contracts = session_contracts(lake, day)
    assert sorted(stats["contracts"]) == sorted(c.contract for c in contracts)
    for contract in contracts:
        want = frames(session_rows(lake, day, contract), contract.instrument_id)
        mine = [held[contract.contract][t] for t in sorted(held[contract.contract])
                if held[contract.contract][t]["session_date"] == day.isoformat()]
        got = pa.Table.from_pylist(mine, schema=want.schema)
        assert got.num_rows == want.num_rows > 1000, contract
        assert not same_frames(got, want), contract


async def _keep(ws: aiohttp.ClientWebSocketResponse, held: dict[str, dict[float, dict[str, Any]]]) -> None:
    """Hold what a page holds: a snapshot replaces the contract's rows, frames add or replace seconds."""
    async for message in ws:
        if message.type != aiohttp.WSMsgType.BINARY:
            continue
        reader = pa.ipc.open_stream(message.data)
        rows = reader.read_all().to_pylist()
        kind = (reader.schema.metadata or {}).get(b"kind")
        for contract in {r["contract"] for r in rows}:
            if kind == b"snapshot":
                held[contract] = {}
            mine = held.setdefault(contract, {})
            mine.update({r["t_ms"]: r for r in rows if r["contract"] == contract})


async def _caught_up(source: LiveSource, lake: Lake) -> None:
    """Until every book second the lake holds for the last session has been sent live."""
    day = sessions(lake)[-1]
    want = {c.contract: frames(session_rows(lake, day, c), c.instrument_id)["t_ms"].to_pylist()
            for c in session_contracts(lake, day)}
    deadline = time.monotonic() + 120
    got: dict[str, list[float]] = {}
    while time.monotonic() < deadline:
        got = {c.contract: source.history(c.contract, 24 * 60.0)["t_ms"].to_pylist() for c in source.contracts()}
        if got == want:
            return
        await asyncio.sleep(0.2)
    differ = {c: (sorted(set(want[c]) - set(got.get(c, [])))[:5], sorted(set(got.get(c, [])) - set(want[c]))[:5])
              for c in want}
    raise AssertionError(f"seconds only the lake has, only the live display has: {differ}")


async def _settled(held: dict[str, dict[float, dict[str, Any]]], contract: str) -> None:
    size = -1
    for _ in range(100):
        await asyncio.sleep(0.2)
        now = len(held.get(contract, {}))
        if now == size and now > 0:
            return
        size = now
