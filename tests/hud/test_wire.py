"""The WebSocket as a program sees it: JSON text messages, Arrow IPC frames decoded with
``pyarrow.ipc``, contract selection, and conflation for a client that never reads."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import date
from datetime import time as dtime
from typing import Any

import aiohttp
import numpy as np
import pyarrow as pa
from aiohttp.test_utils import TestServer

from connectors.delta.lake import Lake
from connectors.hud.lake import session_contracts, session_rows
from flows.services.hud import Hud, HudSettings, ReplaySource
from operators.hud.frames import FRAME_SCHEMA, frames
from tests.hud.conftest import same_frames

Body = Callable[[Hud, TestServer], Awaitable[None]]


def _serve(source: ReplaySource, settings: HudSettings, body: Body) -> None:
    async def main() -> None:
        hud = Hud(source, settings)
        server = TestServer(hud.app(), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            await asyncio.wait_for(body(hud, server), timeout=120)
        finally:
            await server.close()

    asyncio.run(main())


def _decode(message: aiohttp.WSMessage) -> tuple[pa.Table, dict[bytes, bytes]]:
    assert message.type == aiohttp.WSMsgType.BINARY, message
    reader = pa.ipc.open_stream(message.data)
    return reader.read_all(), dict(reader.schema.metadata or {})


def _text(message: aiohttp.WSMessage) -> dict[str, Any]:
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return dict(json.loads(message.data))


def test_hello_snapshot_frames_and_contract_choice(hud_lake: Lake, hud_session: date) -> None:
    contracts = session_contracts(hud_lake, hud_session)
    want = {c.contract: frames(session_rows(hud_lake, hud_session, c), c.instrument_id) for c in contracts}
    source = ReplaySource(hud_lake, hud_session, speed=240.0, start=dtime(9, 40))
    seen: dict[str, Any] = {}

    async def body(hud: Hud, server: TestServer) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/ws")) as ws:
            seen["hello"] = _text(await ws.receive())
            seen["snapshot"] = _decode(await ws.receive())
            got: list[pa.Table] = []
            while sum(t.num_rows for t in got) < 60:
                table, meta = _decode(await ws.receive())
                assert meta[b"kind"] == b"frame"
                got.append(table)
            seen["frames"] = pa.concat_tables(got)
            other = contracts[1].contract
            await ws.send_str(json.dumps({"contract": other}))
            message = await ws.receive()
            while message.type == aiohttp.WSMsgType.BINARY:  # frames of the first contract still in flight
                message = await ws.receive()
            seen["switched"] = _text(message)
            seen["other"] = _decode(await ws.receive())
            await ws.send_str(json.dumps({"contract": "NOPE"}))
            message = await ws.receive()
            while message.type == aiohttp.WSMsgType.BINARY:
                message = await ws.receive()
            seen["error"] = _text(message)

    _serve(source, HudSettings(history_minutes=5.0), body)

    hello = seen["hello"]
    assert hello["type"] == "hello" and hello["version"] == "hud.v2" and hello["source"] == "replay"
    assert [c["contract"] for c in hello["contracts"]] == [c.contract for c in contracts]
    assert [c["events"] for c in hello["contracts"]] == sorted((c.events for c in contracts), reverse=True)
    first = contracts[0].contract
    assert hello["contract"] == first

    snapshot, meta = seen["snapshot"]
    assert meta == {b"version": b"hud.v2", b"kind": b"snapshot"}
    assert snapshot.schema.remove_metadata().equals(FRAME_SCHEMA.remove_metadata())
    t = want[first]["t_ms"].to_numpy()
    lo = int(np.searchsorted(t, snapshot["t_ms"][0].as_py()))
    assert 240 < snapshot.num_rows <= 300  # the last 5 minutes
    assert not same_frames(snapshot, want[first].slice(lo, snapshot.num_rows))

    got = seen["frames"]  # a client that keeps up gets every second after the snapshot, in order
    start = lo + snapshot.num_rows
    assert not same_frames(got, want[first].slice(start, got.num_rows))

    assert seen["switched"] == {"type": "contract", "contract": contracts[1].contract}
    other, meta = seen["other"]
    assert meta[b"kind"] == b"snapshot" and other.num_rows > 0
    assert set(other["contract"].to_pylist()) == {contracts[1].contract}
    t2 = want[contracts[1].contract]["t_ms"].to_numpy()
    lo2 = int(np.searchsorted(t2, other["t_ms"][0].as_py()))
    assert not same_frames(other, want[contracts[1].contract].slice(lo2, other.num_rows))

    assert seen["error"]["type"] == "error" and "NOPE" in seen["error"]["message"]
    assert seen["error"]["contracts"] == [c.contract for c in contracts]


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads a byte."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def test_a_client_that_never_reads_holds_at_most_one_message_of_the_window(hud_lake: Lake, hud_session: date) -> None:
    source = ReplaySource(hud_lake, hud_session, speed=1800.0, start=dtime(9, 30))
    settings = HudSettings(history_minutes=2.0)
    seen: dict[str, Any] = {"pending": [], "stalled": None}

    async def body(hud: Hud, server: TestServer) -> None:
        assert server.port is not None
        stalled = await asyncio.to_thread(_stalled_client, server.port)
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/ws")) as ws:
                await ws.receive()  # hello
                reading = 0
                while True:
                    message = await ws.receive()
                    if message.type == aiohttp.WSMsgType.BINARY:
                        reading += pa.ipc.open_stream(message.data).read_all().num_rows
                    if len(hud.clients) == 2:
                        stuck = min(hud.clients, key=lambda c: c.sent)  # the reader has been sent far more
                        seen["pending"].append(stuck.stats())
                        if stuck.merged >= 200 or hud.finished:
                            break
                seen["reading"] = reading
        finally:
            stalled.close()

    _serve(source, settings, body)

    pending = seen["pending"]
    # 200 merges: rows kept arriving while its writer was stuck in a send the socket would not take
    assert pending and pending[-1]["merged"] >= 200
    assert max(p["pending_messages"] for p in pending) == 1
    assert max(p["pending_rows"] for p in pending) <= 120  # never more than the 2-minute window
    assert seen["reading"] > 1000  # and the client that reads was not held up by it
