"""Shared fixtures: a small simulated sample, and running the real flow into a real lake."""
# ruff: noqa: E402 (numba's cache is pointed at before the imports below load any kernel)

from __future__ import annotations

from connectors.numba_cache import use_source_keyed_cache

use_source_keyed_cache()  # before the first kernel module is imported (see connectors.numba_cache)

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import TableSpec
from flows.app import prepare
from flows.config import AppConfig, load_config
from flows.runner import run_flow

if TYPE_CHECKING:  # the stand-in imports proton: only the tests that start it pay for that
    from replay.synth import SampleManifest
    from tests.services.eventhubs_amqp import StandIn

SAMPLE_DAYS = 2
SAMPLE_EVENTS_PER_DAY = 40_000


@pytest.fixture(name="sample_dir", scope="session")
def fixture_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated trading days (definitions, MBO, statistics, truth), generated once."""
    from replay.synth import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(out, days=SAMPLE_DAYS, seed=3, events_per_day=SAMPLE_EVENTS_PER_DAY)
    return out


@pytest.fixture(name="chain_sample", scope="session")
def fixture_chain_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    """Two simulated days of ES futures with their options chains (``spymaster synth --options``)."""
    from replay.synth import write_sample

    return write_sample(tmp_path_factory.mktemp("chains"), days=2, seed=5, events_per_day=30_000, truth=False,
                        options=True)


@pytest.fixture(name="chain_lake", scope="session")
def fixture_chain_lake(chain_sample: SampleManifest, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """``chain_sample`` replayed by the real flow (one worker)."""
    prepared = prepare(app_config([chain_sample.out_dir], tmp_path_factory.mktemp("chain-lake") / "lake"))
    run_flow(prepared, workers=1)
    return prepared.lake


def app_config(inputs: Sequence[Path | str], lake: Path, **lake_overrides: Any) -> AppConfig:
    cfg = load_config({})
    return replace(
        cfg,
        source=replace(cfg.source, inputs=tuple(str(p) for p in inputs), batch_records=8_192),
        lake=replace(cfg.lake, root=str(lake), **lake_overrides),
        run=replace(cfg.run, run_id="test"),
    )


@pytest.fixture(name="replay")
def fixture_replay() -> Callable[..., Lake]:
    """Run the real flow in-process: ``replay(inputs, lake_dir, workers=1, overwrite=False)``."""

    def run(inputs: Sequence[Path | str], lake: Path, *, workers: int = 1, overwrite: bool = False,
            **lake_overrides: object) -> Lake:
        cfg = app_config(inputs, lake, **lake_overrides)
        cfg = replace(cfg, run=replace(cfg.run, overwrite=overwrite))
        prepared = prepare(cfg)
        run_flow(prepared, workers=workers)
        return prepared.lake

    return run


WALL_CLOCK_COLUMNS = ("ts_ingest", "scored_at", "latency_ms")
"""The columns that differ between runs of the same input (SPEC §1): ingest and scoring times."""


def table_content(lake: Lake, spec: TableSpec, drop: Sequence[str] = WALL_CLOCK_COLUMNS) -> pa.Table:
    """A table's rows in a canonical order (all columns sorted), without wall-clock columns.

    NaN is replaced by a sentinel so that two tables with NaN in the same places compare equal
    with ``Table.equals`` (Arrow, like IEEE, says NaN != NaN).
    """
    table = lake.read(spec)
    table = table.drop_columns([c for c in drop if c in table.column_names])
    keys = [(c, "ascending") for c in table.column_names if not pa.types.is_list(table.schema.field(c).type)]
    table = table.sort_by(keys).combine_chunks()
    return pa.table({name: _without_nan(table[name]) for name in table.column_names})


def table_versions(lake: Lake) -> dict[str, int | None]:
    """Every table's Delta version (``None`` where the table does not exist): equal before and
    after a run exactly when the run committed nothing."""
    from connectors.delta.tables import ALL_TABLES

    return {s.name: (t.version() if (t := lake.open(s)) is not None else None) for s in ALL_TABLES}


def _without_nan(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_floating(kind):
        return pc.if_else(pc.is_nan(column), pa.scalar(-1.2345e300, kind), column)
    if pa.types.is_list(kind) and pa.types.is_floating(kind.value_type):
        arr = column.combine_chunks()
        values = pc.if_else(pc.is_nan(arr.values), pa.scalar(-1.2345e30, kind.value_type), arr.values)
        return pa.chunked_array([pa.ListArray.from_arrays(arr.offsets, values, mask=arr.is_null())])
    return column


@pytest.fixture(autouse=True, scope="module")
def _close_scorers_with_their_module() -> Iterator[None]:
    """Flows run in-process leave scorers in the shared ``ScorerPool``, each with an alias
    follower reading its registry every second; they go with the module that made them."""
    yield
    from flows.scorer_pool import POOL

    POOL.close()


@pytest.fixture(name="kafka_broker", scope="session")
def fixture_kafka_broker(tmp_path_factory: pytest.TempPathFactory):
    """A real Kafka-protocol broker (tansu) on 127.0.0.1 for the whole test session."""
    from tests.services.kafka_broker import running_broker

    with running_broker(tmp_path_factory.mktemp("tansu") / "tansu.log") as broker:
        yield broker


EVENT_HUBS = {"parity": 4, "bad": 1, "resume": 2, "keys": 4, "sizes": 1, "config": 2, "ingest": 2, "crash": 4}
"""The stand-in namespace's hubs and their partitions: every test reads or writes its own hub (the
stand-in keeps events for the whole session)."""


@pytest.fixture(name="eventhubs", scope="session")
def fixture_eventhubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """The stand-in Event Hubs namespace (AMQP 1.0) on a free loopback port (Basic tier's 256 KB
    limit) for the whole test session, stopped by PID."""
    from tests.services.eventhubs_amqp import running_namespace

    with running_namespace(tmp_path_factory.mktemp("eventhubs") / "stand-in.log", EVENT_HUBS) as namespace:
        yield namespace


MULTI_DAY_DAYS = 10
MULTI_DAY_SEED = 11
MULTI_DAY_EVENTS_PER_DAY = 60_000


@pytest.fixture(name="multi_day_lake", scope="session")
def fixture_multi_day_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Ten simulated sessions (seed 11, 60k events/day, planted signal on) replayed once into a lake.

    About 310 labelled episodes in ``gold.training_view`` (~31 a day), for the learning and
    retrieval acceptance tests (train on the earlier sessions, test on the later ones). The replay
    takes ~25 s on one worker.
    """
    from replay.synth import write_sample

    root = tmp_path_factory.mktemp("multi_day")
    write_sample(root / "in", days=MULTI_DAY_DAYS, seed=MULTI_DAY_SEED, events_per_day=MULTI_DAY_EVENTS_PER_DAY)
    prepared = prepare(app_config([root / "in"], root / "lake"))
    run_flow(prepared, workers=1)
    return prepared.lake


def lake_differences(got: Lake, want: Lake, specs: Sequence[TableSpec],
                     drop: Sequence[str] = WALL_CLOCK_COLUMNS, *, shown: int = 3) -> list[str]:
    """What differs between two lakes, table by table, in words a failing test can print: row
    counts, then the rows only one side has (as whole rows, so a duplicate, a missing row and a
    changed value are told apart). Empty when every table is equal."""
    out = []
    for spec in specs:
        a, b = table_content(got, spec, drop), table_content(want, spec, drop)
        if a.equals(b):
            continue
        rows_a, rows_b = a.to_pylist(), b.to_pylist()
        keyed_a, keyed_b = Counter(map(repr, rows_a)), Counter(map(repr, rows_b))
        extra, missing = keyed_a - keyed_b, keyed_b - keyed_a
        line = [f"{spec.name}: {a.num_rows} rows, want {b.num_rows}; {sum(extra.values())} rows not wanted, "
                f"{sum(missing.values())} rows missing"]
        line += [f"  not wanted ×{n}: {row}" for row, n in list(extra.items())[:shown]]
        line += [f"  missing ×{n}: {row}" for row, n in list(missing.items())[:shown]]
        out.append("\n".join(line))
    return out


_EXIT_STATUS = pytest.StashKey[int]()
THREADS_END_S = 5.0
"""How long the session's end waits for threads that are finishing (an SDK's one-second sleeps)."""


def _threads_left() -> list:
    import sys
    import threading

    frames = sys._current_frames()
    return [t for t in threading.enumerate()
            if t is not threading.main_thread() and frames.get(t.ident or -1) is not None]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the process's scorers (their alias followers poll the registry), give finishing
    threads a moment, then name every thread still running, with where it is.

    A daemon thread inside native code when the interpreter shuts down can abort the process
    after every test passed; the report says which fixture or component left one running, and
    ``pytest_unconfigure`` then ends the process without the interpreter's shutdown.
    """
    import sys
    import time
    import traceback

    from flows.scorer_pool import POOL

    POOL.close()
    session.config.stash[_EXIT_STATUS] = int(exitstatus)
    deadline = time.monotonic() + THREADS_END_S
    while _threads_left() and time.monotonic() < deadline:
        time.sleep(0.1)
    frames = sys._current_frames()
    for thread in _threads_left():
        frame = frames.get(thread.ident or -1)
        if frame is None:
            continue
        where = "".join(traceback.format_stack(frame, limit=2))
        sys.stderr.write(f"thread left running at the end: {thread.name}\n{where}")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """With threads still running after every report is written, leave with the session's status.

    CPython stops a daemon thread that wakes during shutdown with ``pthread_exit``; inside C++
    (a Cython ``except +`` frame) that unwinding aborts the process, turning a passed run into a
    crash. The threads were named above; the run's verdict is the tests', not the shutdown's.
    """
    import os
    import sys

    status = config.stash.get(_EXIT_STATUS, None)
    if status is None or not _threads_left():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
