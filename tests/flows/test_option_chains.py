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
    SILVER_GEX_SUMMARY_1S,
    SILVER_GEX_SURFACE_1S,
    SILVER_OPTIONS_TOP_1S,
)
from flows.jobs.status import instrument_classes
from operators.options.chain import OptionTops
from operators.options.surface import SURFACE_INPUTS, SURFACE_OUTPUTS, recompute
from replay.contracts import CONTRACTS
from replay.synth import SampleManifest, write_sample
from tests.conftest import table_content

VARYING = ("ts_ingest", "scored_at", "latency_ms", "source", "stream", "data_version")


@pytest.fixture(name="chain_sample", scope="module")
def fixture_chain_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("chains"), days=2, seed=5, events_per_day=30_000, truth=False,
                        options=True)


@pytest.fixture(name="chain_lake", scope="module")
def fixture_chain_lake(chain_sample: SampleManifest, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    prepared = prepare(app_config([chain_sample.out_dir], tmp_path_factory.mktemp("lake") / "lake"))
    run_flow(prepared, workers=1)
    return prepared.lake


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
        want = table_content(futures_only, spec, drop=VARYING)
        assert table_content(chain_lake, spec, drop=VARYING).equals(want), spec.name
        compared += want.num_rows > 0
    assert compared >= 10


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
@pytest.mark.slow
def test_two_workers_write_the_same_chain_tables_and_a_rerun_skips_everything(
        chain_sample: SampleManifest, chain_lake: Lake, tmp_path: Path, replay) -> None:
    two = replay([chain_sample.out_dir], tmp_path / "two", workers=2)
    for spec in CHAIN_TABLES:
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
