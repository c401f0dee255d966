"""The market simulator writes real, deterministic DBN files whose truth book is right."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import databento
import databento_dbn as dbn
import numpy as np
import pytest

from replay.synth import SampleManifest, write_sample
from tests.replay.reference_book import ReferenceBook

F_LAST, F_SNAPSHOT, F_BAD_TS_RECV = 128, 32, 8
ESZ5, ESH6 = 42140864, 42140878


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("sample"), days=2, seed=7, events_per_day=20_000)


def _read(path: Path) -> tuple[dbn.Metadata, np.ndarray]:
    store = databento.DBNStore.from_file(path)
    return store.metadata, store.to_ndarray()


def _mbo(sample: SampleManifest, day: int = 0) -> np.ndarray:
    return _read(sample.days[day].mbo)[1]


def _truth(sample: SampleManifest, day: int = 0) -> np.ndarray:
    return _read(sample.days[day].truth)[1]


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", days=2, seed=3, events_per_day=5_000)
    b = write_sample(tmp_path / "b", days=2, seed=3, events_per_day=5_000)
    c = write_sample(tmp_path / "c", days=2, seed=4, events_per_day=5_000)

    for fa, fb in zip(a.files(), b.files(), strict=True):
        assert fa.read_bytes() == fb.read_bytes(), fa.name
    assert a.days[0].mbo.read_bytes() != c.days[0].mbo.read_bytes()


def test_file_names_and_trading_days(sample: SampleManifest) -> None:
    day = sample.days[1]

    assert [d.trade_date for d in sample.days] == [date(2025, 11, 3), date(2025, 11, 4)]
    assert day.mbo.name == "glbx-mdp3-20251104.mbo.dbn.zst"
    assert day.definition.name == "glbx-mdp3-20251104.definition.dbn.zst"
    assert day.statistics.name == "glbx-mdp3-20251104.statistics.dbn.zst"
    assert day.truth == sample.out_dir / "truth" / "glbx-mdp3-20251104.mbp-10.dbn.zst"


def test_weekend_is_skipped(tmp_path: Path) -> None:
    m = write_sample(tmp_path, days=2, events_per_day=2_000, start_date=date(2025, 11, 7))

    assert [d.trade_date for d in m.days] == [date(2025, 11, 7), date(2025, 11, 10)]


def test_metadata_of_every_file(sample: SampleManifest) -> None:
    day = sample.days[0]
    start = int(datetime(2025, 11, 3, 9, 0, tzinfo=UTC).timestamp()) * 10**9
    end = int(datetime(2025, 11, 3, 21, 0, tzinfo=UTC).timestamp()) * 10**9
    for path, schema in [(day.mbo, "mbo"), (day.truth, "mbp-10"), (day.definition, "definition"),
                         (day.statistics, "statistics")]:
        meta = databento.DBNStore.from_file(path).metadata

        assert meta.version == 3
        assert meta.dataset == "GLBX.MDP3"
        assert str(meta.schema) == schema
        assert str(meta.stype_in) == "raw_symbol" and str(meta.stype_out) == "instrument_id"
        assert meta.start == start and meta.end == end
        assert meta.symbols == ["ESZ5", "ESH6"]
        assert set(meta.mappings) == {"ESZ5", "ESH6"}


def test_symbology_maps_raw_symbols_to_ids(sample: SampleManifest) -> None:
    store = databento.DBNStore.from_file(sample.days[0].mbo)

    assert store.symbology["mappings"]["ESZ5"][0]["symbol"] == str(ESZ5)
    assert store.symbology["mappings"]["ESH6"][0]["symbol"] == str(ESH6)


def test_record_counts_match_manifest(sample: SampleManifest) -> None:
    for day in sample.days:
        assert len(_read(day.mbo)[1]) == day.mbo_records
        assert len(_read(day.truth)[1]) == day.truth_records
        assert len(_read(day.definition)[1]) == day.definition_records == 2
        assert len(_read(day.statistics)[1]) == day.statistics_records == 10
        assert day.truth_records == int((_read(day.mbo)[1]["flags"] & F_LAST > 0).sum())


def test_mbo_bytes_equal_databento_encoding(sample: SampleManifest) -> None:
    raw = _mbo(sample)
    for r in raw[[0, 1, 5, len(raw) // 2, len(raw) - 1]]:
        msg = dbn.MBOMsg(
            int(r["publisher_id"]), int(r["instrument_id"]), int(r["ts_event"]), int(r["order_id"]),
            int(r["price"]), int(r["size"]), dbn.Action(r["action"].decode()), dbn.Side(r["side"].decode()),
            int(r["ts_recv"]), flags=int(r["flags"]), channel_id=int(r["channel_id"]),
            ts_in_delta=int(r["ts_in_delta"]), sequence=int(r["sequence"]),
        )

        assert bytes(msg) == r.tobytes()


def test_every_event_ends_with_f_last_and_clock_is_ordered(sample: SampleManifest) -> None:
    raw = _mbo(sample)
    ts = raw["ts_recv"].astype(np.int64)

    assert (np.diff(ts) >= 0).all()
    assert (np.diff(raw["sequence"].astype(np.int64)) == 1).all()
    assert (raw["ts_event"] <= raw["ts_recv"]).all()
    for iid in (ESZ5, ESH6):
        r = raw[raw["instrument_id"] == iid]
        last = (r["flags"] & F_LAST) > 0
        same_event_as_next = r["ts_recv"][:-1] == r["ts_recv"][1:]
        assert last[-1]
        assert (last[:-1] == ~same_event_as_next).all()


def test_snapshot_structure(sample: SampleManifest) -> None:
    raw = _mbo(sample, day=1)
    snap = F_SNAPSHOT | F_BAD_TS_RECV
    for iid in (ESZ5, ESH6):
        r = raw[raw["instrument_id"] == iid]
        n = int(np.argmax((r["flags"] & F_LAST) > 0)) + 1
        head = r[:n]

        assert head[0]["action"] == b"R" and head[0]["flags"] == snap
        assert (head["action"][1:] == b"A").all()
        assert (head["flags"][1:-1] == snap).all() and head[-1]["flags"] == snap | F_LAST
        assert n > 100  # the book rested overnight: day 2 opens with yesterday's levels
        assert not (r[n:]["flags"] & F_SNAPSHOT).any()


def test_reference_book_agrees_with_truth_after_every_event(sample: SampleManifest) -> None:
    raw, truth = _mbo(sample), _truth(sample)
    books = {ESZ5: ReferenceBook(), ESH6: ReferenceBook()}
    k = 0
    for r in raw:
        book = books[int(r["instrument_id"])]
        book.apply(r["action"], r["side"], int(r["price"]), int(r["size"]), int(r["order_id"]))
        if not r["flags"] & F_LAST:
            continue
        t = truth[k]
        k += 1
        assert (t["instrument_id"], t["sequence"], t["action"], t["ts_recv"]) == (
            r["instrument_id"], r["sequence"], r["action"], r["ts_recv"])
        for side, px, sz, ct in ((b"B", "bid_px", "bid_sz", "bid_ct"), (b"A", "ask_px", "ask_sz", "ask_ct")):
            want = book.top(side)
            got = [(int(t[f"{px}_{j:02d}"]), int(t[f"{sz}_{j:02d}"]), int(t[f"{ct}_{j:02d}"])) for j in range(10)]
            assert got == want, (k, side)
    assert k == len(truth)


def test_fills_take_orders_in_queue_priority(sample: SampleManifest) -> None:
    raw = _mbo(sample)
    books = {ESZ5: ReferenceBook(), ESH6: ReferenceBook()}
    pending: list[np.void] = []
    checked = 0
    for r in raw:
        book = books[int(r["instrument_id"])]
        pending.append(r)
        if r["flags"] & F_LAST:
            fills = [p for p in pending if p["action"] == b"F"]
            for price in {int(f["price"]) for f in fills}:
                ids = [int(f["order_id"]) for f in fills if int(f["price"]) == price]
                assert ids == book.queue(fills[0]["side"], price)[: len(ids)]
                checked += 1
            for p in pending:
                book.apply(p["action"], p["side"], int(p["price"]), int(p["size"]), int(p["order_id"]))
            pending = []
    assert checked > 100


def test_truth_book_is_never_crossed(sample: SampleManifest) -> None:
    for day in range(2):
        t = _truth(sample, day)
        both = (t["bid_ct_00"] > 0) & (t["ask_ct_00"] > 0)

        assert both.mean() > 0.99
        assert (t["bid_px_00"][both] < t["ask_px_00"][both]).all()


def test_flow_has_realistic_mix(sample: SampleManifest) -> None:
    raw = _mbo(sample)
    actions = Counter(raw["action"].tolist())
    truth = _truth(sample)

    assert actions[b"C"] > actions[b"A"] > 0
    assert actions[b"T"] > 0 and actions[b"F"] >= actions[b"T"] and actions[b"M"] > 0
    assert np.median(truth["bid_ct_09"] > 0) == 1  # at least 10 bid levels most of the time
    sizes = raw["size"][raw["action"] == b"A"]
    assert np.median(sizes) <= 10 and sizes.max() >= 100


def _events(raw: np.ndarray) -> list[np.ndarray]:
    ends = np.flatnonzero(raw["flags"] & F_LAST) + 1
    return np.split(raw, ends[:-1])


def test_trades_sweep_levels_and_fills_are_removed_by_cancels_or_modifies(sample: SampleManifest) -> None:
    sweeps = c_after_fill = m_after_fill = 0
    for ev in _events(_mbo(sample)):
        if ev[0]["action"] != b"T":
            continue
        trades = ev[ev["action"] == b"T"]
        fills = {int(f["order_id"]): int(f["size"]) for f in ev[ev["action"] == b"F"]}
        removals = ev[np.isin(ev["action"], [b"C", b"M"]) & np.isin(ev["order_id"], list(fills))]

        assert sum(fills.values()) == int(trades["size"].sum())
        assert sorted(int(r["order_id"]) for r in removals) == sorted(fills)
        sweeps += len(np.unique(trades["price"])) >= 2
        c_after_fill += int((removals["action"] == b"C").sum())
        m_after_fill += int((removals["action"] == b"M").sum())

    assert sweeps > 0 and c_after_fill > 0 and m_after_fill > 0


def test_partial_cancels_present(sample: SampleManifest) -> None:
    raw = _mbo(sample)
    book = {}
    partial = 0
    for r in raw[raw["instrument_id"] == ESZ5]:
        oid, a = int(r["order_id"]), r["action"]
        if a == b"A" or a == b"M":
            book[oid] = int(r["size"])
        elif a == b"C":
            partial += int(r["size"]) < book[oid]
            book[oid] -= int(r["size"])
        elif a == b"R":
            book.clear()

    assert partial > 0


def test_statistics_are_consistent_with_trades(sample: SampleManifest) -> None:
    raw = _mbo(sample)
    _, stats = _read(sample.days[0].statistics)
    for iid in (ESZ5, ESH6):
        trades = raw[(raw["instrument_id"] == iid) & (raw["action"] == b"T")]
        s = {int(x["stat_type"]): x for x in stats[stats["instrument_id"] == iid]}

        assert int(s[int(dbn.StatType.CLEARED_VOLUME)]["quantity"]) == int(trades["size"].sum())
        assert int(s[int(dbn.StatType.TRADING_SESSION_HIGH_PRICE)]["price"]) == int(trades["price"].max())
        assert int(s[int(dbn.StatType.TRADING_SESSION_LOW_PRICE)]["price"]) == int(trades["price"].min())
        assert int(s[int(dbn.StatType.SETTLEMENT_PRICE)]["price"]) == int(trades["price"][-1])


def test_definitions(sample: SampleManifest) -> None:
    _, defs = _read(sample.days[0].definition)

    assert defs["raw_symbol"].astype(str).tolist() == ["ESZ5", "ESH6"]
    assert defs["instrument_id"].tolist() == [ESZ5, ESH6]
    assert (defs["min_price_increment"] == 250_000_000).all()
    assert (defs["contract_multiplier"] == 50).all()
    assert defs["instrument_class"].astype(str).tolist() == ["F", "F"]


def test_back_month_trades_about_fifty_points_above_front(sample: SampleManifest) -> None:
    t = _truth(sample)
    mid = lambda x: (x["bid_px_00"][-1] + x["ask_px_00"][-1]) / 2e9  # noqa: E731

    spread = mid(t[t["instrument_id"] == ESH6]) - mid(t[t["instrument_id"] == ESZ5])
    assert 45 <= spread <= 55


@pytest.mark.parametrize(("day", "utc_hour"), [(date(2025, 7, 1), 8), (date(2025, 11, 3), 9)])
def test_session_starts_at_4am_new_york_in_summer_and_winter(tmp_path: Path, day: date, utc_hour: int) -> None:
    m = write_sample(tmp_path, days=1, events_per_day=2_000, start_date=day)
    raw = _read(m.days[0].mbo)[1]
    start = int(datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC).timestamp()) * 10**9

    assert int(raw["ts_recv"][0]) == start
    assert int(raw["ts_recv"][-1]) < start + 12 * 3600 * 10**9
