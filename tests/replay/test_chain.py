"""The simulated ES options chain: real DBN files, a listed chain, quotes on the smile around the
futures, books our L3 kernel rebuilds exactly, and open interest as of the prior close."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import databento
import numpy as np
import pytest

from connectors.dbn.files import read_mbo_file
from flows.jobs.mbp import top_levels
from operators.instruments import instrument_from_definition
from operators.options import pricing
from operators.options.gex import YEAR_NS
from operators.records import BOOK_DEPTH, F_LAST, UNDEF_PRICE
from replay.chain import OPTION_TICK_NANO, ChainParams, smile_vol
from replay.contracts import CONTRACTS
from replay.synth import SampleManifest, write_sample

ESZ5, ESH6 = (c.instrument_id for c in CONTRACTS)


@pytest.fixture(scope="module")
def chain_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("chain"), days=2, seed=7, events_per_day=40_000, options=True)


def _read(path: Path) -> np.ndarray:
    return databento.DBNStore.from_file(path).to_ndarray()


def _definitions(sample: SampleManifest, day: int = 0) -> np.ndarray:
    options = sample.days[day].options
    assert options is not None
    return _read(options.definition)


def _day(sample: SampleManifest, day: int = 0):  # noqa: ANN202 - the OptionFiles of the day
    options = sample.days[day].options
    assert options is not None
    return options


def test_the_chain_is_listed_with_its_class_strike_expiry_and_underlying(chain_sample: SampleManifest) -> None:
    defs = _definitions(chain_sample)
    assert len(defs) == 650  # ESZ5: 0DTE, 1DTE, weekly, quarterly; ESH6: its quarterly; 65 strikes x 2
    infos = [instrument_from_definition(row) for row in defs]
    assert {i.instrument_type for i in infos} == {"OPT"}
    assert {i.tick for i in infos} == {OPTION_TICK_NANO} and {i.multiplier for i in infos} == {50.0}
    assert set(defs["instrument_class"].astype(str)) == {"C", "P"}
    assert set(defs["underlying_id"]) == {ESZ5, ESH6}
    assert set(defs["underlying"].astype(str)) == {"ESZ5", "ESH6"}
    expiries = {(int(u), datetime.fromtimestamp(int(e) / 1e9, UTC).date())
                for u, e in zip(defs["underlying_id"], defs["expiration"], strict=True)}
    assert expiries == {(ESZ5, date(2025, 11, 3)), (ESZ5, date(2025, 11, 4)), (ESZ5, date(2025, 11, 7)),
                        (ESZ5, date(2025, 12, 19)), (ESH6, date(2026, 3, 20))}
    for iid in (ESZ5, ESH6):
        strikes = np.unique(defs["strike_price"][defs["underlying_id"] == iid]) / 1e9
        assert len(strikes) == 65 and set(np.diff(strikes)) == {5.0}
    symbols = set(defs["raw_symbol"].astype(str))
    assert {"E1AX5 C" + str(int(s)) for s in np.unique(defs["strike_price"]) / 1e9} & symbols  # Monday's daily
    assert any(s.startswith("EW1X5 P") for s in symbols) and any(s.startswith("ESZ5 C") for s in symbols)


def test_option_books_rebuilt_from_the_mbo_equal_the_true_books_after_every_event(chain_sample: SampleManifest) -> None:
    for day in (0, 1):
        files = _day(chain_sample, day)
        records, instruments, fault = read_mbo_file(files.mbo)
        truth = _read(files.truth)
        assert fault is None and {instruments[int(i)].tick for i in np.unique(records["instrument_id"])} == {
            OPTION_TICK_NANO}
        rows, anomalies = top_levels(records, {i: info.tick for i, info in instruments.items()}, BOOK_DEPTH)
        assert len(rows) == len(truth) > 10_000
        assert np.array_equal(rows["ts_recv"], truth["ts_recv"])
        for side in ("bid", "ask"):
            for kind in ("px", "sz", "ct"):
                want = np.stack([truth[f"{side}_{kind}_{i:02d}"].astype(np.int64) for i in range(BOOK_DEPTH)], axis=1)
                assert np.array_equal(rows[f"{side}_{kind}"].astype(np.int64), want), (day, side, kind)
        assert all(not any(counts.values()) for counts in anomalies.values())


def test_opening_quotes_bracket_black76_on_the_smile_around_the_future(chain_sample: SampleManifest) -> None:
    """Each option's opening bid <= Black-76(F_open, K, t, r, smile) <= ask, priced independently here."""
    p = ChainParams()
    defs = _definitions(chain_sample)
    futures = _read(chain_sample.days[0].truth)
    start = int(futures["ts_recv"][0])
    f_open = {iid: (futures["bid_px_00"][futures["instrument_id"] == iid][0]
                    + futures["ask_px_00"][futures["instrument_id"] == iid][0]) / 2e9 for iid in (ESZ5, ESH6)}
    truth = _read(_day(chain_sample).truth)
    opening = truth[truth["ts_recv"] < start + len(defs) * 1_000]
    assert len(opening) == len(defs)
    by_id = {int(r["instrument_id"]): r for r in defs}
    checked = 0
    for q in opening:
        d = by_id[int(q["instrument_id"])]
        f, k = f_open[int(d["underlying_id"])], d["strike_price"] / 1e9
        t = max((int(d["expiration"]) - int(q["ts_recv"])) / YEAR_NS, 1 / (365 * 24))
        sigma = float(smile_vol(np.array([k]), np.array([f]), np.array([f]), p)[0])
        theo = pricing.price(d["instrument_class"] == b"C", f, k, t, p.rate, 0.0, sigma)
        ask = q["ask_px_00"] / 1e9
        bid = q["bid_px_00"] / 1e9 if q["bid_px_00"] != UNDEF_PRICE else 0.0
        assert bid <= theo + 1e-9 and theo <= ask + 1e-9, (d["raw_symbol"], bid, theo, ask)
        if q["bid_px_00"] != UNDEF_PRICE and theo > 5:
            iv = pricing.implied_vol((bid + ask) / 2, d["instrument_class"] == b"C", f, k, t, p.rate, 0.0)
            vega = pricing.vega(f, k, t, p.rate, 0.0, sigma)
            assert abs(iv - sigma) <= (ask - bid) / 2 / vega * 1.05  # the mid is within half the spread
            checked += 1
    assert checked > 100


def test_trades_fill_resting_quotes_and_the_fill_leaves_the_book(chain_sample: SampleManifest) -> None:
    mbo = _read(_day(chain_sample).mbo)
    actions = mbo["action"].astype(str)
    trades = np.flatnonzero(actions == "T")
    assert len(trades) > 50
    for i in trades:
        assert actions[i + 1] == "F" and mbo["size"][i + 1] == mbo["size"][i]
        assert actions[i + 2] in ("C", "M") and mbo["order_id"][i + 2] == mbo["order_id"][i + 1]
        assert mbo["flags"][i + 2] & F_LAST


def test_open_interest_is_the_prior_close_published_before_the_session(chain_sample: SampleManifest) -> None:
    day0, day1 = _day(chain_sample, 0), _day(chain_sample, 1)
    first = _read(day1.mbo)["ts_recv"].min()
    stats0, stats1 = _read(day0.statistics), _read(day1.statistics)
    assert set(stats1["stat_type"]) == {9} and len(stats1) == 650
    assert (stats1["ts_recv"] <= first).all()  # published before the session's first quote
    close0 = int(databento.DBNStore.from_file(chain_sample.days[0].mbo).metadata.end)
    assert set(stats1["ts_ref"].astype(np.int64)) == {close0}  # as of the prior close
    assert (stats0["ts_ref"].astype(np.int64) < stats0["ts_recv"].astype(np.int64)).all()
    # the day's volume moves it; an option that did not trade keeps yesterday's
    mbo0 = _read(day0.mbo)
    traded = set(mbo0["instrument_id"][mbo0["action"].astype(str) == "T"].tolist())
    oi0 = dict(zip(stats0["instrument_id"].tolist(), stats0["quantity"].tolist(), strict=True))
    moved = kept = 0
    for iid, qty in zip(stats1["instrument_id"].tolist(), stats1["quantity"].tolist(), strict=True):
        if iid in oi0 and iid not in traded:
            assert qty == oi0[iid]
            kept += 1
        moved += iid in oi0 and qty != oi0[iid]
    assert moved > 10 and kept > 100
    # puts are heavier below the opening price and calls above
    defs = _definitions(chain_sample)
    futures = _read(chain_sample.days[0].truth)
    front = futures[futures["instrument_id"] == ESZ5][0]
    centre = (front["bid_px_00"] + front["ask_px_00"]) / 2e9
    weight = {("C", False): 0, ("C", True): 0, ("P", False): 0, ("P", True): 0}
    for d in defs[defs["underlying_id"] == ESZ5]:
        weight[(d["instrument_class"].decode(), d["strike_price"] / 1e9 > centre)] += oi0[int(d["instrument_id"])]
    assert weight[("P", False)] > 2 * weight[("C", False)] and weight[("C", True)] > 2 * weight[("P", True)]


def test_the_futures_files_are_the_same_with_or_without_the_chain(chain_sample: SampleManifest, tmp_path: Path) -> None:
    plain = write_sample(tmp_path, days=2, seed=7, events_per_day=40_000)
    for a, b in zip(plain.days, chain_sample.days, strict=True):
        for name in ("definition", "mbo", "statistics", "truth"):
            assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    again = write_sample(tmp_path / "again", days=2, seed=7, events_per_day=40_000, options=True)
    for mine, theirs in zip(again.files(), chain_sample.files(), strict=True):
        assert mine.read_bytes() == theirs.read_bytes(), mine.name


def test_the_smile_is_skewed_to_puts_and_moves_against_the_future() -> None:
    p = ChainParams()
    k = np.array([6500.0, 6850.0, 7200.0])
    vols = smile_vol(k, np.full(3, 6850.0), np.full(3, 6850.0), p)
    assert vols[0] > vols[1] and vols[1] == pytest.approx(p.atm_vol) and vols[2] > 0.05
    fallen = smile_vol(np.array([6700.0]), np.array([6700.0]), np.array([6850.0]), p)[0]
    assert fallen > p.atm_vol  # at the money after a fall, vol is up
    assert math.isclose(float(smile_vol(np.array([6850.0]), np.array([6700.0]), np.array([6850.0]), p)[0]),
                        p.atm_vol + p.spot_vol * math.log(6700 / 6850) + p.skew * math.log(6850 / 6700)
                        + p.smile * math.log(6850 / 6700) ** 2)
