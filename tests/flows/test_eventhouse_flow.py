"""The flow feeding an Eventhouse: the local one (Kusto REST over DuckDB), through Microsoft's own
azure-kusto-ingest client, beside the Delta tables.

Every row of the five Eventhouse tables must arrive, value for value what the lake holds (the
same conversion ``spymaster eventhouse sync`` uses); with the Eventhouse throttling, failing and
resetting connections, and the flow SIGKILLed and resumed, the dedup views still show each row
exactly once and the Delta tables equal a run with no Eventhouse at all.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, BRONZE_MANIFEST
from connectors.kusto.config import EventhouseConfig
from connectors.kusto.tables import ALL_EVENTHOUSE_TABLES, BY_NAME
from flows.app import prepare
from flows.jobs.eventhouse import SCHEMA_SCRIPT, eventhouse_rows, sync
from flows.runner import recovery_config, run_flow
from flows.services.eventhouse import FaultSettings, LocalEventhouse
from tests.conftest import app_config, lake_differences
from tests.flows.test_recovery import ROOT, _commits, _flow_cmd, _run_to_end

TABLES = tuple(t.name for t in ALL_EVENTHOUSE_TABLES if t.name != "Gex")
"""The sample has no options: Gex is fed in tests/flows/test_option_chains.py."""
COMPARED = [s for s in ALL_TABLES if s is not BRONZE_MANIFEST]


def _eventhouse(url: str, flush_s: float = 0.2) -> EventhouseConfig:
    return EventhouseConfig(uri=url, auth="none", flush_s=flush_s, tables=TABLES)


@pytest.fixture(name="fed", scope="module")
def fixture_fed(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lake, LocalEventhouse]]:
    """The two-day sample replayed with every Eventhouse table on."""
    tmp = tmp_path_factory.mktemp("eventhouse")
    with LocalEventhouse() as eh:
        eh.apply_script(SCHEMA_SCRIPT.read_text())
        cfg = replace(app_config([sample_dir], tmp / "lake"), eventhouse=_eventhouse(eh.url))
        prepared = prepare(cfg)
        run_flow(prepared)
        yield prepared.lake, eh


def _ticks(value: Any) -> Any:
    """A datetime as a comparable string, NaN as null (the Eventhouse holds none)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _as_sent(rows: pa.Table) -> list[dict[str, Any]]:
    """The lake's rows as the Eventhouse holds them: times in microseconds (Parquet), ordered by identity."""
    for name in rows.column_names:
        if pa.types.is_timestamp(rows.schema.field(name).type):
            ns = pc.cast(rows[name], pa.int64())
            rows = rows.set_column(rows.column_names.index(name), name,
                                   pc.cast(pc.multiply(pc.divide(ns, 1000), 1000), pa.timestamp("ns", tz="UTC")))
    rows = rows.sort_by([("stream", "ascending"), ("position", "ascending")])
    return [{k: _ticks(v) for k, v in row.items()} for row in _py(rows)]


def _py(rows: pa.Table) -> list[dict[str, Any]]:
    out = []
    for row in rows.to_pylist():
        out.append({k: (v.astimezone(UTC) if isinstance(v, datetime) else v) for k, v in row.items()})
    return out


def _held(eh: LocalEventhouse, table: str, view: bool = True, where: str = "") -> list[dict[str, Any]]:
    name = BY_NAME[table].dedup_view if view else table
    rows = eh.query(f"{name} {where} | order by stream asc, position asc")
    return [{k: _ticks(v) for k, v in row.items()} for row in rows]


SAMPLED = {"Radar": 97}
"""Tables compared value by value on every Nth second only (all rows are counted): the Radar's
~170k rows of 47 columns would take minutes through Python dicts."""


@pytest.mark.integration
@pytest.mark.parametrize("table", TABLES)
@pytest.mark.slow
def test_every_row_arrives_with_the_values_the_lake_holds(fed: tuple[Lake, LocalEventhouse], table: str) -> None:
    lake, eh = fed
    rows = eventhouse_rows(lake, table, None)
    assert rows.num_rows > 0
    assert eh.query(f"{BY_NAME[table].dedup_view} | count")[0]["Count"] == rows.num_rows
    assert eh.query(f"{table} | count")[0]["Count"] == rows.num_rows  # no fault, no crash: nothing sent twice
    where = ""
    if table in SAMPLED:
        every = SAMPLED[table]
        seconds = rows["position"].to_numpy() // 1_000_000_000
        rows = rows.filter(pa.array(seconds % every == 0))
        where = f"| where (position / 1000000000) % {every} == 0"
    want = _as_sent(rows)
    got = _held(eh, table, where=where)
    assert len(got) == len(want) > 0, (table, len(got), len(want))
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for column in w:
            if isinstance(w[column], float) and g[column] is not None:
                assert g[column] == pytest.approx(w[column], rel=1e-12, abs=1e-12), (table, column, w)
            else:
                assert g[column] == w[column], (table, column, g, w)


@pytest.mark.integration
@pytest.mark.slow
def test_sync_of_what_the_flow_sent_changes_no_dedup_view(fed: tuple[Lake, LocalEventhouse]) -> None:
    lake, eh = fed
    before = {t: eh.query(f"{BY_NAME[t].dedup_view} | count")[0]["Count"] for t in TABLES}
    results = sync(lake, _eventhouse(eh.url), None)
    assert {r.table: r.rows for r in results} == before
    assert {t: eh.query(f"{BY_NAME[t].dedup_view} | count")[0]["Count"] for t in TABLES} == before
    assert all(eh.query(f"{t} | count")[0]["Count"] == 2 * before[t] for t in TABLES)  # every row sent twice


@pytest.fixture(name="plain_lake", scope="module")
def fixture_plain_lake(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The sample with no Eventhouse, in a process of its own (the plain entry point)."""
    from tests.flows.test_recovery import _env

    tmp = tmp_path_factory.mktemp("plain")
    _run_to_end(_env(sample_dir, tmp / "lake", tmp), None)
    return Lake(str(tmp / "lake"))


@pytest.mark.integration
@pytest.mark.slow
def test_faults_and_a_sigkill_lose_no_row_and_leave_the_lake_unchanged(
        sample_dir: Path, plain_lake: Lake, tmp_path: Path) -> None:
    from tests.flows.test_recovery import _env

    faults = FaultSettings(fail_share=0.3, kinds=("429", "500", "reset"), seed=5)
    with LocalEventhouse(faults=faults) as eh:
        eh.apply_script(SCHEMA_SCRIPT.read_text())
        env = {**_env(sample_dir, tmp_path / "lake", tmp_path), "SPYMASTER_EVENTHOUSE": eh.url,
               "SPYMASTER_EVENTHOUSE_AUTH": "none", "SPYMASTER_EVENTHOUSE_FLUSH_S": "0.2"}
        recovery = tmp_path / "recovery"
        recovery_config(recovery)
        proc = subprocess.Popen(_flow_cmd(recovery), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:  # killed once the Radar has rows in the Eventhouse and the lake has Silver commits
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline and not (
                    eh.stats()["rows_by_table"].get("Radar", 0) > 0
                    and _commits(tmp_path / "lake", "silver/book_snapshot_1s") >= 2):
                time.sleep(0.02)
            assert proc.poll() is None, "the flow finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        _run_to_end(env, recovery)

        lake = Lake(str(tmp_path / "lake"))
        assert not lake_differences(lake, plain_lake, COMPARED)
        stats = eh.stats()
        assert sum(stats["faults"].values()) > 0, stats
        for table in TABLES:
            want = _as_sent(eventhouse_rows(lake, table, None))
            got = _held(eh, table)
            assert [(r["stream"], r["position"]) for r in got] == [(r["stream"], r["position"]) for r in want], table
            assert eh.query(f"{table} | count")[0]["Count"] >= len(want)


def _tile(title: str) -> str:
    from flows.jobs.dashboard import read_specs

    tiles, _ = read_specs()
    return next(t.text for t in tiles if t.title == title)


PARAMETERS = ('let _startTime = datetime(2025-01-01); let _endTime = datetime(2027-01-01); '
              'let _underlier = "all"; let _contract = "";\n')


def _championed(scores: pa.Table) -> pa.Table:
    """The lake's scores as a champion would have scored them: status ok, version 1, and class
    probabilities from the episode id (the sample has no model; the tiles only read the numbers)."""
    import hashlib

    p = []
    for episode in scores["episode_id"].to_pylist():
        a, b, c = (1 + x for x in hashlib.sha256(episode.encode()).digest()[:3])
        p.append((a / (a + b + c), b / (a + b + c), c / (a + b + c)))
    columns = {"status": pa.array(["ok"] * scores.num_rows), "model_version": pa.array(["1"] * scores.num_rows),
               "p_break": pa.array([x[0] for x in p]), "p_reject": pa.array([x[1] for x in p]),
               "p_chop": pa.array([x[2] for x in p])}
    for name, column in columns.items():
        scores = scores.set_column(scores.column_names.index(name), name, column)
    return scores


@pytest.fixture(name="tiles", scope="module")
def fixture_tiles(fed: tuple[Lake, LocalEventhouse]) -> Iterator[tuple[LocalEventhouse, Any, Any]]:
    """A second Eventhouse holding champion scores of every episode and the outcomes of all but
    the first five (those stay open)."""
    from connectors.kusto.client import Shipper

    lake, _ = fed
    scores = _championed(eventhouse_rows(lake, "Scores", None))
    outcomes = eventhouse_rows(lake, "Outcomes", None).sort_by("episode_id")
    outcomes = outcomes.slice(5)
    with LocalEventhouse() as eh:
        eh.apply_script(SCHEMA_SCRIPT.read_text())
        cfg = _eventhouse(eh.url)
        for table, rows in (("Scores", scores), ("Outcomes", outcomes)):
            shipper = Shipper(cfg, BY_NAME[table])
            shipper.send(rows)
            shipper.close()
        yield eh, scores.to_pandas(), outcomes.to_pandas()


def _predicted(row: Any) -> str:
    if row.p_break >= row.p_reject and row.p_break >= row.p_chop:
        return "BREAK"
    return "REJECT" if row.p_reject >= row.p_chop else "CHOP"


@pytest.mark.integration
def test_hit_rate_tile_equals_the_same_computation_over_the_lake(tiles: tuple[LocalEventhouse, Any, Any]) -> None:
    eh, scores, outcomes = tiles
    got = eh.query(PARAMETERS + _tile("Champion hit rate by level type and time bucket"))
    joined = scores.merge(outcomes[["episode_id", "outcome"]], on="episode_id")
    joined["hit"] = joined.apply(_predicted, axis=1) == joined["outcome"]
    want = joined.groupby(["level_type", "time_bucket"]).agg(episodes=("hit", "size"), hits=("hit", "sum"))
    want = want.reset_index().sort_values(["level_type", "time_bucket"])
    assert len(got) == len(want) > 1
    for g, w in zip(got, want.itertuples(), strict=True):
        assert (g["level_type"], g["time_bucket"], g["episodes"], g["hits"]) == (
            w.level_type, w.time_bucket, w.episodes, w.hits)
        assert g["hit_rate"] == round(w.hits / w.episodes, 3)


@pytest.mark.integration
def test_calibration_tile_equals_the_same_computation_over_the_lake(tiles: tuple[LocalEventhouse, Any, Any]) -> None:
    import numpy as np

    eh, scores, outcomes = tiles
    got = eh.query(PARAMETERS + _tile("Calibration"))
    joined = scores.merge(outcomes[["episode_id", "outcome"]], on="episode_id")
    want = []
    for cls, column in (("BREAK", "p_break"), ("CHOP", "p_chop"), ("REJECT", "p_reject")):
        bucket = np.round(np.floor(joined[column] / 0.1) * 0.1, 1)
        for b in sorted(set(bucket)):
            mine = joined[bucket == b]
            want.append((cls, b, len(mine), round(mine[column].mean(), 3),
                         round((mine["outcome"] == cls).mean(), 3)))
    assert [(g["outcome_class"], g["bucket"], g["episodes"]) for g in got] == [w[:3] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g["mean_predicted"] == pytest.approx(w[3], abs=1e-9)
        assert g["observed"] == pytest.approx(w[4], abs=1e-9)


@pytest.mark.integration
def test_open_episodes_and_score_history_tiles(tiles: tuple[LocalEventhouse, Any, Any]) -> None:
    eh, scores, outcomes = tiles
    open_ids = sorted(set(scores["episode_id"]) - set(outcomes["episode_id"]))
    got = eh.query(PARAMETERS + _tile("Latest probabilities per open episode"))
    assert sorted(r["episode_id"] for r in got) == open_ids and len(open_ids) == 5
    by_id = scores.set_index("episode_id")
    for r in got:
        assert r["p_break"] == pytest.approx(by_id.loc[r["episode_id"], "p_break"], rel=1e-12)
    history = eh.query(PARAMETERS + _tile("Score history"))
    want = scores.sort_values(["vector_time", "episode_id"], ascending=False)
    assert len(history) == len(scores)
    assert [r["vector_time"] for r in history] == sorted((r["vector_time"] for r in history), reverse=True)
    assert sorted(r["episode_id"] for r in history) == sorted(want["episode_id"])


def _identities(rows: pa.Table | None) -> set[tuple[str, int]]:
    if rows is None or rows.num_rows == 0:
        return set()
    return set(zip(rows["stream"].to_pylist(), rows["position"].to_pylist(), strict=True))


def _last_positions(identities: set[tuple[str, int]]) -> dict[str, int]:
    last: dict[str, int] = {}
    for stream, position in identities:
        last[stream] = max(last.get(stream, position), position)
    return last


def _held_identities(eh: LocalEventhouse, table: str) -> set[tuple[str, int]]:
    return {(r["stream"], r["position"]) for r in eh.query(f"{BY_NAME[table].dedup_view} | project stream, position")}


@pytest.mark.integration
@pytest.mark.slow
def test_a_flow_tailing_a_topic_feeds_the_eventhouse_while_it_runs(
        mbo_topic: str, topic_reference_lake: Lake, tmp_path: Path) -> None:
    """The live path: the flow tails the topic (no end of input, so no closing flush) with the
    topic's default 1 s flush; every score and feature row it commits reaches the Eventhouse
    while it is still running. (How soon, on an injected clock: one flush interval plus one
    request, ``tests/connectors/test_eventhouse_sink.py``; measured: ``spymaster bench --live
    --eventhouse``.)"""
    from connectors.delta.tables import BRONZE_MBO
    from tests.flows.conftest import topic_env

    tables = ("Scores", "Features")
    consumed = topic_reference_lake.count(BRONZE_MBO)
    with LocalEventhouse() as eh:
        eh.apply_script(SCHEMA_SCRIPT.read_text())
        env = {**topic_env(mbo_topic, tmp_path / "lake", tmp_path), "SPYMASTER_KAFKA_STOP_AT_END": "0",
               "SPYMASTER_EVENTHOUSE": eh.url, "SPYMASTER_EVENTHOUSE_AUTH": "none",
               "SPYMASTER_EVENTHOUSE_TABLES": ",".join(tables)}
        proc = subprocess.Popen(_flow_cmd(None), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        lake = Lake(str(tmp_path / "lake"))
        try:
            deadline, agreed = time.monotonic() + 300, 0
            while proc.poll() is None and time.monotonic() < deadline and agreed < 3:
                time.sleep(1.0)
                if _commits(tmp_path / "lake") == 0 or lake.count(BRONZE_MBO) < consumed:
                    continue
                lake_ids = {t: _identities(eventhouse_rows(lake, t, None)) for t in tables}
                same = all(lake_ids[t] and lake_ids[t] == _held_identities(eh, t) for t in tables)
                agreed = agreed + 1 if same else 0  # the same for three polls in a row: nothing in flight
            running = proc.poll() is None
        finally:
            proc.kill()
            proc.wait(timeout=30)
        assert running, f"the tailing flow exited with {proc.returncode}"
        assert agreed == 3, {t: (len(_identities(eventhouse_rows(lake, t, None))), len(_held_identities(eh, t)))
                             for t in tables}
        for table in tables:
            want = _identities(eventhouse_rows(topic_reference_lake, table, None))
            held = _held_identities(eh, table)
            last = _last_positions(want)
            assert {stream for stream, _ in held} <= set(last)
            # Up to the bounded run's last row, the bounded run's rows and nothing else. After it the
            # tailed topic, idle since the data ended, moves each contract on with the wall clock
            # (``SourceTick``), which a bounded run never does: those rows are the live path's own.
            assert {(s, p) for s, p in held if p <= last[s]} <= want
        assert eh.query("Levels | count")[0]["Count"] == 0  # not asked for
