"""5-second bars from 1-second rows: exact hand-computed bars, invariants, streaming and resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.bars import BAR_DTYPE, FEATURE_NAMES, BarBuilder, bars_from_seconds
from operators.book import L3Book, second_dtype
from operators.features import FEATURES
from operators.records import UNDEF_PRICE, structured_fields
from tests.operators.book_reference import NS, TICK, px
from tests.operators.book_streams import ES_TICK, synthetic_stream
from tests.typed import present

U = UNDEF_PRICE


def row(ts_s: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], **fields) -> np.ndarray:
    r = np.zeros(1, second_dtype())
    r["ts_recv"] = ts_s * NS
    r["instrument_id"] = 7
    r["book_valid"] = True
    for side, levels in (("bid", bids), ("ask", asks)):
        r[f"{side}_px"] = U
        for k, (p, q) in enumerate(levels):
            r[f"{side}_px"][0, k] = px(p)
            r[f"{side}_sz"][0, k] = q
            r[f"{side}_ct"][0, k] = 1
    bb, qb = bids[0]
    ba, qa = asks[0]
    r["best_bid_px"], r["best_ask_px"] = px(bb), px(ba)
    r["mid_px"] = (bb + ba) / 2 * TICK / NS
    r["microprice"] = (bb * qa + ba * qb) / (qa + qb) * TICK / NS
    for f in ("trade_open_px", "trade_high_px", "trade_low_px", "trade_close_px", "last_trade_px"):
        r[f] = U
    for f in ("mid_open", "mid_high", "mid_low"):
        r[f] = r["mid_px"]
    for name, v in fields.items():
        r[name] = v
    return r


def ticks(t: float) -> float:
    return t * TICK / NS


R104 = row(104, [(100, 10)], [(101, 10)],
           trade_open_px=px(101), trade_high_px=px(102), trade_low_px=px(100), trade_close_px=px(100),
           volume=6, buy_volume=4, sell_volume=2, trade_count=3, notional=150.0,
           mid_open=ticks(100), mid_high=ticks(101), mid_low=ticks(99.5), ofi=3.0,
           add_bid_size=7, add_ask_size=1, cancel_bid_size=5, cancel_ask_size=0,
           near_pulled_bid_size=3, near_pulled_ask_size=-1, event_count=10)
R105 = row(105, [(100, 10), (99, 20), (98, 5)], [(101, 4), (102, 6), (105, 30)],
           trade_open_px=px(100), trade_high_px=px(101), trade_low_px=px(99), trade_close_px=px(101),
           volume=4, buy_volume=3, sell_volume=1, trade_count=2, notional=100.5,
           mid_open=ticks(100.5), mid_high=ticks(100.5), mid_low=ticks(100), ofi=-5.0,
           add_bid_size=2, add_ask_size=3, cancel_bid_size=1, cancel_ask_size=2,
           near_pulled_bid_size=2, near_pulled_ask_size=5, event_count=20)
R106 = row(106, [(100, 10)], [(102, 10)], book_valid=False)
ROWS = np.concatenate([R104, R105, R106])


def test_bar_dtype_has_registry_features_in_order() -> None:
    names = tuple(structured_fields(BAR_DTYPE))
    assert names[:17] == ("ts", "instrument_id", "n_seconds", "book_valid", "trade_open_px",
                          "trade_high_px", "trade_low_px", "trade_close_px", "volume",
                          "buy_volume", "sell_volume", "trade_count", "vwap", "mid_open",
                          "mid_high", "mid_low", "mid_close")
    assert names[17:] == tuple(f.name for f in FEATURES) == FEATURE_NAMES
    assert all(BAR_DTYPE[n] == np.float64 for n in FEATURE_NAMES)


def test_hand_built_bar_every_group() -> None:
    bars, carry = bars_from_seconds(ROWS, 5, tick=TICK)
    assert len(bars) == 1  # the 110 bar is open: row 106 only
    assert carry.rows["ts_recv"].tolist() == [106 * NS]
    b = bars[0]
    # base
    assert (b["ts"], b["instrument_id"], b["n_seconds"], b["book_valid"]) == (105 * NS, 7, 2, True)
    assert [b[f"trade_{x}_px"] for x in ("open", "high", "low", "close")] == [px(101), px(102), px(99), px(101)]
    assert (b["volume"], b["buy_volume"], b["sell_volume"], b["trade_count"]) == (10, 7, 3, 5)
    assert b["vwap"] == 250.5 / 10
    assert [b["mid_open"], b["mid_high"], b["mid_low"], b["mid_close"]] == [
        ticks(100), ticks(101), ticks(99.5), ticks(100.5)]
    exp: dict[str, float] = {}
    # ladder (last second: row 105)
    for k, q in enumerate([10, 20, 5] + [0] * 7, 1):
        exp[f"ladder_bid_sz_{k:02d}"] = q
    for k, q in enumerate([4, 6, 30] + [0] * 7, 1):
        exp[f"ladder_ask_sz_{k:02d}"] = q
    exp |= {"ladder_bid_depth_05": 35, "ladder_ask_depth_05": 40, "ladder_bid_depth_10": 35,
            "ladder_ask_depth_10": 40, "ladder_spread_ticks": 1, "ladder_bid_span_ticks": 2,
            "ladder_ask_span_ticks": 4}
    # flow (sums over rows 104, 105)
    exp |= {"flow_aggressor_imbalance": 4 / 10, "flow_net_aggressor_volume": 4, "flow_ofi": -2,
            "flow_ofi_norm": -2 / ((10 + 7) / 2), "flow_trade_count": 5, "flow_avg_trade_size": 2,
            "flow_add_bid_size": 9, "flow_add_ask_size": 4, "flow_cancel_bid_size": 6,
            "flow_cancel_ask_size": 2, "flow_event_count": 30}
    # shape
    pb = (100 * 10 + 99 * 20 + 98 * 5) / 35
    pa = (101 * 4 + 102 * 6 + 105 * 30) / 40
    exp |= {"shape_book_skew": -5 / 75, "shape_top_imbalance": 6 / 14,
            "shape_microprice_offset_ticks": (100 * 4 + 101 * 10) / 14 - 100.5,
            "shape_weighted_mid_offset_ticks": (pb * 40 + pa * 35) / 75 - 100.5,
            "shape_bid_top_share": 10 / 35, "shape_ask_top_share": 4 / 40,
            "shape_bid_hhi": (100 + 400 + 25) / 35**2, "shape_ask_hhi": (16 + 36 + 900) / 40**2}
    # wall: bid 20 at 99 (median 10), ask 30 at 105 (median 6)
    exp |= {"wall_bid_size": 20, "wall_bid_ratio": 2, "wall_bid_distance_ticks": 1.5,
            "wall_ask_size": 30, "wall_ask_ratio": 5, "wall_ask_distance_ticks": 4.5,
            "wall_side": -1}
    # vacuum: ask 105 is 4.5 ticks from the mid (not near); EMA seeded by row 104 (10, 10)
    a = 1 - math.exp(-1 / 300)
    exp |= {"vacuum_bid_near_depth": 35, "vacuum_ask_near_depth": 10,
            "vacuum_bid_near_depth_ratio": 35 / (10 + a * 25), "vacuum_ask_near_depth_ratio": 1.0,
            "vacuum_bid_pulled": 5, "vacuum_ask_pulled": 4, "vacuum_mid_velocity": 0.5 / 2}
    assert set(exp) == set(FEATURE_NAMES)
    for name, v in exp.items():
        assert b[name] == pytest.approx(v, rel=1e-12, abs=1e-12), name


def test_last_bar_at_close_and_empty_values() -> None:
    builder = BarBuilder(5, tick=TICK)
    assert len(builder.feed(ROWS)) == 1
    last = builder.close()
    assert len(builder.close()) == 0
    b = last[0]
    assert (b["ts"], b["n_seconds"], b["book_valid"]) == (110 * NS, 1, False)
    assert [b[f"trade_{x}_px"] for x in ("open", "high", "low", "close")] == [U] * 4
    assert b["volume"] == 0 and math.isnan(b["vwap"])
    assert math.isnan(b["flow_aggressor_imbalance"]) and math.isnan(b["flow_avg_trade_size"])
    assert [b["mid_open"], b["mid_high"], b["mid_low"], b["mid_close"]] == [ticks(101)] * 4
    assert b["wall_side"] == 0  # both walls have ratio 1
    assert b["vacuum_mid_velocity"] == 0
    with pytest.raises(ValueError, match="increasing"):
        builder.feed(row(108, [(100, 1)], [(101, 1)]))  # inside the bar already emitted


def test_bar_alignment_and_out_of_order_rows() -> None:
    rows = np.concatenate([row(s, [(100, 1)], [(101, 1)]) for s in (9, 10, 11, 15, 16, 26)])
    bars, carry = bars_from_seconds(rows, 5, tick=TICK)
    assert bars["ts"].tolist() == [10 * NS, 15 * NS, 20 * NS]
    assert bars["n_seconds"].tolist() == [2, 2, 1]
    assert carry.rows["ts_recv"].tolist() == [26 * NS]
    with pytest.raises(ValueError):
        bars_from_seconds(rows[:1], 5, carry)


def test_a_bar_comes_out_with_the_row_at_its_close() -> None:
    """The row at the close instant is the bar's last: the bar is out with it, not a row later,
    and the carry left is empty (nothing may come before the next bar)."""
    builder = BarBuilder(5, tick=TICK)
    assert len(builder.feed(R104)) == 0
    out = builder.feed(R105)
    assert out["ts"].tolist() == [105 * NS] and out["n_seconds"].tolist() == [2]
    assert present(builder.snapshot()).rows.shape[0] == 0
    assert len(builder.close()) == 0  # nothing open, nothing emitted twice
    one_shot, _ = bars_from_seconds(ROWS[:2], 5, tick=TICK, final=True)
    assert out.tobytes() == one_shot.tobytes()
    with pytest.raises(ValueError, match="increasing"):
        builder.feed(row(105, [(100, 1)], [(101, 1)]))  # the closed bar's own second again


def _book_rows(n: int = 100_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rec = synthetic_stream(n, seed=seed)
    rec["ts_recv"] = rec["ts_recv"][0] + (rec["ts_recv"] - rec["ts_recv"][0]) * 1000
    book = L3Book(ES_TICK)
    return rec, np.concatenate([book.apply_seconds(rec), book.close_seconds()])


def test_book_rows_invariants() -> None:
    rec, rows = _book_rows()
    bars, _ = bars_from_seconds(rows, 5, tick=ES_TICK, final=True)
    assert len(bars) > 5
    assert bars["n_seconds"].sum() == len(rows)
    trades = rec[(rec["action"] == b"T") & (rec["ts_recv"] >= rows["ts_recv"][0] - NS)]
    assert int(bars["volume"].sum()) == int(trades["size"].sum())
    assert np.all(bars["volume"] == bars["buy_volume"] + bars["sell_volume"])
    t = bars[bars["trade_count"] > 0]
    assert np.all(t["trade_high_px"] >= np.maximum(t["trade_open_px"], t["trade_close_px"]))
    assert np.all(t["trade_low_px"] <= np.minimum(t["trade_open_px"], t["trade_close_px"]))
    assert np.all((t["vwap"] * NS <= t["trade_high_px"] + 1) & (t["vwap"] * NS >= t["trade_low_px"] - 1))
    m = bars[~np.isnan(bars["mid_close"])]
    assert np.all(m["mid_high"] >= np.maximum(m["mid_open"], m["mid_close"]))
    assert np.all(m["mid_low"] <= np.minimum(m["mid_open"], m["mid_close"]))
    assert np.all(bars["ts"] % (5 * NS) == 0)


def test_streaming_in_random_pieces_equals_one_shot() -> None:
    _, rows = _book_rows(50_000, seed=5)
    whole, _ = bars_from_seconds(rows, 5, tick=ES_TICK, final=True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        cuts = np.sort(rng.choice(np.arange(1, len(rows)), size=8, replace=False))
        builder = BarBuilder(5, tick=ES_TICK)
        parts = [builder.feed(p) for p in np.split(rows, cuts)] + [builder.close()]
        assert np.concatenate(parts).tobytes() == whole.tobytes()


def test_snapshot_resume_equals_uninterrupted() -> None:
    _, rows = _book_rows(50_000, seed=6)
    whole, _ = bars_from_seconds(rows, 5, tick=ES_TICK, final=True)
    for cut in (1, 7, len(rows) // 2, len(rows) - 1):
        first = BarBuilder(5, tick=ES_TICK)
        head = first.feed(rows[:cut])
        resumed = BarBuilder(5, resume=first.snapshot())
        got = np.concatenate([head, resumed.feed(rows[cut:]), resumed.close()])
        assert got.tobytes() == whole.tobytes()
