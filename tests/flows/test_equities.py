"""A Nasdaq stock and ES futures through the same graph (``spymaster synth --equities``).

Five simulated days of TSLA (XNAS.ITCH, tick 0.01, 04:00-16:00 ET) beside ES: the stock's book
rebuilt from its MBO equals the simulator's true book after every event; the stock's sessions
are its calendar dates and its setups belong to ``TSLA_MODEL``; both model families train,
register a champion, and each scores its own episodes in the flow. A day of TSLA with its
OPRA chain (cmbp-1) beside ES with its chain, in one run at 1 and 2 workers, write identical
tables; the stock chain's GEX is Black-Scholes-Merton on the stock, every row recomputable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import databento as db
import numpy as np
import pytest

from connectors.dbn.files import read_mbo_file
from connectors.delta.lake import Lake
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_DEFINITIONS,
    BRONZE_MBO,
    GOLD_INFERENCE_SCORES,
    GOLD_SETUP_VECTORS,
    SILVER_BOOK_1S,
    SILVER_GEX_SUMMARY_1S,
    SILVER_GEX_SURFACE_1S,
)
from flows.jobs.mbp import top_levels
from flows.jobs.status import instrument_classes
from operators.options.surface import recompute
from operators.records import BOOK_DEPTH
from operators.sessions import NEW_YORK
from replay.equities import CENT, TSLA
from replay.synth import SampleManifest
from tests.conftest import lake_differences
from tests.typed import present


@pytest.fixture(name="equities_sample", scope="module")
def fixture_equities_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    from replay.synth import write_sample

    return write_sample(tmp_path_factory.mktemp("equities"), days=5, seed=9, events_per_day=30_000, equities=True)


def _replay(inputs: Path, lake: Path, workers: int) -> Lake:
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    prepared = prepare(app_config([inputs], lake))
    run_flow(prepared, workers=workers)
    return prepared.lake


@pytest.fixture(name="lake", scope="module")
def fixture_lake(equities_sample: SampleManifest, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return _replay(equities_sample.out_dir, tmp_path_factory.mktemp("equities-lake"), 1)


def test_the_stocks_book_equals_the_simulators_true_book_after_every_event(equities_sample: SampleManifest) -> None:
    day = equities_sample.days[0].equities
    assert day is not None and day.truth is not None
    records, instruments, fault = read_mbo_file(day.mbo)
    truth = db.DBNStore.from_file(day.truth).to_ndarray()

    rows, anomalies = top_levels(records, {i: info.tick for i, info in instruments.items()}, BOOK_DEPTH)

    assert fault is None and instruments[TSLA.instrument_id].tick == CENT
    assert len(rows) == len(truth) > 5_000
    assert np.array_equal(rows["ts_recv"], truth["ts_recv"])
    for side in ("bid", "ask"):
        for kind in ("px", "sz", "ct"):
            want = np.stack([truth[f"{side}_{kind}_{i:02d}"].astype(np.int64) for i in range(BOOK_DEPTH)], axis=1)
            assert np.array_equal(rows[f"{side}_{kind}"].astype(np.int64), want), (side, kind)
    assert not any(any(counts.values()) for counts in anomalies.values())


@pytest.mark.slow
def test_a_stock_and_futures_with_their_chain_at_one_and_two_workers_write_the_same_tables(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from replay.synth import write_sample

    root = tmp_path_factory.mktemp("mixed")
    write_sample(root / "in", days=1, seed=12, events_per_day=20_000, truth=False, options=True, equities=True)
    one, two = (_replay(root / "in", root / f"w{w}", w) for w in (1, 2))

    assert lake_differences(two, one, ALL_TABLES) == []
    assert TSLA.instrument_id in set(one.read(SILVER_BOOK_1S, ["instrument_id"])["instrument_id"].to_pylist())
    models = Counter((r["underlier"], r["model"]) for r in one.read(SILVER_GEX_SUMMARY_1S, ["underlier", "model"])
                     .to_pylist())
    assert {m for (u, m) in models if u == "TSLA"} == {"bsm"} and {m for (u, m) in models if u != "TSLA"} == {"black76"}
    surface = [r for r in one.read(SILVER_GEX_SURFACE_1S).to_pylist() if r["underlier"] == "TSLA"]
    assert surface and {r["multiplier"] for r in surface} == {100.0}
    for row in surface[:: max(len(surface) // 400, 1)]:  # every row recomputes from its own inputs
        for name, value in recompute(row).items():
            assert value == pytest.approx(row[name], rel=1e-9, abs=1e-12, nan_ok=True), name
    vectors = one.read(GOLD_SETUP_VECTORS, ["contract_id", "feature_vector"]).to_pylist()
    stock_vectors = [r["feature_vector"] for r in vectors if r["contract_id"] == "TSLA"]
    assert stock_vectors and any(any(v[-12:-1]) for v in stock_vectors)  # the stock chain fills the options slots


def test_the_stocks_sessions_are_its_calendar_dates_and_its_setups_tsla_models(lake: Lake) -> None:
    mbo = lake.read(BRONZE_MBO, ["instrument_id", "ts_recv", "session_date", "dataset"]).to_pylist()
    stock = [r for r in mbo if r["instrument_id"] == TSLA.instrument_id]
    vectors = Counter((r["contract_id"], r["model_id"]) for r in lake.read(GOLD_SETUP_VECTORS).to_pylist())
    classes = {r["raw_symbol"]: r["instrument_class"] for r in lake.read(BRONZE_DEFINITIONS).to_pylist()}

    assert stock and {r["dataset"] for r in stock} == {"XNAS.ITCH"}
    assert all(r["session_date"] == datetime.fromtimestamp(r["ts_recv"] / 1e9, NEW_YORK).date() for r in stock)
    assert classes["TSLA"] == "K" and classes["ESZ5"] == "F"
    assert instrument_classes(lake) == {"future": 2, "stock, us equities": 1}  # spymaster status
    assert {m for (c, m) in vectors if c == "TSLA"} == {"TSLA_MODEL"}
    assert {m for (c, m) in vectors if c.startswith("ES")} == {"ES_MODEL"}
    assert vectors[("TSLA", "TSLA_MODEL")] >= 40


@pytest.fixture(name="registry", scope="module")
def fixture_registry(lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Both model families snapshotted and trained from the 1-worker lake (``spymaster snapshot``,
    ``spymaster train --trials 1``) into a fresh SQLite registry, each moving its champion."""
    from flows.cli import main

    uri = f"sqlite:///{tmp_path_factory.mktemp('equities-mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        for model_id in ("TSLA_MODEL", "ES_MODEL"):
            assert main(["snapshot", "--lake", lake.root, "--model-id", model_id]) == 0
            assert main(["train", "--lake", lake.root, "--model-id", model_id, "--trials", "1"]) == 0
        yield uri


@pytest.mark.slow
def test_both_model_families_score_their_own_episodes(registry: str, equities_sample: SampleManifest,
                                                      tmp_path: Path) -> None:
    from connectors.mlflow.tracking import champion_version

    champions = {m: present(champion_version(m, "champion", registry)) for m in ("TSLA_MODEL", "ES_MODEL")}
    lake = _replay(equities_sample.out_dir, tmp_path / "scored", 1)
    scores = lake.read(GOLD_INFERENCE_SCORES).to_pylist()

    by_family = Counter((r["underlier"], r["model_id"], r["model_version"], r["status"]) for r in scores)

    assert set(by_family) == {("TSLA", "TSLA_MODEL", champions["TSLA_MODEL"].version, "ok"),
                              ("ES", "ES_MODEL", champions["ES_MODEL"].version, "ok")}
    assert all(0.99 < r["p_break"] + r["p_reject"] + r["p_chop"] < 1.01 for r in scores)
