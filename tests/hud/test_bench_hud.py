"""``spymaster bench --hud``'s arithmetic: which message a second waited for, first receipt only;
and each frame's CPU time read from a real Chromium's trace."""

from __future__ import annotations

import time

import numpy as np
import pytest

from flows.bench.hud import CHROMIUM, FLAGS, _result, animation_frames

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


# Each frame's callback spins for 30 ms of wall time, then sleeps 40 ms (setTimeout, outside the frame).
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
            browser.start_tracing(categories=["devtools.timeline"])
            page.set_content(_SPINNING_PAGE)
            page.wait_for_function("window.frames_done >= 12", polling=100, timeout=30_000)  # not in frames
            time.sleep(0.2)
            wall, cpu = animation_frames(browser.stop_tracing())
        finally:
            browser.close()
    assert len(wall) == 12 and (wall >= 29.0).all(), wall  # the page's frames only, each its 30 ms spin
    assert (wall < 10_000.0).all()  # milliseconds, not microseconds
    # time on the thread within the frame's wall time: the two clocks are read at slightly different
    # moments (a frame of a fresh clone's run showed 30.078 ms on the thread in 30.029 ms of wall time)
    assert (cpu > 0.0).all() and (cpu <= wall + 0.5).all()
