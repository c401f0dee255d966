"""The live bench's attribution of rows to the messages that caused them, and of rows to commits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from connectors.delta.lake import Lake
from connectors.delta.tables import SILVER_BOOK_1S
from flows.bench.live import Percentiles, _cause_ns, _commit_times, _slope


def test_a_row_is_caused_by_the_first_message_reaching_its_time() -> None:
    published = {7: (np.array([10, 20, 30]), np.array([100, 200, 300])), 8: (np.array([5]), np.array([50]))}

    cause = _cause_ns(published, np.array([7, 7, 7, 7, 8, 9]), np.array([5, 15, 30, 31, 5, 1]))

    assert cause.tolist() == [100, 200, 300, -1, 50, -1]


def test_rows_get_the_time_of_the_commit_that_added_them(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    rows = SILVER_BOOK_1S.schema.empty_table()
    uri = lake.uri(SILVER_BOOK_1S)
    for n in (2, 3):
        data = pa.table({c: pa.nulls(n, rows.schema.field(c).type) for c in rows.column_names})
        data = data.set_column(data.column_names.index("ts_recv"), "ts_recv", pa.array(range(n), pa.int64()))
        data = data.set_column(data.column_names.index("session_date"), "session_date",
                               pa.array([None] * n, rows.schema.field("session_date").type))
        write_deltalake(uri, data.cast(rows.schema), mode="append",
                        partition_by=list(SILVER_BOOK_1S.partition_by) or None)
    stamps = [next(json.loads(ln)["commitInfo"]["timestamp"] for ln in f.read_text().splitlines() if "commitInfo" in ln)
              for f in sorted((tmp_path / SILVER_BOOK_1S.relative_path / "_delta_log").glob("*.json"))]

    table = _commit_times(lake, SILVER_BOOK_1S, ["ts_recv"])

    assert sorted(table["_durable_ns"].to_pylist()) == sorted([stamps[0] * 10**6] * 2 + [stamps[1] * 10**6] * 3)


def test_percentiles_and_lag_slope() -> None:
    p = Percentiles.of(np.arange(1, 101) * 1e6)

    assert (p.n, p.p50_ms, p.p99_ms) == (100, 50.5, 99.0)
    assert abs(_slope([(0.0, 0), (1.0, 10), (2.0, 20)]) - 10.0) < 1e-9
    assert abs(_slope([(0.0, 5), (1.0, 5), (2.0, 5)])) < 1e-9


def test_a_teed_row_is_timed_from_its_cause_to_its_first_copy_on_the_topic(kafka_broker) -> None:
    """``_on_topic`` against a real broker: rows outside the window are left out, a row sent twice
    (a resumed flow) counts once with its first copy, and score rows are told apart by episode."""
    from confluent_kafka import Producer

    from flows.bench.live import _on_topic

    kafka_broker.create_topic("teed_rows", 1)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    ms = 1_795_000_000_000
    sent = [({"instrument_id": 7, "ts_recv": 15}, ms + 40),
            ({"instrument_id": 7, "ts_recv": 15}, ms + 90),          # the same row again, later
            ({"instrument_id": 7, "ts_recv": 30}, ms + 70),
            ({"instrument_id": 7, "ts_recv": 99}, ms + 80)]          # outside the window
    for row, stamp in sent:
        producer.produce("teed_rows", json.dumps(row).encode(), timestamp=stamp)
    kafka_broker.create_topic("teed_scores", 1)
    for episode, stamp in (("a", ms + 50), ("b", ms + 60), ("a", ms + 95)):  # two setups in one second
        producer.produce("teed_scores", json.dumps({"episode_id": episode, "instrument_id": 7, "vector_time": 20})
                         .encode(), timestamp=stamp)
    producer.flush(10)
    published = {7: (np.array([10, 20, 30]), np.array([ms + 1, ms + 2, ms + 3]) * 1_000_000)}

    rows = _on_topic(published, kafka_broker.bootstrap, "teed_rows", "ts_recv", (0, 50), identity=None)
    scores = _on_topic(published, kafka_broker.bootstrap, "teed_scores", "vector_time", (0, 50), identity="episode_id")

    assert sorted(rows.tolist()) == [38e6, 67e6]  # 15 is caused by the message up to 20, 30 by the third
    assert sorted(scores.tolist()) == [48e6, 58e6]


def test_a_day_cached_by_another_simulator_is_generated_anew(tmp_path: Path) -> None:
    """Keyed by size alone, a day made before a simulator change was measured ever after."""
    import replay
    from connectors.fingerprint import source_fingerprint
    from flows.bench.runs import simulator_fingerprint
    from flows.cli.bench import bench_day

    current = simulator_fingerprint()
    cache = tmp_path / "cache"
    stale = cache / "day-3000-0000000000000000"       # the same size from another simulator
    stale.mkdir(parents=True)
    (stale / "old.mbo.dbn.zst").write_bytes(b"not this day")
    (cache / "day-3000").mkdir()                      # and from before days were keyed at all
    (cache / "day-3000" / "older.mbo.dbn.zst").write_bytes(b"nor this")

    day = bench_day(cache, 3000)
    assert day.parent.name == f"day-3000-{current}" and day.stat().st_size > 1000
    assert bench_day(cache, 3000) == day              # reused while the simulator is unchanged

    copy = tmp_path / "checkout"                      # any edit of the simulator's source moves the key
    shutil.copytree(Path(replay.__file__).parent, copy / "replay", ignore=shutil.ignore_patterns("__pycache__"))
    assert source_fingerprint(copy, ("replay",)) == current
    (copy / "replay" / "synth.py").write_text((copy / "replay" / "synth.py").read_text() + "\n# a comment\n")
    assert source_fingerprint(copy, ("replay",)) != current
