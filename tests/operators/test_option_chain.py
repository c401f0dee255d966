"""The chain operators on the simulator's option files: option tops equal the true books, the GEX
rows recompute from their own columns, and open interest is the prior close's."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import databento
import numpy as np
import pytest

from connectors.dbn.files import read_mbo_file
from operators.options.chain import (
    NS,
    OPTION_TOP_DTYPE,
    ChainGex,
    ChainGexConfig,
    OptionTops,
    open_interest_before,
    option_mid,
)
from operators.options.gex import net_gex_on_grid, spot_grid
from operators.options.surface import SURFACE_INPUTS, SURFACE_OUTPUTS, recompute
from operators.records import UNDEF_PRICE
from operators.sessions import new_york_instant_ns
from replay.contracts import CONTRACTS
from replay.synth import SampleManifest, write_sample

ESZ5 = CONTRACTS[0].instrument_id


@pytest.fixture(scope="module")
def chain_days(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("chain"), days=3, seed=9, events_per_day=30_000, options=True)


def _read(path: Path) -> np.ndarray:
    return databento.DBNStore.from_file(path).to_ndarray()


def _options(sample: SampleManifest, day: int):  # noqa: ANN202 - the day's OptionFiles
    files = sample.days[day].options
    assert files is not None
    return files


def _session(sample: SampleManifest, day: int) -> tuple[int, int]:
    """The CME session of the day: 18:00 ET the evening before to 17:00 ET."""
    d = sample.days[day].trade_date
    return new_york_instant_ns(d - timedelta(days=1), 18), new_york_instant_ns(d, 17)


def _tops(sample: SampleManifest, day: int, chunk: int) -> tuple[np.ndarray, dict]:
    records, instruments, _ = read_mbo_file(_options(sample, day).mbo)
    tops = OptionTops({i: info.tick for i, info in instruments.items()})
    parts = [tops.apply(records[i:i + chunk]) for i in range(0, len(records), chunk)] + [tops.close()]
    return np.concatenate(parts), instruments


def _future_seconds(sample: SampleManifest, day: int, iid: int) -> tuple[np.ndarray, np.ndarray]:
    """The future's true mid at the close of every second it had an event."""
    truth = _read(sample.days[day].truth)
    mine = truth[truth["instrument_id"] == iid]
    close = (mine["ts_recv"].astype(np.int64) // NS + 1) * NS
    last = np.flatnonzero(np.r_[close[1:] != close[:-1], True])
    return close[last], (mine["bid_px_00"][last].astype(np.float64) + mine["ask_px_00"][last]) / 2e9


def test_option_tops_are_the_true_books_at_each_active_second_whatever_the_chunking(
        chain_days: SampleManifest) -> None:
    whole, _ = _tops(chain_days, 0, 10**9)
    split, _ = _tops(chain_days, 0, 777)
    assert np.array_equal(whole, split)
    truth = _read(_options(chain_days, 0).truth)
    close = (truth["ts_recv"].astype(np.int64) // NS + 1) * NS
    last = {(int(c), int(i)): n for n, (c, i) in enumerate(zip(close, truth["instrument_id"], strict=True))}
    assert len(whole) == len(last) > 5_000
    for row in whole:
        t = truth[last[(int(row["ts_recv"]), int(row["instrument_id"]))]]
        assert (row["bid_px"], row["ask_px"]) == (t["bid_px_00"], t["ask_px_00"])
        assert (row["bid_sz"], row["ask_sz"]) == (t["bid_sz_00"], t["ask_sz_00"])
    mbo = _read(_options(chain_days, 0).mbo)
    trades = mbo[mbo["action"].astype(str) == "T"]
    assert whole["volume"].sum() == trades["size"].sum() > 0
    assert (whole["last_trade_px"] != UNDEF_PRICE).sum() == len(
        {(int(t) // NS, int(i)) for t, i in zip(trades["ts_recv"], trades["instrument_id"], strict=True)})


def test_open_interest_of_a_session_is_the_one_published_before_it(chain_days: SampleManifest) -> None:
    stats = np.concatenate([_read(_options(chain_days, d).statistics) for d in range(3)])
    bounds = [_session(chain_days, d) for d in range(3)]
    for d in range(3):
        used = open_interest_before(stats, *bounds[d])
        published = _read(_options(chain_days, d).statistics)
        want = {int(i): int(q) for i, q in zip(published["instrument_id"], published["quantity"], strict=True)}
        assert {i: used[i] for i in want} == want  # (an option no longer listed keeps its last value)
    later = _read(_options(chain_days, 2).statistics)
    changed = [int(i) for i, q in zip(later["instrument_id"], later["quantity"], strict=True)
               if open_interest_before(stats, *bounds[1]).get(int(i), -1) not in (-1, int(q))]
    assert changed  # day 2 has new values, and day 1 did not take them


def test_gex_rows_recompute_and_the_zero_gamma_level_sits_on_a_sign_change(chain_days: SampleManifest) -> None:
    day = 1
    tops, instruments = _tops(chain_days, day, 4_096)
    listed = [info for info in instruments.values() if info.instrument_type == "OPT"]
    front = [o for o in listed if o.raw_symbol.split(" ")[0] in ("ESZ5", "E1BX5", "E1CX5", "EW1X5")]
    assert len(front) == 520
    stats = np.concatenate([_read(_options(chain_days, d).statistics) for d in range(3)])
    oi = open_interest_before(stats, *_session(chain_days, day))
    assert sum(1 for o in front if oi.get(o.instrument_id)) > 400  # open interest for nearly every option
    gex = ChainGex("ESZ5", oi, ChainGexConfig())
    gex.add(front)
    gex.quotes(tops[::-1].copy())  # arrival order does not matter
    closes, spots = _future_seconds(chain_days, day, ESZ5)
    surfaces, summaries, _ = gex.seconds(closes, spots)
    assert 1_000 < len(summaries) < len(closes) + 1
    assert [s.ts_second for s in summaries] == sorted({s.ts_second for s in summaries})

    every = {c: np.concatenate([np.asarray(s[c]) for s in surfaces]) for c in surfaces[0]}
    assert sorted(set(every["ts_second"].tolist())) == [s.ts_second for s in summaries]  # rows for every summary
    checked = crossings = 0
    for summary in summaries[::25]:
        mine = every["ts_second"] == summary.ts_second
        surface = {c: values[mine] for c, values in every.items()}
        n = len(surface["strike"])
        for i in range(0, n, 7):
            row = {c: float(np.asarray(surface[c])[i]) for c in SURFACE_INPUTS}
            again = recompute(row)
            for c in SURFACE_OUTPUTS:
                got = float(np.asarray(surface[c])[i])
                assert (math.isnan(got) and math.isnan(again[c])) or again[c] == pytest.approx(got, rel=1e-9, abs=1e-9)
            checked += 1
        assert summary.net_gex == pytest.approx(float(np.sum(np.asarray(surface["net_gex"]))), rel=1e-9)
        if math.isfinite(summary.zero_gamma):
            crossings += 1
            _assert_sign_change(surface, summary.zero_gamma, summary.underlying_px)
    assert checked > 1_000 and crossings > 10


def _assert_sign_change(surface: dict, level: float, spot: float) -> None:
    """Re-price the surface's own rows a grid step either side of the level: the sign flips."""
    cols = {c: np.asarray(surface[c], dtype=np.float64) for c in
            ("strike", "t_years", "call_iv", "put_iv", "call_oi", "put_oi", "multiplier", "call_sign", "put_sign",
             "vol_floor", "rate", "carry", "expiration")}
    strikes, t, vol, weight = [], [], [], []
    for side in ("call", "put"):
        ok = np.isfinite(cols[f"{side}_iv"])
        strikes.append(cols["strike"][ok])
        t.append(cols["t_years"][ok])
        vol.append(np.maximum(cols[f"{side}_iv"][ok], cols["vol_floor"][ok]))
        weight.append((cols[f"{side}_sign"] * cols[f"{side}_oi"] * cols["multiplier"])[ok])
    grid = spot_grid(spot, ChainGexConfig().gex)
    step = grid[1] - grid[0]
    k, tt, v, w = (np.concatenate(x) for x in (strikes, t, vol, weight))
    net = net_gex_on_grid(np.array([level - step, level + step]), np.ones(len(k)), k, tt, float(cols["rate"][0]),
                          float(cols["carry"][0]), v, w)
    assert net[0] * net[1] < 0, (level, net)


def test_a_second_with_nothing_new_has_no_row_until_the_heartbeat() -> None:
    from operators.chunks import InstrumentInfo

    expiry = 1_800_000_000 * NS
    option = InstrumentInfo(1, "ESZ5 C6000", "ES", "OPT", 50_000_000, 50.0, expiry, 6000 * NS, underlying_id=7,
                            option_right="C")
    gex = ChainGex("ESZ5", {1: 100}, ChainGexConfig(heartbeat_s=60))
    gex.add([option])
    quote = np.zeros(1, OPTION_TOP_DTYPE)
    quote["ts_recv"], quote["instrument_id"] = 1_762_000_001 * NS, 1
    quote["bid_px"], quote["ask_px"] = 100 * NS, 101 * NS
    gex.quotes(quote)
    closes = np.arange(1_762_000_001, 1_762_000_200) * NS
    spots = np.full(len(closes), 6000.0)
    spots[30:] = 6001.0
    _, rows, _ = gex.seconds(closes, spots)
    assert [r.ts_second // NS - 1_762_000_000 for r in rows] == [1, 31, 91, 151]
    assert option_mid(quote["bid_px"], quote["ask_px"])[0] == 100.5


@pytest.mark.parametrize(("back", "want"), [(True, [1, 61, 121, 181]), (False, [1, 45, 105, 165])])
def test_a_mid_changed_and_changed_back_between_two_closes_is_no_change(back: bool, want: list[int]) -> None:
    """The underlying's closes skip 41-44; an option's mid moves at 42 and (or not) back at 43:
    by the close at 45 it is what it was, so only the heartbeat (60 s) makes rows."""
    from operators.chunks import InstrumentInfo

    option = InstrumentInfo(1, "ESZ5 C6000", "ES", "OPT", 50_000_000, 50.0, 1_800_000_000 * NS, 6000 * NS,
                            underlying_id=7, option_right="C")
    gex = ChainGex("ESZ5", {1: 100}, ChainGexConfig(heartbeat_s=60))
    gex.add([option])
    quotes = np.zeros(3 if back else 2, OPTION_TOP_DTYPE)
    quotes["instrument_id"] = 1
    quotes["ts_recv"] = (1_762_000_000 + np.array([1, 42, 43][:len(quotes)])) * NS
    quotes["bid_px"] = np.array([100, 101, 100][:len(quotes)]) * NS
    quotes["ask_px"] = quotes["bid_px"] + NS
    gex.quotes(quotes)
    closes = (1_762_000_000 + np.r_[1:41, 45:200]) * NS
    _, rows, _ = gex.seconds(closes, np.full(len(closes), 6000.0))
    assert [r.ts_second // NS - 1_762_000_000 for r in rows] == want


def test_quotes_of_options_the_chain_does_not_list_change_nothing() -> None:
    """Rows of an option not listed in the chain are dropped (a chunk may hold none of its options)."""
    from operators.chunks import InstrumentInfo

    option = InstrumentInfo(1, "ESZ5 C6000", "ES", "OPT", 50_000_000, 50.0, 1_800_000_000 * NS, 6000 * NS,
                            underlying_id=7, option_right="C")
    gex = ChainGex("ESZ5", {1: 100}, ChainGexConfig(heartbeat_s=60))
    gex.add([option])
    listed, stranger = np.zeros(1, OPTION_TOP_DTYPE), np.zeros(1, OPTION_TOP_DTYPE)
    listed["ts_recv"], listed["instrument_id"] = 1_762_000_001 * NS, 1
    listed["bid_px"], listed["ask_px"] = 100 * NS, 101 * NS
    stranger["ts_recv"], stranger["instrument_id"] = 1_762_000_002 * NS, 99
    stranger["bid_px"], stranger["ask_px"] = NS, 2 * NS
    gex.quotes(listed)
    gex.quotes(stranger)
    assert gex.snapshot().pending.tobytes() == listed.tobytes()
