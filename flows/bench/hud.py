"""``spymaster bench --hud``: the heads-up display on the live path, measured in a real browser.

As ``spymaster bench --live`` (``flows.bench.live``): one simulated day on librdkafka's mock
cluster, the session up to 09:30 ET published as fast as the broker keeps, then the first
``window_minutes`` of RTH at real time x ``speed`` while the flow tails the topic in its own
process, here with the eight tables a frame is made of teed to topics. ``spymaster hud`` follows
those topics in a process of its own; ``pages`` headless Chromium pages (Debian's) show its
default contract.

- *publish -> frame in the page*: for each second of the window the first page received, the
  time it arrived (the page's clock, the same wall clock) minus the publish time of the message
  that let that second close (the contract's first message holding a record with
  ``ts_recv >= `` the second's end, as the live bench counts Silver rows);
- *render*: the page's own time to draw each frame (``window.hud.renderMs``: heatmap, ladder,
  setup and bands), wall time as the page's clock sees it: the target's measure;
- *render CPU*: the same frames' CPU time on the page's main thread, from Chromium's own trace
  (``FireAnimationFrame`` events, whose callback is the page's one ``render``; ``tdur`` is thread
  time). On two cores shared with the flow, the broker, the publisher and the server, a frame that
  is descheduled half-way counts whole in wall time; the CPU time is what the page itself costs.
- *server CPU per page*: the HUD process's CPU time over the window divided by the window's
  wall time and by the pages connected.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_MBO
from connectors.hud.lake import TABLES
from flows.bench.latency import Percentiles
from flows.bench.live import (
    MOCK_FETCH_WAIT_MS,
    ROOT,
    _Ahead,
    _cause_ns,
    _DurableRows,
    _FlowProcess,
    _Stamps,
    _wait_durable,
    _window,
    split_day,
)
from flows.config import RECOVERY_EPOCH_S

FRAME_P99_TARGET_MS = 250.0
CAUGHT_UP_S = 60
"""The page has caught up with the warm-up once it shows a second this close to the window's first."""
RENDER_P99_TARGET_MS = 8.0
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]


@dataclass(frozen=True, slots=True)
class HudBench:
    speed: float
    window_minutes: float
    pages: int
    contract: str
    frames_received: int
    frame_latency: Percentiles
    render: Percentiles
    render_cpu: Percentiles
    """The pages' main-thread CPU time per frame (Chromium's trace)."""
    server_cpu_per_page: float
    """Share of one core."""

    def meets_target(self) -> bool:
        return self.frame_latency.p99_ms < FRAME_P99_TARGET_MS and self.render.p99_ms < RENDER_P99_TARGET_MS

    def as_json(self) -> str:
        return json.dumps(asdict(self) | {"meets_target": self.meets_target()}, default=str)


def animation_frames(trace: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Each animation frame's wall time and main-thread CPU time (ms) in a Chromium trace of the
    ``devtools.timeline`` category; the frames of every page traced."""
    parsed = json.loads(trace)
    events = parsed["traceEvents"] if isinstance(parsed, dict) else parsed
    frames = [(e["dur"], e["tdur"]) for e in events
              if e.get("name") == "FireAnimationFrame" and e.get("ph") == "X" and "tdur" in e and "dur" in e]
    out = np.array(frames, np.float64).reshape(-1, 2) / 1000.0  # µs -> ms
    return out[:, 0], out[:, 1]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_hud(day_files: list[Path], *, speed: float = 10.0, window_minutes: float = 20.0, pages: int = 2,
                tracking_uri: str, say: Callable[[str], None] | None = None) -> HudBench:
    from playwright.sync_api import sync_playwright

    from flows.bench.scoring import registry_for_bench
    from flows.services.broker import running_mock_cluster
    from flows.services.local_process import free_port, listening_process
    from replay.publish import schedule, send

    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: `make test` (or apt-get install chromium) installs Debian's Chromium"
        raise RuntimeError(msg)
    say = say or (lambda line: print(line, file=sys.stderr))
    warm, measured = split_day(day_files, window_minutes)
    window = _window(measured)
    scratch = Path(tempfile.mkdtemp(prefix="spymaster-bench-hud-"))
    topics = {field: f"hud_{field}" for field in TABLES}
    outputs = ",".join(f"{spec.name}={topics[field]}" for field, spec in TABLES.items())
    try:
        with registry_for_bench("ES_MODEL", say, tracking_uri) as (uri, _version, _model), \
                running_mock_cluster(scratch / "mock.log") as broker:
            broker.create_topic("mbo", 4)
            for topic in topics.values():
                broker.create_topic(topic, 1)
            flow = _FlowProcess(f"kafka://{broker.bootstrap}/mbo?fetch_wait_ms={MOCK_FETCH_WAIT_MS}",
                                scratch / "lake", scratch, broker.bootstrap, "", "", RECOVERY_EPOCH_S * 1000, uri, {},
                                outputs=outputs)
            try:
                bronze = _DurableRows(Lake(str(scratch / "lake")), BRONZE_MBO)
                ahead = None if broker.kept_bytes is None else _Ahead(bronze, broker.kept_bytes, flow)
                say("publishing the session up to 09:30 ET at full speed ...")
                send(schedule(warm, speed=None), bootstrap=broker.bootstrap, topic="mbo", dataset=warm.dataset,
                     on_progress=ahead)
                _wait_durable(bronze, len(warm.by_schema["mbo"]), flow, timeout=600)
                port = free_port()
                hud_env = {**os.environ, "SPYMASTER_OUTPUT_BOOTSTRAP": broker.bootstrap,
                           "SPYMASTER_OUTPUT_TOPICS": outputs}
                cmd = [sys.executable, "-m", "flows.cli", "hud", "--port", str(port)]
                with listening_process(cmd, port, scratch / "hud.log", "the HUD", cwd=ROOT, env=hud_env) as hud_pid, \
                        sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                    opened = [browser.new_page(viewport={"width": 1340, "height": 880}) for _ in range(pages)]
                    for page in opened:
                        page.goto(f"http://127.0.0.1:{port}/")
                    # the display reads its topics from the beginning: the measured window starts once the
                    # page shows the warm-up's last minute, not while the server still works through the
                    # warm-up's rows (seconds measured then would wait behind that backlog)
                    caught_up_ms = window[0] / 1e6 - CAUGHT_UP_S * 1000
                    opened[0].wait_for_function(f"window.hud && hud.last && hud.last.t_ms >= {caught_up_ms}",
                                                timeout=600_000)
                    say(f"publishing {window_minutes:g} minutes of RTH at x{speed:g} to {pages} page(s) ...")
                    stamps = _Stamps()
                    publisher = threading.Thread(target=send, daemon=True, kwargs={
                        "messages": schedule(measured, speed=speed), "bootstrap": broker.bootstrap, "topic": "mbo",
                        "dataset": measured.dataset, "on_sent": stamps})
                    cpu0, wall0 = _cpu_s(hud_pid), time.monotonic()
                    browser.start_tracing(categories=["devtools.timeline"])
                    publisher.start()
                    while publisher.is_alive():
                        flow.check()
                        publisher.join(1.0)
                    time.sleep(3.0)  # the last seconds through the flow, the HUD and the page
                    cpu = (_cpu_s(hud_pid) - cpu0) / (time.monotonic() - wall0)
                    _, render_cpu = animation_frames(browser.stop_tracing())
                    seen = opened[0].evaluate("({contract: hud.contract, received: hud.receivedAt, "
                                              "render: hud.renderMs, hello: hud.hello})")
                    browser.close()
            finally:
                flow.stop()
        return _result(seen, stamps.published(), window, speed, window_minutes, pages, cpu, render_cpu)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _result(seen: dict[str, Any], published: dict[int, tuple[np.ndarray, np.ndarray]], window: tuple[int, int],
            speed: float, window_minutes: float, pages: int, cpu: float, render_cpu: np.ndarray) -> HudBench:
    contract = seen["contract"]
    iid = next(int(c["instrument_id"]) for c in seen["hello"]["contracts"] if c["contract"] == contract) \
        if seen["hello"]["contracts"] else 0
    first: dict[int, float] = {}
    for t_ms, at_ms in seen["received"]:
        first.setdefault(int(round(t_ms)) * 1_000_000, at_ms)
    t = np.array([ts for ts in first if window[0] <= ts <= window[1]], np.int64)
    latencies = np.zeros(0)
    if len(t) and iid:
        cause = _cause_ns(published, np.full(len(t), iid, np.int64), t)
        got = np.array([first[int(ts)] * 1e6 for ts in t])
        latencies = (got - cause)[cause >= 0]
    render = np.array(seen["render"], dtype=np.float64) * 1e6  # ms -> ns, as Percentiles takes
    return HudBench(speed, window_minutes, pages, contract, len(t), Percentiles.of(latencies),
                    Percentiles.of(render, digits=2), Percentiles.of(render_cpu * 1e6, digits=2),
                    round(cpu / max(pages, 1), 4))


def print_hud(bench: HudBench, *, as_json: bool) -> None:
    if as_json:
        print(bench.as_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"spymaster bench --hud: {bench.window_minutes:g} min of RTH at x{bench.speed:g}, "
                        f"{bench.pages} page(s), contract {bench.contract}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    fmt = "{:,.2f} / {:,.2f} / {:,.2f}"
    table.add_row("seconds received by the first page", f"{bench.frames_received:,}", "")
    table.add_row("publish -> frame in the page p50/p95/p99 ms", fmt.format(
        bench.frame_latency.p50_ms, bench.frame_latency.p95_ms, bench.frame_latency.p99_ms),
        f"p99 < {FRAME_P99_TARGET_MS:.0f}")
    table.add_row("render per frame in the page p50/p95/p99 ms", fmt.format(
        bench.render.p50_ms, bench.render.p95_ms, bench.render.p99_ms), f"p99 < {RENDER_P99_TARGET_MS:.0f}")
    table.add_row("render per frame, the page's CPU (Chromium trace) p50/p95/p99 ms", fmt.format(
        bench.render_cpu.p50_ms, bench.render_cpu.p95_ms, bench.render_cpu.p99_ms), "")
    table.add_row("HUD server CPU per page (share of one core)", f"{bench.server_cpu_per_page:.1%}", "")
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    console.print(f"targets: {'met' if bench.meets_target() else 'NOT met'}")
