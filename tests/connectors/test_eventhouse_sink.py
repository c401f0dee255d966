"""The Eventhouse sink partition against the local Eventhouse, with a clock the test moves.

A score row is acknowledged one flush interval after it arrives, in one request, and not
before; what is not acknowledged is the partition's state and is sent again by a resumed
partition; a permanent refusal stops the flow with a sentence naming the table and the fix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from connectors.delta.tables import GOLD_INFERENCE_SCORES
from connectors.kusto.client import EventhouseError
from connectors.kusto.config import EventhouseConfig
from connectors.kusto.rows import scores_rows
from connectors.kusto.sink import EventhouseSink
from connectors.kusto.tables import OUTCOMES, SCORES
from flows.jobs.eventhouse import SCHEMA_SCRIPT
from flows.services.eventhouse import FaultSettings, LocalEventhouse
from tests.connectors.manual_clock import ManualClock

T0 = 1_762_246_805_000_000_000


@pytest.fixture(name="eh", scope="module")
def fixture_eh() -> Iterator[LocalEventhouse]:
    with LocalEventhouse() as eh:
        eh.apply_script(SCHEMA_SCRIPT.read_text())
        yield eh


def _scores(first: int, n: int) -> pa.Table:
    rows = []
    for i in range(first, first + n):
        row: dict[str, Any] = {name: None for name in GOLD_INFERENCE_SCORES.schema.names}
        row |= {"episode_id": f"ep{i}", "model_id": "ES_MODEL", "model_version": "1", "contract_id": "ESZ5",
                "instrument_id": 1, "underlier": "ES", "session_date": date(2025, 11, 4), "vector_time": T0 + i,
                "p_break": 0.25, "p_reject": 0.5, "p_chop": 0.25, "nn_episode_ids": ["a"], "status": "ok"}
        rows.append(row)
    return scores_rows(pa.Table.from_pylist(rows, schema=GOLD_INFERENCE_SCORES.schema))


def _held(eh: LocalEventhouse, prefix: str) -> list[str]:
    rows = eh.query(f"Scores | where episode_id startswith '{prefix}' | project episode_id | order by episode_id asc")
    return [r["episode_id"] for r in rows]


def _requests(eh: LocalEventhouse) -> int:
    return int(eh.stats()["ingest_ok"])


def test_a_score_lands_one_flush_interval_after_it_arrives_in_one_request(eh: LocalEventhouse) -> None:
    clock = ManualClock()
    sink = EventhouseSink(EventhouseConfig(uri=eh.url, auth="none", flush_s=1.0), SCORES, clock=clock)
    part = sink.build_part("eventhouse_scores", "eventhouse.Scores#0", None)
    before = _requests(eh)
    part.write_batch([_scores(0, 1).set_column(0, "episode_id", pa.array(["flush0"]))])
    clock.advance(0.5)
    assert _held(eh, "flush") == [] and _requests(eh) == before  # not due yet
    snapshot = part.snapshot()
    assert snapshot is not None and snapshot["episode_id"].to_pylist() == ["flush0"]  # not acknowledged: state
    clock.advance(0.5)
    assert _held(eh, "flush") == ["flush0"]
    assert _requests(eh) == before + 1
    assert part.snapshot() is None  # acknowledged: nothing to re-send
    part.close()
    assert sink.stats.acknowledged == {"Scores": 1}


def test_unacknowledged_rows_are_the_state_and_a_resumed_partition_sends_them(eh: LocalEventhouse) -> None:
    cfg = EventhouseConfig(uri=eh.url, auth="none", flush_s=0.05)
    eh.set_faults(FaultSettings(fail_share=1.0, kinds=("500",)))
    try:
        part = EventhouseSink(cfg, SCORES).build_part("eventhouse_scores", "eventhouse.Scores#0", None)
        part.write_batch([_scores(0, 3).set_column(0, "episode_id", pa.array(["down0", "down1", "down2"]))])
        deadline = time.monotonic() + 30
        while eh.stats()["faults"]["500"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        state = part.snapshot()  # the Eventhouse refuses everything: the rows are still owed
        assert state is not None and state["episode_id"].to_pylist() == ["down0", "down1", "down2"]
        part._shipper.stop()  # the process dies here
    finally:
        eh.set_faults(FaultSettings())
    resumed = EventhouseSink(cfg, SCORES).build_part("eventhouse_scores", "eventhouse.Scores#0", state)
    resumed.close()  # end of input: waits for the acknowledgement
    assert _held(eh, "down") == ["down0", "down1", "down2"]


def test_a_permanent_refusal_names_the_table_and_the_fix(eh: LocalEventhouse) -> None:
    """A table the schema never created (an Eventhouse the schema was not applied to)."""
    missing = replace(OUTCOMES, name="OutcomesV2")
    cfg = EventhouseConfig(uri=eh.url, auth="none", flush_s=0.01)
    part = EventhouseSink(cfg, missing).build_part("eventhouse_outcomes", "eventhouse.OutcomesV2#0", None)
    rejected = eh.stats()["ingest_rejected"]
    part.write_batch([pa.table({c: pa.nulls(1) for c in OUTCOMES.column_names})])
    deadline = time.monotonic() + 30
    with pytest.raises(EventhouseError, match=r"table OutcomesV2 .*spymaster eventhouse apply"):
        while time.monotonic() < deadline:
            part.write_batch([])
            time.sleep(0.02)
    # the managed client makes its three attempts; ours makes none after a permanent refusal
    assert eh.stats()["ingest_rejected"] == rejected + 3
