"""``spymaster bench --hud``'s arithmetic: which message a second waited for, first receipt only."""

from __future__ import annotations

import numpy as np

from flows.bench.hud import _result

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

    bench = _result(seen, published, (t0, t0 + S), 10.0, 1.0, 2, cpu=0.5)

    assert bench.frames_received == 2
    assert bench.frame_latency.n == 2
    assert bench.frame_latency.p50_ms == round(float(np.percentile([40.0, 7.5], 50)), 1)
    assert bench.render.n == 3 and bench.render.p50_ms == 2.0
    assert bench.server_cpu_per_page == 0.25
