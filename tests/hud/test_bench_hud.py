"""``spymaster bench --hud``'s arithmetic: which message a second waited for, first receipt only;
and each frame's CPU time read from a real Chromium's trace."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from flows.bench.hud import CHROMIUM, FLAGS, _result, foreground_renderers, render_cpu_ms

S = 1_000_000_000


def test_latency_is_first_receipt_minus_the_publish_of_the_message_that_closed_the_second() -> None:
    t0 = 1_762_266_600 * S  # a second's end, in ns
    # instrument 7's messages: highest ts_recv in each, and when each was published (ns)
    published = {7: (np.array([t0 - S // 2, t0 + S // 10, t0 + S + 5]), np.array([100 * S, 101 * S, 102 * S]))}
    received = [[t0 / 1e6, 101 * 1000 + 40.0],  # second t0 closed by the 2nd message: 40 ms after it
                [t0 / 1e6, 101 * 1000 + 900.0],  # sent again later: the first receipt counts
                [(t0 + S) / 1e6, 102 * 1000 + 7.5]]  # closed by the 3rd: 7.5 ms
    seen = {"contract": "ESZ5", "received": received, "render": [1.0, 2.0, 3.0],
            "hello": {"contracts": [{"contract": "ESZ5", "instrument_id": 7}]}}

    bench = _result(seen, published, (t0, t0 + S), 10.0, 1.0, 2, cpu=0.5, render_cpu=np.array([0.5, 0.7]))

    assert bench.frames_received == 2
    assert bench.frame_latency.n == 2
    assert bench.frame_latency.p50_ms == round(float(np.percentile([40.0, 7.5], 50)), 1)
    assert bench.render.n == 3 and bench.render.p50_ms == 2.0
    assert bench.server_cpu_per_page == 0.25
    assert bench.render_cpu.n == 2 and bench.render_cpu.p50_ms == 0.6


# Each frame's callback spins for 30 ms of CPU, then sleeps 40 ms (setTimeout, outside the frame).
_SPINNING_PAGE = """<script>
window.frames_done = 0;
function frame() {
  const until = performance.now() + 30;
  while (performance.now() < until) {}
  window.frames_done += 1;
  if (window.frames_done < 12) setTimeout(() => requestAnimationFrame(frame), 40);
}
requestAnimationFrame(frame);
</script>"""


@pytest.mark.integration
def test_each_animation_frame_s_cpu_time_comes_from_chromium_s_trace() -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: the README's test command (make test) installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto("data:text/html,<p>a page</p>")
            foreground_renderers(os.getpid())  # at Chromium's nice 5 a spin is descheduled for much of its time
            browser.start_tracing(categories=["devtools.timeline"])
            page.set_content(_SPINNING_PAGE)
            page.wait_for_function("window.frames_done >= 12", timeout=30_000)
            time.sleep(0.2)
            cpu = render_cpu_ms(browser.stop_tracing())
        finally:
            browser.close()
    spun = cpu[cpu >= 5.0]  # the driver's own frames (wait_for_function polls in them) take about 0.1 ms
    assert len(spun) == 12, cpu
    assert np.median(spun) > 15.0 and spun.max() < 200.0  # milliseconds of thread time (not microseconds)


def _renderer_nice() -> list[int]:
    """The nice value of every renderer thread running now (this test's browser only)."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"--type=renderer" not in (proc / "cmdline").read_bytes():
                continue
            out += [int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in (proc / "task").iterdir()]
        except OSError:
            continue
    return out


@pytest.mark.integration
def test_the_bench_gives_headless_pages_a_foreground_tab_s_priority() -> None:
    """Headless Chromium puts its pages' renderers at nice 5; the bench sets them to 0 (as root)."""
    from playwright.sync_api import sync_playwright

    assert os.geteuid() == 0, "the test machine runs as root (the bench's renice needs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto("data:text/html,<p>a page</p>")
            before = _renderer_nice()
            raised, refused = foreground_renderers(os.getpid())
            after = _renderer_nice()
        finally:
            browser.close()
    assert max(before) > 0 and raised == sum(n > 0 for n in before) and refused == 0
    assert after and max(after) == 0  # threads Chromium raised above normal (-8) are left as they are
    assert min(after) == min(before)
