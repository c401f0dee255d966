"""``spymaster hud``: the heads-up display's server — the page at ``/``, frames over ``/ws``.

Built on aiohttp: one asyncio library that serves the static page, the WebSocket (with
heartbeats and back-pressure: ``send_bytes`` waits while the client's socket is full) and, in
the tests, the client; no second web stack beside it.

A **source** says which contracts there are, what the last N minutes of a contract look like
(the snapshot a client gets on connecting or switching contract) and pushes each new second's
frames as they become due (``ReplaySource``: the Delta tables of one session played at real
time x speed). Every WebSocket binary message is one Arrow IPC stream of frame rows
(``operators.hud.frames``); text messages are JSON (``docs/hud.md``).

Conflation: each client holds at most one unsent message, the rows not yet sent, trimmed to the
history window. A slow or stalled client therefore gets the newest rows when it next reads,
with the seconds in between when they still fit the window, and its backlog never grows.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
from aiohttp import WSMsgType, web

from connectors.delta.lake import Lake
from connectors.hud.lake import COLUMNS, GEX_COLUMNS, GEX_TABLES, TABLES, ContractInfo, session_contracts, session_rows
from connectors.hud.topics import TopicRows
from operators.errors import ConfigError
from operators.hud.frames import FRAME_SCHEMA, HUD_VERSION, frames, ipc_message
from operators.hud.live import GEX, LiveSession

log = logging.getLogger("spymaster.hud")

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "hud"
ARROW_JS = PAGE / "node_modules" / "apache-arrow" / "Arrow.es2015.min.js"
NY = ZoneInfo("America/New_York")
LOOPBACK = ("127.0.0.1", "::1", "localhost")

Publish = Callable[[str, pa.Table], None]
PUMP = web.AppKey("pump", asyncio.Task)


class FrameSource(Protocol):
    """Where frames come from: the lake (replay) or the flow's output topics (live)."""

    kind: str
    on_contracts: Callable[[], None]
    """Called when the list of contracts changes (the server sets it; a replay's never does)."""
    watched: Callable[[str], bool]
    """Whether a page shows the contract now (the server sets it): a live source builds frames
    only for those, and catches a contract up when a page asks for its history."""

    def contracts(self) -> list[ContractInfo]: ...

    def history(self, contract: str, minutes: float) -> pa.Table: ...

    def describe(self) -> dict[str, Any]: ...

    async def run(self, publish: Publish) -> None: ...


class ReplaySource:
    """One recorded session from the Delta tables, played at real time x ``speed`` from ``start``
    (a time of day in New York on the session date; default: the session's first second).

    All frames are built once, up front; playing is slicing them by time.
    """

    kind = "replay"

    def __init__(self, lake: Lake, session: date, *, speed: float = 1.0, start: dtime | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.on_contracts: Callable[[], None] = lambda: None
        self.watched: Callable[[str], bool] = lambda _contract: True  # every frame is built up front
        if speed <= 0:
            raise ConfigError(f"--speed must be > 0, got {speed}")
        self.session, self.speed, self._clock = session, speed, clock
        self._contracts = session_contracts(lake, session)
        self._frames = {c.contract: frames(session_rows(lake, session, c), c.instrument_id) for c in self._contracts}
        self._t = {name: t.column("t_ms").to_numpy() for name, t in self._frames.items()}
        firsts = [t[0] for t in self._t.values() if len(t)]
        lasts = [t[-1] for t in self._t.values() if len(t)]
        if not firsts:
            raise ConfigError(f"session {session.isoformat()} has contracts but no book seconds to play")
        self.first_ms, self.last_ms = min(firsts), max(lasts)
        self._origin_ms = self.first_ms
        if start is not None:
            wanted = datetime.combine(session, start, NY).timestamp() * 1000.0
            if not self.first_ms <= wanted <= self.last_ms:
                span = f"{_clock_time(self.first_ms)}..{_clock_time(self.last_ms)} New York time"
                raise ConfigError(f"--from {start:%H:%M} is outside session {session.isoformat()} ({span})")
            self._origin_ms = wanted
        self._origin_clock: float | None = None
        self._published_ms = self._origin_ms

    def contracts(self) -> list[ContractInfo]:
        return list(self._contracts)

    def position_ms(self) -> float:
        """The replayed instant (epoch ms): where the session is now."""
        if self._origin_clock is None:
            return self._origin_ms
        return min(self._origin_ms + (self._clock() - self._origin_clock) * self.speed * 1000.0, self.last_ms)

    def history(self, contract: str, minutes: float) -> pa.Table:
        """The last ``minutes`` up to what was last published: a snapshot and the frames after it
        neither overlap nor leave a gap."""
        return self._between(contract, self._published_ms - minutes * 60_000.0, self._published_ms)

    def describe(self) -> dict[str, Any]:
        return {"source": self.kind, "session": self.session.isoformat(), "speed": self.speed,
                "position_ms": self.position_ms(), "first_ms": self.first_ms, "last_ms": self.last_ms}

    def _between(self, contract: str, after_ms: float, upto_ms: float) -> pa.Table:
        t = self._t[contract]
        lo, hi = np.searchsorted(t, after_ms, side="right"), np.searchsorted(t, upto_ms, side="right")
        return self._frames[contract].slice(int(lo), int(hi - lo))

    async def run(self, publish: Publish) -> None:
        """Push every contract's seconds as the replayed clock passes them; returns at the end."""
        self._origin_clock = self._clock()
        while True:
            now, done = self.position_ms(), self._published_ms
            for contract in self._frames:
                rows = self._between(contract, done, now)
                if rows.num_rows:
                    publish(contract, rows)
            self._published_ms = now
            if now >= self.last_ms:
                return
            upcoming = [t[i] for t in self._t.values() if (i := int(np.searchsorted(t, now, side="right"))) < len(t)]
            wait_ms = (min(upcoming) - now) / self.speed if upcoming else 1000.0
            await asyncio.sleep(min(max(wait_ms / 1000.0, 0.001), 1.0))


class LiveSource:
    """The flow's output topics, followed from their beginning: each contract's latest session.

    Seconds go out as they become complete (``operators.hud.live``); a late episode, score,
    label or level row re-sends the seconds it changes. The contracts are those seen so far,
    most active first. Frames are built only for contracts a page shows (``watched``): every
    contract's rows are kept, and one nobody watched is brought up to date, in one pass, when a
    page asks for its history; the frames are the same either way.
    """

    kind = "live"

    def __init__(self, topics: TopicRows, schemas: dict[str, pa.Schema], *, poll_s: float = 0.25) -> None:
        self._topics, self._schemas, self._poll_s = topics, schemas, poll_s
        self._sessions: dict[str, LiveSession] = {}
        self._early: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
        self.on_contracts: Callable[[], None] = lambda: None
        self.watched: Callable[[str], bool] = lambda _contract: True

    def contracts(self) -> list[ContractInfo]:
        found = [ContractInfo(s.contract, s.instrument_id, s.tick, s.events) for s in self._sessions.values()
                 if s.tick]
        return sorted(found, key=lambda c: (-c.events, c.contract))

    def history(self, contract: str, minutes: float) -> pa.Table:
        session = self._sessions.get(contract)
        if session is not None:
            session.advance()  # nothing new for a watched contract; a contract nobody watched catches up
        if session is None or not session.sent_t_ms:
            return FRAME_SCHEMA.empty_table()
        t = session.sent_t_ms
        lo = bisect.bisect_right(t, t[-1] - minutes * 60_000.0)
        return session.sent.slice(lo)

    def describe(self) -> dict[str, Any]:
        days = sorted({s.session_date for s in self._sessions.values()})
        return {"source": self.kind, "session": days[-1] if days else None}

    async def run(self, publish: Publish) -> None:
        loop, arrived = asyncio.get_running_loop(), asyncio.Event()
        self._topics.start(lambda: loop.call_soon_threadsafe(arrived.set))
        try:
            while True:
                rows = self._topics.drain()
                if rows:
                    self._take(rows, publish)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), self._poll_s)
                arrived.clear()
        finally:
            await asyncio.to_thread(self._topics.stop)

    def _take(self, rows: list[tuple[str, dict[str, Any]]], publish: Publish) -> None:
        known = {c.contract for c in self.contracts()}
        grouped: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
        for name, row in rows:  # a chain's rows name their underlier, the contract it is written on
            key = (str(row.get("underlier" if name in GEX else "contract_id")), str(row.get("session_date")))
            grouped.setdefault(key, {}).setdefault(name, []).append(row)
        for (contract, day), tables in grouped.items():
            session = self._sessions.get(contract)
            if session is not None and day < session.session_date:
                continue  # an older session's rows: the display shows each contract's latest
            if session is None or day > session.session_date:
                first = next((rows[0] for name, rows in tables.items() if name not in GEX), None)
                if first is None:  # a chain's rows before its contract's: kept until the contract's come
                    for name, early in tables.items():
                        self._early.setdefault((contract, day), {}).setdefault(name, []).extend(early)
                    continue
                session = LiveSession(contract, day, int(first.get("instrument_id") or 0), self._schemas)
                self._sessions[contract] = session
                for name, early in self._early.pop((contract, day), {}).items():
                    session.add(name, early)
            for name in self._schemas:
                session.add(name, tables.get(name, []))
            if not self.watched(contract):
                continue
            out = session.advance()
            if out.num_rows:
                publish(contract, out)
        if {c.contract for c in self.contracts()} != known:
            self.on_contracts()


def live_schemas(gex: bool = True) -> dict[str, pa.Schema]:
    """The columns a live session keeps per table (the lake's types), book activity included, and
    the option chains' (``gex``: the display reads their topics)."""
    out = {}
    for name, columns in COLUMNS.items():
        spec = TABLES[name]
        wanted = [*columns, "event_count"] if name == "book" else columns
        out[name] = pa.schema([spec.schema.field(c) for c in wanted])
    for name, columns in GEX_COLUMNS.items() if gex else ():
        out[name] = pa.schema([GEX_TABLES[name].schema.field(c) for c in columns])
    return out


def _clock_time(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, NY).strftime("%H:%M")


@dataclass(eq=False)
class Client:
    """One connected page: its contract and its one unsent message (the conflation slot)."""

    ws: web.WebSocketResponse
    contract: str
    cap_rows: int
    pending: pa.Table | None = None
    kind: str = "frame"
    sent: int = 0
    merged: int = 0
    texts: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def say(self, text: str) -> None:
        """Queue a JSON text message: sent before any frames still unsent (the writer is the only
        task that writes to the socket)."""
        self.texts.append(text)
        self.wake.set()

    def offer(self, rows: pa.Table, kind: str) -> None:
        """Queue rows: a snapshot replaces whatever is unsent; frames join it, trimmed to the window."""
        if kind == "snapshot" or self.pending is None:
            self.pending, self.kind = rows, kind
        else:
            joined = pa.concat_tables([self.pending, rows])
            self.pending = joined.slice(max(0, joined.num_rows - self.cap_rows))
            self.merged += 1
        self.wake.set()

    def take(self) -> tuple[pa.Table, str] | None:
        pending, kind = self.pending, self.kind
        self.pending, self.kind = None, "frame"
        return None if pending is None else (pending, kind)

    def stats(self) -> dict[str, Any]:
        return {"contract": self.contract, "pending_messages": int(self.pending is not None),
                "pending_rows": 0 if self.pending is None else self.pending.num_rows, "sent": self.sent,
                "merged": self.merged}


@dataclass(frozen=True, slots=True)
class HudSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    history_minutes: float = 15.0


class Hud:
    """The server's state: the source, the connected clients, and the routes."""

    def __init__(self, source: FrameSource, settings: HudSettings) -> None:
        self.source, self.settings = source, settings
        self.clients: set[Client] = set()
        self.finished = False
        self._last_message: tuple[pa.Table, str, bytes] | None = None
        source.on_contracts = self._contracts_changed
        source.watched = self._watched

    @property
    def cap_rows(self) -> int:
        return max(1, int(self.settings.history_minutes * 60))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/vendor/arrow.js", self._arrow)
        app.router.add_static("/static/", PAGE / "static", show_index=False)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)
        return app

    def publish(self, contract: str, rows: pa.Table) -> None:
        for client in self.clients:
            if client.contract == contract:
                client.offer(rows, "frame")

    def _watched(self, contract: str) -> bool:
        return any(client.contract == contract for client in self.clients)

    def hello(self, client: Client) -> str:
        return json.dumps({"type": "hello", "version": HUD_VERSION, **self.source.describe(),
                           "history_minutes": self.settings.history_minutes, "contract": client.contract,
                           "contracts": self._listing(self.source.contracts())})

    def _contracts_changed(self) -> None:
        """New contracts (live): every page gets the list; a page that had none gets the most active."""
        contracts = self.source.contracts()
        listing = json.dumps({"type": "contracts", "contracts": self._listing(contracts)})
        for client in self.clients:
            client.say(listing)
            if not client.contract and contracts:
                client.contract = contracts[0].contract
                client.say(json.dumps({"type": "contract", "contract": client.contract}))
                client.offer(self.source.history(client.contract, self.settings.history_minutes), "snapshot")

    @staticmethod
    def _listing(contracts: list[ContractInfo]) -> list[dict[str, Any]]:
        return [{"contract": c.contract, "instrument_id": c.instrument_id, "tick": c.tick / 1e9, "events": c.events}
                for c in contracts]

    async def _start(self, app: web.Application) -> None:
        app[PUMP] = asyncio.create_task(self._pump())

    async def _stop(self, app: web.Application) -> None:
        app[PUMP].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app[PUMP]
        for client in list(self.clients):
            await client.ws.close()

    async def _pump(self) -> None:
        try:
            await self.source.run(self.publish)
            self.finished = True
        except Exception:  # the page shows the connection; the log says why the frames stopped
            log.exception("the HUD's %s source stopped", self.source.kind)
            raise

    async def _page(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE / "index.html")

    async def _arrow(self, _request: web.Request) -> web.StreamResponse:
        if not ARROW_JS.exists():
            raise web.HTTPInternalServerError(text=f"{ARROW_JS.relative_to(ROOT)} is missing: run `make` (npm ci "
                                                   "--prefix hud installs apache-arrow from the lockfile)")
        return web.FileResponse(ARROW_JS)

    async def _stats(self, _request: web.Request) -> web.Response:
        return web.json_response({**self.source.describe(), "finished": self.finished,
                                  "clients": [c.stats() for c in self.clients]})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        contracts = self.source.contracts()
        client = Client(ws, contracts[0].contract if contracts else "", self.cap_rows)
        self.clients.add(client)
        writer = asyncio.create_task(self._write(client))
        try:
            client.say(self.hello(client))
            if client.contract:
                client.offer(self.source.history(client.contract, self.settings.history_minutes), "snapshot")
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(client, message.data)
        finally:
            self.clients.discard(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    def _on_text(self, client: Client, text: str) -> None:
        try:
            wanted = json.loads(text).get("contract")
        except (ValueError, AttributeError):
            wanted = None
        names = [c.contract for c in self.source.contracts()]
        if wanted not in names:
            client.say(json.dumps({"type": "error", "message": f"unknown contract {wanted!r}; this session has "
                                   f"{', '.join(names)}", "contracts": names}))
            return
        client.contract = wanted
        client.say(json.dumps({"type": "contract", "contract": wanted}))
        client.offer(self.source.history(wanted, self.settings.history_minutes), "snapshot")

    async def _write(self, client: Client) -> None:
        while not client.ws.closed:
            await client.wake.wait()
            client.wake.clear()
            while client.texts:
                await client.ws.send_str(client.texts.pop(0))
            taken = client.take()
            if taken is None:
                continue
            rows, kind = taken
            await client.ws.send_bytes(self._message(rows, kind))
            client.sent += 1

    def _message(self, rows: pa.Table, kind: str) -> bytes:
        """The IPC bytes of ``rows``, made once for every page sent the same rows (a published
        second goes to every page on its contract as the same table)."""
        cached = self._last_message
        if cached is not None and cached[0] is rows and cached[1] == kind:
            return cached[2]
        message = ipc_message(rows, kind)
        self._last_message = (rows, kind, message)
        return message


def serve(source: FrameSource, settings: HudSettings, *, announce: Callable[[str], None] = print) -> None:
    """Run until Ctrl-C or SIGTERM; the first line announced is the page's URL (the bound port)."""
    if settings.host not in LOOPBACK:
        log.warning("the HUD listens on %s: anyone who can reach it sees the frames (it has no authentication)",
                    settings.host)
    asyncio.run(_serve(Hud(source, settings), settings, announce))


async def _serve(hud: Hud, settings: HudSettings, announce: Callable[[str], None]) -> None:
    runner = web.AppRunner(hud.app(), handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        announce(f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/")
        await stop.wait()
    finally:
        await runner.cleanup()
