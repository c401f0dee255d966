"""An ES options chain through the one graph: option records in Bronze, option tops and the GEX
surface and summary in Silver, identical at one and two workers, and the futures' own tables
exactly what the futures alone give."""

from __future__ import annotations

import math
import re
from pathlib import Path

import databento
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from connectors.dbn.files import read_mbo_file
from connectors.delta.lake import Lake
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_STATISTICS,
    CHAIN_TABLES,
    GOLD_SETUP_VECTORS,
    GOLD_TRAINING_VIEW,
    SILVER_GEX_SUMMARY_1S,
    SILVER_GEX_SURFACE_1S,
    SILVER_LEVEL_APPROACH,
    SILVER_OPTIONS_TOP_1S,
)
from flows.jobs.status import instrument_classes
from operators.options.chain import OptionTops
from operators.options.gex import ChainQuotes
from operators.options.profile import gex_profile
from operators.options.surface import SURFACE_INPUTS, SURFACE_OUTPUTS, recompute
from operators.vectors.layout import OPTIONS_BLOCK
from operators.vectors.options import options_block
from replay.contracts import CONTRACTS
from replay.synth import SampleManifest, write_sample
from tests.conftest import table_content


def _vectors(lake: Lake) -> dict[str, np.ndarray]:
    table = lake.read(GOLD_SETUP_VECTORS, ["episode_id", "feature_vector"])
    return dict(zip(table["episode_id"].to_pylist(), np.array(table["feature_vector"].to_pylist()), strict=True))


VARYING = ("ts_ingest", "scored_at", "latency_ms", "source", "stream", "data_version")


@pytest.mark.integration
def test_option_records_reach_bronze_and_the_futures_tables_are_unchanged(
        chain_sample: SampleManifest, chain_lake: Lake, tmp_path: Path, replay) -> None:
    plain = write_sample(tmp_path / "plain", days=2, seed=5, events_per_day=30_000, truth=False)
    futures_only = replay([plain.out_dir], tmp_path / "a")
    kinds = np.asarray(chain_lake.read(BRONZE_MBO, ["instrument_type"])["instrument_type"].to_pylist())
    assert (kinds == "OPT").sum() == sum(d.options.mbo_records for d in chain_sample.days if d.options)
    assert (kinds == "FUT").sum() == plain.mbo_records
    defs = chain_lake.read(BRONZE_DEFINITIONS, ["instrument_class"])["instrument_class"].to_pylist()
    assert sum(c in ("C", "P") for c in defs) == 2 * 650
    assert chain_lake.read(BRONZE_STATISTICS, ["stat_type"])["stat_type"].to_pylist().count(9) == 2 * (650 + 2)
    classes = instrument_classes(chain_lake)  # spymaster status
    assert classes["future"] == 2 and classes["call"] == classes["put"] >= 325 and set(classes) == {
        "future", "call", "put"}

    skip = {BRONZE_MBO, BRONZE_DEFINITIONS, BRONZE_STATISTICS, BRONZE_MANIFEST, *CHAIN_TABLES}
    compared = 0
    for spec in ALL_TABLES:
        if spec in skip or futures_only.open(spec) is None:
            continue
        drop = (*VARYING, "feature_vector", "feature_hash")  # the options block differs; the rest must not
        want = table_content(futures_only, spec, drop=drop)
        assert table_content(chain_lake, spec, drop=drop).equals(want), spec.name
        compared += want.num_rows > 0
    assert compared >= 10
    with_chain, alone = (_vectors(lake) for lake in (chain_lake, futures_only))
    assert with_chain.keys() == alone.keys() and len(alone) >= 20
    for episode, vector in with_chain.items():
        np.testing.assert_array_equal(vector[:-OPTIONS_BLOCK], alone[episode][:-OPTIONS_BLOCK])
        assert not alone[episode][-OPTIONS_BLOCK:].any()


@pytest.mark.integration
def test_option_tops_in_silver_are_the_books_rebuilt_from_the_file(chain_sample: SampleManifest,
                                                                    chain_lake: Lake) -> None:
    files = chain_sample.days[1].options
    assert files is not None
    records, instruments, _ = read_mbo_file(files.mbo)
    tops = OptionTops({i: info.tick for i, info in instruments.items()})
    want = np.concatenate([tops.apply(records), tops.close()])
    day = chain_sample.days[1].trade_date
    got = chain_lake.read(SILVER_OPTIONS_TOP_1S, ["ts_recv", "instrument_id", "bid_px", "ask_px", "volume", "mid"],
                          f"\"session_date\" = '{day.isoformat()}'").sort_by([("ts_recv", "ascending"),
                                                                              ("instrument_id", "ascending")])
    assert got.num_rows == len(want) > 5_000
    assert np.array_equal(got["ts_recv"].to_numpy(), want["ts_recv"])
    assert np.array_equal(got["instrument_id"].to_numpy(), want["instrument_id"].astype(np.int64))
    assert np.array_equal(got["volume"].to_numpy(), want["volume"])
    bid = got["bid_px"].to_numpy(zero_copy_only=False)
    assert np.array_equal(np.nan_to_num(bid, nan=-1), np.where(want["bid_px"] >= 2**62, -1, want["bid_px"]))


@pytest.mark.integration
def test_gex_rows_recompute_use_the_prior_close_and_find_zero_gamma(chain_sample: SampleManifest,
                                                                     chain_lake: Lake) -> None:
    surface = chain_lake.read(SILVER_GEX_SURFACE_1S)
    summary = chain_lake.read(SILVER_GEX_SUMMARY_1S)
    assert set(summary["underlier"].to_pylist()) == {c.raw_symbol for c in CONTRACTS}
    assert summary.num_rows > 1_000 and surface.num_rows > 100 * summary.num_rows
    rows = surface.slice(0, surface.num_rows).take(np.arange(0, surface.num_rows, 997)).to_pylist()
    for row in rows:
        again = recompute({c: float(row[c]) if row[c] is not None else math.nan for c in SURFACE_INPUTS})
        for c in SURFACE_OUTPUTS:
            want = row[c] if row[c] is not None else math.nan
            assert (math.isnan(want) and math.isnan(again[c])) or again[c] == pytest.approx(want, rel=1e-9, abs=1e-9)
    # open interest: the day's statistics (as of the prior close), not the next day's
    day0 = chain_sample.days[0]
    assert day0.options is not None
    published = databento.DBNStore.from_file(day0.options.statistics).to_ndarray()
    day1 = chain_sample.days[1].options
    assert day1 is not None
    later = databento.DBNStore.from_file(day1.statistics).to_ndarray()
    oi0 = dict(zip(published["instrument_id"].tolist(), published["quantity"].tolist(), strict=True))
    oi1 = dict(zip(later["instrument_id"].tolist(), later["quantity"].tolist(), strict=True))
    used = chain_lake.read(SILVER_OPTIONS_TOP_1S, ["instrument_id", "strike_price", "expiration", "option_right"],
                           f"\"session_date\" = '{day0.trade_date.isoformat()}'").to_pylist()
    first = surface.filter(pc.equal(surface["session_date"], pa.scalar(day0.trade_date))).to_pylist()
    by_key = {(r["expiration"], r["strike"]): r for r in first}
    checked = differs = 0
    for u in used[:2000]:
        row = by_key.get((u["expiration"], u["strike_price"] / 1e9))
        if row is None:
            continue
        oi = row["call_oi"] if u["option_right"] == "C" else row["put_oi"]
        assert oi == oi0[u["instrument_id"]]
        differs += oi1.get(u["instrument_id"], oi) != oi
        checked += 1
    assert checked > 100 and differs > 0
    finite = [z for z in summary["zero_gamma"].to_pylist() if z is not None]
    px = summary["underlying_px"].to_numpy()
    assert len(finite) > 100 and all(abs(z / p - 1) <= 0.05 for z, p in zip(
        summary["zero_gamma"].to_pylist(), px, strict=True) if z is not None)


@pytest.mark.integration
def test_each_vectors_options_block_is_the_chain_in_silver_at_its_start(chain_lake: Lake) -> None:
    """Rebuild every episode's options block from the Silver tables alone: the surface and summary
    rows of the last GEX second at or before the episode's start, and the option volume traded in
    the session up to that second. Every ES episode here starts after its chain's first GEX second."""
    surface = chain_lake.read(SILVER_GEX_SURFACE_1S).to_pandas()
    summary = chain_lake.read(SILVER_GEX_SUMMARY_1S, ["underlying_id", "ts_recv", "zero_gamma"]).to_pandas()
    tops = chain_lake.read(SILVER_OPTIONS_TOP_1S, ["ts_recv", "underlying_id", "session_date", "expiration",
                                                   "strike_price", "option_right", "volume"]).to_pandas()
    tops["strike"] = tops["strike_price"] / 1e9
    episodes = chain_lake.read(SILVER_LEVEL_APPROACH, ["episode_id", "instrument_id", "start_ts", "level_price",
                                                         "direction"]).to_pandas().set_index("episode_id")
    checked = 0
    for episode, vector in _vectors(chain_lake).items():
        ep = episodes.loc[episode]
        uid, start = int(ep["instrument_id"]), int(ep["start_ts"])
        mine = surface[surface["underlying_id"] == uid]
        second = int(mine["ts_recv"][mine["ts_recv"] <= start].max())
        rows = mine[mine["ts_recv"] == second]
        traded = tops[(tops["underlying_id"] == uid) & (tops["ts_recv"] <= second)
                      & (tops["session_date"] == rows["session_date"].iloc[0])]  # volume is the session's
        volume = traded.groupby(["expiration", "strike", "option_right"])["volume"].sum()
        n = len(rows)
        both = np.r_[rows["expiration"], rows["expiration"]].astype(np.int64)
        chain = ChainQuotes(both, np.r_[rows["strike"], rows["strike"]], np.r_[np.ones(n, bool), np.zeros(n, bool)],
                            np.zeros(2 * n), np.r_[rows["call_oi"], rows["put_oi"]], np.ones(2 * n), np.ones(2 * n))
        keys = [(e, k, r) for r in ("C", "P") for e, k in zip(rows["expiration"], rows["strike"], strict=True)]
        zero = summary[(summary["underlying_id"] == uid) & (summary["ts_recv"] == second)]["zero_gamma"].iloc[0]
        profile = gex_profile(second, float(rows["underlying_px"].iloc[0]), float(zero), chain,
                              np.r_[rows["call_gex"], rows["put_gex"]], np.r_[rows["call_iv"], rows["put_iv"]],
                              np.array([float(volume.get(key, 0)) for key in keys]))
        want = options_block(profile, int(ep["level_price"]) / 1e9, 1 if ep["direction"] == "UP" else -1, 0.25)
        assert want[-1] == 1.0 and want[0] != 0.0
        np.testing.assert_allclose(vector[-OPTIONS_BLOCK:], want.astype(np.float32), rtol=1e-6, atol=1e-6)
        checked += 1
    assert checked >= 20


@pytest.mark.integration
def test_two_workers_write_the_same_chain_tables_and_a_rerun_skips_everything(
        chain_sample: SampleManifest, chain_lake: Lake, tmp_path: Path, replay) -> None:
    two = replay([chain_sample.out_dir], tmp_path / "two", workers=2)
    for spec in (*CHAIN_TABLES, GOLD_SETUP_VECTORS, GOLD_TRAINING_VIEW):  # the vectors read the chain
        assert table_content(two, spec, drop=VARYING).equals(table_content(chain_lake, spec, drop=VARYING)), spec.name
    versions = {spec.name: two.count(spec) for spec in CHAIN_TABLES}
    history = {spec.name: len(DeltaTable(two.uri(spec)).history()) for spec in CHAIN_TABLES}
    again = replay([chain_sample.out_dir], tmp_path / "two")
    assert {spec.name: again.count(spec) for spec in CHAIN_TABLES} == versions
    assert {spec.name: len(DeltaTable(again.uri(spec)).history()) for spec in CHAIN_TABLES} == history


@pytest.mark.integration
def test_gex_reaches_the_eventhouse_and_its_tiles_read_it(chain_lake: Lake) -> None:
    """``spymaster eventhouse sync`` ships the lake's GEX summary (the flow's sink sends the same
    rows, ``connectors.kusto.rows.gex_rows``); every row arrives once with the lake's values, and
    the dashboard's GEX tiles run on it."""
    from connectors.kusto.config import EventhouseConfig
    from flows.jobs.dashboard import read_specs
    from flows.jobs.eventhouse import SCHEMA_SCRIPT, eventhouse_rows, sync
    from flows.services.eventhouse import LocalEventhouse

    rows = eventhouse_rows(chain_lake, "Gex", None)
    assert rows.num_rows == chain_lake.count(SILVER_GEX_SUMMARY_1S) > 1_000
    assert set(rows["underlier"].to_pylist()) == {"ES"}
    assert set(rows["contract_id"].to_pylist()) == {c.raw_symbol for c in CONTRACTS}
    with LocalEventhouse() as eh:
        eh.apply_script(SCHEMA_SCRIPT.read_text())
        cfg = EventhouseConfig(uri=eh.url, auth="none", flush_s=1.0, tables=("Gex",))
        assert [r.rows for r in sync(chain_lake, cfg, None)] == [rows.num_rows]
        sync(chain_lake, cfg, None)  # again: the view still shows each row once
        assert eh.query("GexDedup | count")[0]["Count"] == rows.num_rows
        assert eh.query("Gex | count")[0]["Count"] == 2 * rows.num_rows
        latest = eh.query("GexDedup | summarize arg_max(ts, net_gex, zero_gamma) by contract_id "
                          "| order by contract_id asc")
        lake_rows = rows.sort_by([("contract_id", "ascending"), ("ts", "ascending")]).to_pylist()
        last = {r["contract_id"]: r for r in lake_rows}
        for got in latest:
            assert got["net_gex"] == pytest.approx(last[got["contract_id"]]["net_gex"], rel=1e-12)
        tiles, _ = read_specs()
        parameters = ('let _startTime = datetime(2025-01-01); let _endTime = datetime(2027-01-01); '
                      'let _underlier = "all"; let _contract = "";\n')
        for title in ("Gamma exposure: spot, zero gamma and walls", "Gamma exposure: net, calls and puts"):
            text = next(t.text for t in tiles if t.title == title)
            # the stand-in's SQL cannot divide a timespan by a number: a fixed step (Kusto.Language
            # binds the tile as written, tests/infra/test_kql.py)
            text = re.sub(r"^let step = .*;$", "let step = 1m;", text, count=1, flags=re.M)
            drawn = eh.query(parameters + text)
            series = {r["series"] for r in drawn}
            assert drawn and {s.split(" ")[0] for s in series} == {c.raw_symbol for c in CONTRACTS}, title


@pytest.mark.integration
def test_the_configured_sign_convention_reaches_every_row(tmp_path: Path) -> None:
    from dataclasses import replace

    from flows.app import prepare
    from flows.runner import run_flow
    from operators.options.chain import ChainGexConfig
    from operators.options.gex import GexConfig
    from tests.conftest import app_config

    day = write_sample(tmp_path / "in", days=1, seed=3, events_per_day=10_000, truth=False, options=True)
    cfg = app_config([day.out_dir], tmp_path / "lake")
    cfg = replace(cfg, options=ChainGexConfig(gex=GexConfig(sign_convention="dealer_short"), heartbeat_s=600))
    prepared = prepare(cfg)
    run_flow(prepared)
    summary = prepared.lake.read(SILVER_GEX_SUMMARY_1S, ["sign_convention", "call_gex", "put_gex", "ts_recv"])
    assert summary.num_rows > 10 and set(summary["sign_convention"].to_pylist()) == {"dealer_short"}
    assert max(summary["call_gex"].to_pylist()) <= 0 < -min(summary["put_gex"].to_pylist())
    surface = prepared.lake.read(SILVER_GEX_SURFACE_1S, ["call_sign", "put_sign"])
    assert set(surface["call_sign"].to_pylist()) == set(surface["put_sign"].to_pylist()) == {-1.0}


def _spoil_definitions(path: Path) -> dict[str, int]:
    """Rewrite an options definition file with one call of a class Databento does not define and
    one put that names no underlying; returns their instrument ids by the reason expected."""
    import zstandard

    from connectors.dbn.reader import DbnFileReader

    reader = DbnFileReader(path)
    try:
        records = reader.read(10_000).copy()
    finally:
        reader.close()
    data = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    header = 8 + int.from_bytes(data[4:8], "little")
    assert len(data) - header == records.nbytes  # the records are the file's own bytes
    classes = records["instrument_class"].astype("S1")
    call, put = np.flatnonzero(classes == b"C")[3], np.flatnonzero(classes == b"P")[5]
    records["instrument_class"][call] = b"Z"
    records["underlying_id"][put] = 0
    path.write_bytes(zstandard.ZstdCompressor().compress(data[:header] + records.tobytes()))
    return {"unknown_instrument_class": int(records["instrument_id"][call]),
            "missing_underlying": int(records["instrument_id"][put])}


@pytest.mark.integration
def test_unusable_option_definitions_are_dead_letters_and_the_run_goes_on(tmp_path: Path, replay) -> None:
    from connectors.delta.tables import BRONZE_MBO_DLQ
    from flows.jobs.accounting import account_for_file

    sample = write_sample(tmp_path / "in", days=1, seed=9, events_per_day=10_000, truth=False, options=True)
    path = next(sample.out_dir.glob("*.options.definition.dbn.zst"))
    spoiled = _spoil_definitions(path)
    lake = replay([sample.out_dir], tmp_path / "lake")

    letters = lake.read(BRONZE_MBO_DLQ, ["reason", "instrument_id", "detail", "raw"]).to_pylist()
    assert {d["reason"]: d["instrument_id"] for d in letters} == spoiled
    assert all(len(d["raw"]) == 520 for d in letters)
    unknown = next(d["detail"] for d in letters if d["reason"] == "unknown_instrument_class")
    assert "'Z' is none of Databento's" in unknown
    defined = set(lake.read(BRONZE_DEFINITIONS, ["instrument_id"])["instrument_id"].to_pylist())
    assert not defined & set(spoiled.values()) and len(defined) == 650 - 2 + 2
    assert account_for_file(lake, path).problems == ()  # every record is a row or a dead letter, once
    priced = set(lake.read(SILVER_OPTIONS_TOP_1S, ["instrument_id"])["instrument_id"].to_pylist())
    assert len(priced) > 300 and spoiled["missing_underlying"] not in priced  # no chain to price it in
    assert lake.count(SILVER_GEX_SUMMARY_1S) > 0
