"""Synthetic MBO streams for the book tests and the kernel benchmark (test helper, not product)."""

from __future__ import annotations

import numpy as np
from numba import njit

from operators.records import MBO_DTYPE

ES_TICK = 250_000_000


@njit(cache=True)
def _fill(n, seed, tick, action, side, order_id, price, size, flags, ts_recv):
    np.random.seed(seed)
    live = np.empty(n + 1, np.int64)
    live_px = np.empty(n + 1, np.int64)
    live_sz = np.empty(n + 1, np.int64)
    live_sd = np.empty(n + 1, np.uint8)
    nlive = 0
    next_id = np.int64(1) << 40
    mid = 20_000
    ts = np.int64(1_700_000_000) * 1_000_000_000
    ts_recv[0] = ts
    action[0] = 82
    side[0] = 78
    flags[0] = 32
    price[0] = np.iinfo(np.int64).max
    i = 1
    while i < n:
        ts += np.random.randint(1, 2000)
        r = np.random.random()
        if i < 2000 or nlive < 50 or (r < 0.45 and nlive < 4000):
            b = np.random.random() < 0.5
            off = np.random.randint(6, 45)
            px = (mid - off if b else mid + off) * tick
            next_id += np.random.randint(1, 1000)
            live[nlive] = next_id
            live_px[nlive] = px
            live_sz[nlive] = np.random.randint(1, 50)
            live_sd[nlive] = 66 if b else 65
            action[i] = 65
            side[i] = live_sd[nlive]
            order_id[i] = next_id
            price[i] = px
            size[i] = live_sz[nlive]
            nlive += 1
            flags[i] = 32 if i < 2000 else 0
        elif r < 0.80:
            j = np.random.randint(0, nlive)
            action[i] = 67
            side[i] = live_sd[j]
            order_id[i] = live[j]
            price[i] = live_px[j]
            if np.random.random() < 0.3 and live_sz[j] > 1:
                c = np.random.randint(1, live_sz[j])
                size[i] = c
                live_sz[j] -= c
            else:
                size[i] = live_sz[j]
                nlive -= 1
                live[j] = live[nlive]
                live_px[j] = live_px[nlive]
                live_sz[j] = live_sz[nlive]
                live_sd[j] = live_sd[nlive]
        elif r < 0.95:
            j = np.random.randint(0, nlive)
            action[i] = 77
            side[i] = live_sd[j]
            order_id[i] = live[j]
            if np.random.random() < 0.5:
                off = np.random.randint(6, 45)
                live_px[j] = (mid - off if live_sd[j] == 66 else mid + off) * tick
            live_sz[j] = np.random.randint(1, 50)
            price[i] = live_px[j]
            size[i] = live_sz[j]
        else:
            action[i] = 84
            side[i] = 66 if np.random.random() < 0.5 else 65
            price[i] = mid * tick
            size[i] = np.random.randint(1, 10)
            if np.random.random() < 0.1:
                mid = min(20_005, max(19_995, mid + np.random.randint(-1, 2)))
        if i >= 2000 and np.random.random() < 0.7:
            flags[i] |= 128
        ts_recv[i] = ts
        i += 1
    flags[1999] |= 128
    flags[n - 1] |= 128


def synthetic_stream(n: int, seed: int = 0, tick: int = ES_TICK) -> np.ndarray:
    """``n`` MBO records: a 2000-record snapshot then random adds/cancels/modifies/trades."""
    rec = np.zeros(n, MBO_DTYPE)
    cols = {f: np.zeros(n, rec.dtype[f] if f not in ("action", "side") else np.uint8)
            for f in ("action", "side", "order_id", "price", "size", "flags", "ts_recv")}
    _fill(n, seed, tick, cols["action"], cols["side"], cols["order_id"], cols["price"],
          cols["size"], cols["flags"], cols["ts_recv"])
    for f, v in cols.items():
        if f in ("action", "side"):
            rec[f] = v.view("S1")
        else:
            rec[f] = v
    rec["ts_event"] = rec["ts_recv"]
    rec["rtype"] = 0xA0
    rec["length"] = 14
    rec["instrument_id"] = 42
    rec["sequence"] = np.arange(n, dtype=np.uint32)
    return rec
