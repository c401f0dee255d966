"""The planted level-approach signal: levels, approaches, drawn vs realised outcomes, determinism."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import databento
import numpy as np
import pytest

from replay.contracts import TICK_NANO
from replay.market import MarketParams, SignalParams
from replay.sessions import NEW_YORK
from replay.signal import AP_COLUMNS, BREAK, CHOP, REJECT, read_approaches
from replay.signal_report import front_mid, label_approaches
from replay.synth import SampleManifest, write_sample
from tests.typed import present

ESZ5 = 42140864
DAYS = 5
EVENTS = 100_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("signal"), days=DAYS, seed=7, events_per_day=EVENTS)


@pytest.fixture(scope="module")
def approaches(sample: SampleManifest) -> dict[str, np.ndarray]:
    days = [read_approaches(d.approaches) for d in sample.days]
    out = {k: np.concatenate([d[k] for d in days]) for k in days[0]}
    out["day"] = np.concatenate([np.full(len(d["ts_recv"]), j) for j, d in enumerate(days)])
    labels = []
    for j, d in enumerate(sample.days):
        ts, mid = front_mid(d.truth)
        a = days[j]
        labels.append(label_approaches(ts, mid, a["ts_recv"], a["level_ticks"].astype(float),
                                       a["direction"].astype(float)))
    out["relabel"] = np.concatenate(labels)
    return out


def _et(day: date, hh: int, mm: int) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK).timestamp()) * 10**9


def test_sidecar_columns_and_names(sample: SampleManifest) -> None:
    for d in sample.days:
        assert d.approaches == sample.out_dir / "truth" / f"glbx-mdp3-{d.trade_date:%Y%m%d}.approaches.csv"
        a = read_approaches(d.approaches)
        assert list(a) == ["ts_recv", *AP_COLUMNS]
        assert len(a["ts_recv"]) == d.approaches_records


def test_approaches_at_every_level_type_in_both_directions(approaches: dict[str, np.ndarray]) -> None:
    n_per_day = np.bincount(approaches["day"], minlength=DAYS)

    assert n_per_day.mean() >= 20
    for k in range(6):
        for d in (1, -1):
            assert ((approaches["level_type"] == k) & (approaches["direction"] == d)).any(), (k, d)


def test_approaches_start_within_four_ticks_in_the_setup_window(sample: SampleManifest,
                                                                approaches: dict[str, np.ndarray]) -> None:
    dist = np.abs(approaches["mid_ticks"] - approaches["level_ticks"])
    assert (dist <= 4).all()
    for j, d in enumerate(sample.days):
        ts = approaches["ts_recv"][approaches["day"] == j]
        assert (ts >= _et(d.trade_date, 9, 30)).all() and (ts < _et(d.trade_date, 13, 30)).all()
        k = approaches["level_type"][approaches["day"] == j]
        assert (ts[k >= 4] >= _et(d.trade_date, 9, 45)).all()  # the opening range is known at 09:45
    assert not (approaches["level_type"][approaches["day"] == 0] <= 1).any()  # no prior day on day 1


def test_levels_come_from_trades_in_their_windows(sample: SampleManifest, approaches: dict[str, np.ndarray]) -> None:
    day0, day1 = sample.days[0], sample.days[1]
    raw0 = databento.DBNStore.from_file(day0.mbo).to_ndarray()
    raw1 = databento.DBNStore.from_file(day1.mbo).to_ndarray()

    def hilo(raw: np.ndarray, lo_ns: int, hi_ns: int) -> tuple[int, int]:
        t = raw[(raw["instrument_id"] == ESZ5) & (raw["action"] == b"T")
                & (raw["ts_recv"] >= lo_ns) & (raw["ts_recv"] < hi_ns)]
        px = t["price"].astype(np.int64) // TICK_NANO
        return int(px.max()), int(px.min())

    want = {}
    d0, d1 = day0.trade_date, day1.trade_date
    want[0], want[1] = hilo(raw0, _et(d0, 9, 30), _et(d0, 16, 0))
    want[2], want[3] = hilo(raw1, _et(d1, 4, 0), _et(d1, 9, 30))
    want[4], want[5] = hilo(raw1, _et(d1, 9, 30), _et(d1, 9, 45))
    on_day1 = approaches["day"] == 1
    for k, level in want.items():
        got = approaches["level_ticks"][on_day1 & (approaches["level_type"] == k)]
        assert (got == level).all(), (k, got, level)


def test_drawn_outcomes_cover_all_classes_and_realised_agree(approaches: dict[str, np.ndarray]) -> None:
    h = approaches["handled"] == 1
    drawn, realised = approaches["drawn"][h], approaches["realised"][h]

    assert h.mean() > 0.7
    assert set(np.unique(drawn)) == {BREAK, REJECT, CHOP}
    assert (approaches["drawn"][~h] == -1).all()
    # the engine's own resolution equals the label recomputed from the written true book
    assert (realised == approaches["relabel"][h]).mean() > 0.98
    agree = (drawn == realised).mean()
    chance = sum(((drawn == c).mean() * (realised == c).mean()) for c in range(3))
    assert agree > 0.75 and agree > chance + 0.3


def test_relationship_has_the_documented_sign(approaches: dict[str, np.ndarray]) -> None:
    """More flow toward the level -> more BREAK, less REJECT; more liquidity behind it -> fewer BREAK."""
    lab = approaches["relabel"]
    flow, liq = approaches["x_flow"], approaches["x_liq"]
    hi_f, lo_f = flow >= np.median(flow), flow < np.median(flow)
    hi_l, lo_l = liq >= np.median(liq), liq < np.median(liq)

    assert (lab[hi_f] == BREAK).mean() > (lab[lo_f] == BREAK).mean() + 0.15
    assert (lab[hi_f] == REJECT).mean() < (lab[lo_f] == REJECT).mean() - 0.15
    assert (lab[lo_l] == BREAK).mean() > (lab[hi_l] == BREAK).mean()
    # the latent probabilities move the same way
    assert np.corrcoef(flow, approaches["p_break"])[0, 1] > 0.5
    assert np.corrcoef(liq, approaches["p_break"])[0, 1] < -0.2


def test_probabilities_are_the_documented_logit(approaches: dict[str, np.ndarray]) -> None:
    sp = SignalParams()
    f = (approaches["x_flow"] - sp.flow_center) / sp.flow_scale
    liq = (approaches["x_liq"] - sp.liq_center) / sp.liq_scale
    zb = (sp.bias_break + sp.flow_break * f + sp.liq_break * liq) / sp.temperature
    zr = (sp.bias_reject + sp.flow_reject * f + sp.liq_reject * liq) / sp.temperature
    e = np.exp(np.stack([zb, zr, np.zeros_like(zb)], axis=1))
    p = e / e.sum(axis=1, keepdims=True)
    got = np.stack([approaches["p_break"], approaches["p_reject"], approaches["p_chop"]], axis=1)

    assert np.allclose(got, p, atol=1e-6)


def test_same_seed_same_sidecar_and_disabled_signal_draws_nothing(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", days=2, seed=5, events_per_day=30_000)
    b = write_sample(tmp_path / "b", days=2, seed=5, events_per_day=30_000)
    off = MarketParams(signal=SignalParams(enabled=False))
    c = write_sample(tmp_path / "c", days=2, seed=5, events_per_day=30_000, params=off)

    for da, db in zip(a.days, b.days, strict=True):
        assert present(da.approaches).read_bytes() == present(db.approaches).read_bytes()
        assert da.mbo.read_bytes() == db.mbo.read_bytes()
    assert a.days[1].mbo.read_bytes() != c.days[1].mbo.read_bytes()
    for d in c.days:
        ap = read_approaches(d.approaches)
        assert (ap["handled"] == 0).all() and (ap["drawn"] == -1).all()
