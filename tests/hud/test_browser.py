"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

``spymaster hud`` replays the sample in a process of its own; the page draws it; the values it
drew equal the lake's frames for that second; the canvas is not blank; the selector switches
contract; the server is killed and restarted on the same port and the page reconnects by itself
and resumes from the snapshot. The screenshot is a test artifact (``build/test-artifacts/``),
and with ``SPYMASTER_DOC_PICTURES=1`` it is also the README's picture (``docs/img/hud.png``).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.delta.lake import Lake
from connectors.hud.lake import session_contracts, session_rows
from flows.bench.hud import CHROMIUM, FLAGS
from flows.services.local_process import free_port, listening_process
from operators.hud.frames import frames

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
PICTURE = ROOT / "docs" / "img" / "hud.png"
pytestmark = pytest.mark.integration


@pytest.fixture(name="browser", scope="module")
def fixture_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: the README's test command (make test) installs it"
    with sync_playwright() as p:  # a fresh profile in a temporary directory for every launch
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


def _hud_cmd(lake: Lake, day: date, port: int) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "hud", "--lake", lake.root, "--session", day.isoformat(),
            "--speed", "20", "--from", "09:50", "--port", str(port), "--history-minutes", "10"]


def _drawn(page: Any) -> dict[str, Any]:
    """What the page last drew, as plain values."""
    return dict(page.evaluate("""() => {
        const r = hud.last;
        return {t_ms: r.t_ms, contract: r.contract, mid: r.mid, best_bid: r.best_bid, best_ask: r.best_ask,
                spot: r.spot, bid_px_0: r.ladder.bid_px[0], bid_sz_0: r.ladder.bid_sz[0],
                ask_px_0: r.ladder.ask_px[0], ask_sz_0: r.ladder.ask_sz[0], wall: Array.from(r.wall),
                vacuum: Array.from(r.vacuum), level_PDH: r.levels.PDH.price, level_PDL: r.levels.PDL.price,
                ep_episode_id: r.ep_episode_id, ep_p_break: r.ep_p_break, ep_outcome: r.ep_outcome,
                nn_count: r.nn_count, frames: hud.frames, contractShown: document.body.dataset.contract,
                ladderTop: document.querySelector('#ladder tbody tr:nth-child(11) td:nth-child(3)').textContent};
    }"""))


def _canvas_stats(page: Any) -> dict[str, float]:
    return dict(page.evaluate("""() => {
        const c = document.getElementById('heatmap');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0; const colours = new Set();
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] !== 6 || d[i + 1] !== 8 || d[i + 2] !== 11) lit += 1;
            if (i % 64 === 0) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        return {lit: lit / (d.length / 4), colours: colours.size};
    }"""))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.slow
def test_the_page_draws_the_lakes_frames_switches_and_reconnects(
        browser: Any, hud_lake: Lake, hud_session: date, tmp_path: Path) -> None:
    contracts = session_contracts(hud_lake, hud_session)
    want = {c.contract: frames(session_rows(hud_lake, hud_session, c), c.instrument_id).to_pylist()
            for c in contracts}
    at = {name: {r["t_ms"]: r for r in rows} for name, rows in want.items()}
    port = free_port()
    page = browser.new_page(viewport={"width": 1340, "height": 880})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    first, other = contracts[0].contract, contracts[1].contract

    with listening_process(_hud_cmd(hud_lake, hud_session, port), port, tmp_path / "hud-1.log", "the HUD",
                           cwd=ROOT) as pid:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("window.hud && hud.state === 'live' && hud.frames > 700", timeout=60_000)
        drawn = _drawn(page)
        row = at[first][drawn["t_ms"]]
        assert drawn["contract"] == drawn["contractShown"] == first
        for key in ("mid", "best_bid", "best_ask", "spot", "bid_px_0", "bid_sz_0", "ask_px_0", "ask_sz_0",
                    "level_PDH", "level_PDL", "ep_p_break", "nn_count"):
            assert _same(drawn[key], row[key]), key
        assert drawn["wall"] == [row[f"wall_{j:02d}"] for j in range(41)]
        assert drawn["vacuum"] == [row[f"vacuum_{j:02d}"] for j in range(41)]
        assert (drawn["ep_episode_id"], drawn["ep_outcome"]) == (row["ep_episode_id"], row["ep_outcome"])
        assert drawn["ladderTop"] == f"{row['bid_px_0']:.2f}"  # the best bid's row of the ladder
        canvas = _canvas_stats(page)
        assert canvas["lit"] > 0.15 and canvas["colours"] > 30, canvas

        page.select_option("#contract", other)
        page.wait_for_function(f"hud.contract === '{other}' && hud.last && hud.last.contract === '{other}'",
                               timeout=30_000)
        drawn = _drawn(page)
        assert _same(drawn["mid"], at[other][drawn["t_ms"]]["mid"])
        snapshots = page.evaluate("hud.snapshots")
        os.kill(pid, signal.SIGKILL)
        page.wait_for_function("hud.state === 'reconnecting'", timeout=30_000)

    with listening_process(_hud_cmd(hud_lake, hud_session, port), port, tmp_path / "hud-2.log", "the HUD",
                           cwd=ROOT):
        page.wait_for_function(f"hud.state === 'live' && hud.snapshots > {snapshots} && hud.rows.length > 500",
                               timeout=60_000)
        page.select_option("#contract", first)
        page.wait_for_function(f"hud.last && hud.last.contract === '{first}' && hud.rows.length > 600",
                               timeout=30_000)
        drawn = _drawn(page)
        assert drawn["contract"] == first and _same(drawn["mid"], at[first][drawn["t_ms"]]["mid"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hud.png"))
    assert not errors, errors
    if os.environ.get("SPYMASTER_DOC_PICTURES") == "1":
        PICTURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "hud.png", PICTURE)


def test_the_page_draws_the_chains_gamma_exposure(browser: Any, chain_lake: Lake, tmp_path: Path) -> None:
    """On a lake with ES options the GEX panel shows the frame's net GEX, zero gamma and walls,
    draws a bar per strike, and the heatmap draws the zero-gamma line when it is in view."""
    from connectors.hud.lake import sessions

    day = sessions(chain_lake)[-1]
    contract = session_contracts(chain_lake, day)[0]
    at = {r["t_ms"]: r for r in frames(session_rows(chain_lake, day, contract), contract.instrument_id).to_pylist()}
    port = free_port()
    page = browser.new_page(viewport={"width": 1340, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with listening_process(_hud_cmd(chain_lake, day, port), port, tmp_path / "hud.log", "the HUD", cwd=ROOT):
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("window.hud && hud.state === 'live' && hud.last && Number.isFinite(hud.last.gex_net_bn)"
                               " && hud.frames > 200", timeout=60_000)
        drawn = dict(page.evaluate("""() => {
            const r = hud.last, c = document.getElementById('gex');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let green = 0, red = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (d[i] === 0x3f && d[i + 1] === 0xb6 && d[i + 2] === 0x8b) green += 1;
                if (d[i] === 0xe0 && d[i + 1] === 0x55 && d[i + 2] === 0x5f) red += 1;
            }
            return {t_ms: r.t_ms, net: r.gex_net_bn, zero: r.gex_zero, call_wall: r.gex_call_wall,
                    strikes: Array.from(r.gex_strike), bn: Array.from(r.gex_bn), bars: green + red,
                    header: document.getElementById('gex-net').textContent,
                    walls: document.getElementById('gex-walls').textContent};
        }"""))
        page.screenshot(path=str(tmp_path / "hud-gex.png"))
    row = at[drawn["t_ms"]]
    assert _same(drawn["net"], row["gex_net_bn"]) and _same(drawn["zero"], row["gex_zero"])
    assert drawn["strikes"] == [row[f"gex_strike_{k:02d}"] for k in range(21)]
    assert drawn["bn"] == [row[f"gex_bn_{k:02d}"] for k in range(21)]
    assert drawn["header"].startswith(f"net {'+' if row['gex_net_bn'] >= 0 else ''}{row['gex_net_bn']:.2f}bn")
    assert drawn["walls"] == f"call wall {row['gex_call_wall']:.2f}  put wall {row['gex_put_wall']:.2f}"
    assert drawn["bars"] > 200  # a bar per strike in the long- or short-gamma colour
    assert not errors, errors
