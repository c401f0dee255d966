"""``LiveSession`` on its own: the lake's rows of a session, as JSON objects, fed table by table in
shuffled interleavings (each table in its own order, as one topic partition delivers it), with
``advance`` between deliveries; what it has sent equals the replay's frames."""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import numpy as np
import pytest

from connectors.delta.lake import Lake
from connectors.hud.lake import COLUMNS, TABLES, session_contracts, session_rows
from connectors.kafka.outputs import rows_as_json
from flows.services.hud import live_schemas
from operators.hud.frames import frames
from operators.hud.live import LiveSession
from tests.hud.conftest import same_frames


def _topic_rows(lake: Lake, day: date, contract: str) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows of the contract and session as the flow's topics carry them."""
    where = f"\"session_date\" = '{day.isoformat()}' AND \"contract_id\" = '{contract}'"
    out = {}
    for name, spec in TABLES.items():
        extra = ["event_count"] if name == "book" else []
        table = lake.read(spec, ["contract_id", "session_date", "instrument_id", *COLUMNS[name], *extra], where)
        out[name] = [json.loads(r) for r in rows_as_json(table.sort_by([(COLUMNS[name][0], "ascending")]))]
    return out


@pytest.fixture(name="delivered", scope="module")
def fixture_delivered(hud_lake: Lake, hud_session: date) -> list[tuple[Any, Any, dict[str, list[dict[str, Any]]]]]:
    """Per contract: its info, the replay's frames, and its rows as the topics carry them."""
    return [(c, frames(session_rows(hud_lake, hud_session, c), c.instrument_id),
             _topic_rows(hud_lake, hud_session, c.contract)) for c in session_contracts(hud_lake, hud_session)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.slow
def test_shuffled_deliveries_send_the_replays_frames(delivered: list[tuple[Any, Any, dict[str, list[dict[str, Any]]]]],
                                                    hud_session: date, seed: int) -> None:
    rng = random.Random(seed)
    for contract, want, rows in delivered:
        session = LiveSession(contract.contract, hud_session.isoformat(), contract.instrument_id, live_schemas())
        cursor = {name: 0 for name in rows}
        sent = 0
        while any(cursor[n] < len(rows[n]) for n in rows):
            name = rng.choice([n for n in rows if cursor[n] < len(rows[n])])
            take = rng.randint(1, 1500)
            session.add(name, rows[name][cursor[name]:cursor[name] + take])
            cursor[name] += take
            if rng.random() < 0.3:
                sent += session.advance().num_rows
                t = session.sent["t_ms"].to_pylist()
                assert t == sorted(t) and len(set(t)) == len(t)
        session.advance()
        assert sent > 0
        assert not same_frames(session.sent, want), (contract.contract, seed)


@pytest.mark.slow
def test_a_contract_no_page_shows_gets_no_frames_until_one_asks_then_the_replays(
        delivered: list[tuple[Any, Any, dict[str, list[dict[str, Any]]]]]) -> None:
    """The live source builds frames only for contracts a page shows; one nobody showed is caught
    up in one pass when a page asks for its history, and its frames are the replay's."""
    from connectors.hud.topics import TopicRows
    from connectors.kafka.outputs import OutputConfig
    from flows.services.hud import LiveSource

    assert len(delivered) >= 2
    (shown, _, shown_rows), (hidden, hidden_want, hidden_rows) = delivered[0], delivered[1]
    source = LiveSource(TopicRows(OutputConfig(), {}), live_schemas())
    source.watched = lambda contract: contract == shown.contract
    published: list[str] = []
    deliveries = [(name, row) for rows in (shown_rows, hidden_rows) for name in rows for row in rows[name]]
    for k in range(0, len(deliveries), 2_000):
        source._take(deliveries[k:k + 2_000], lambda contract, _rows: published.append(contract))  # noqa: SLF001
    assert published and set(published) == {shown.contract}
    assert {c.contract for c in source.contracts()} >= {shown.contract, hidden.contract}
    hidden_frames = source.history(hidden.contract, 24 * 60.0)
    assert hidden_frames.num_rows == hidden_want.num_rows
    assert not same_frames(hidden_frames, hidden_want), hidden.contract


Delivery = tuple[Any, Any, dict[str, list[dict[str, Any]]]]


@pytest.fixture(name="chain_delivery", scope="module")
def fixture_chain_delivery(tmp_path_factory: pytest.TempPathFactory) -> Delivery:
    """An ES day with its options replayed: the front contract's info, the replay's frames (its
    chain's GEX included), and its rows as the topics carry them, the chain's two GEX tables too."""
    from connectors.hud.lake import GEX_COLUMNS, GEX_TABLES
    from replay.synth import write_sample
    from tests.conftest import app_config

    sample = write_sample(tmp_path_factory.mktemp("chain-hud"), days=1, seed=3, events_per_day=10_000, truth=False,
                          options=True)
    lake = _replayed(app_config([sample.out_dir], tmp_path_factory.mktemp("chain-hud-lake")))
    day = session_contracts_dates(lake)
    contract = session_contracts(lake, day)[0]
    rows = _topic_rows(lake, day, contract.contract)
    where = f"\"session_date\" = '{day.isoformat()}' AND \"underlier\" = '{contract.contract}'"
    for name, columns in GEX_COLUMNS.items():
        table = lake.read(GEX_TABLES[name], ["underlier", "session_date", *columns], where)
        rows[name] = [json.loads(r) for r in rows_as_json(table.sort_by([("ts_recv", "ascending")]))]
    return contract, frames(session_rows(lake, day, contract), contract.instrument_id), rows


def _replayed(cfg: Any) -> Lake:
    from flows.app import prepare
    from flows.runner import run_flow

    prepared = prepare(cfg)
    run_flow(prepared)
    return prepared.lake


def session_contracts_dates(lake: Lake) -> date:
    from connectors.hud.lake import sessions

    (day,) = sessions(lake)
    return day


@pytest.mark.integration
def test_a_chains_gex_arriving_after_its_seconds_gives_the_replays_frames(chain_delivery: Delivery) -> None:
    """The chain's rows come late (after the book's, as a chain's clock trails the book's), some
    surface rows twice (an at-least-once topic); the frames sent equal the replay's, GEX panel and
    zero-gamma line included."""
    from connectors.hud.topics import TopicRows
    from connectors.kafka.outputs import OutputConfig
    from flows.services.hud import LiveSource

    contract, want, rows = chain_delivery
    assert len(rows["gex_summary"]) > 100 and len(rows["gex_surface"]) > 10_000
    assert np.isfinite(want["gex_net_bn"].to_numpy(zero_copy_only=False)).sum() > want.num_rows // 2
    source = LiveSource(TopicRows(OutputConfig(), {}), live_schemas())
    rng = random.Random(3)
    plain = [(n, r) for n in rows if n not in ("gex_summary", "gex_surface") for r in rows[n]]
    chain = [(n, r) for n in ("gex_summary", "gex_surface") for r in rows[n]]
    chain.sort(key=lambda nr: nr[1]["ts_recv"])
    chain += rng.sample(chain, 500)  # delivered twice
    sent = 0
    published = lambda _contract, table: None  # noqa: E731 - frames are read from the session below
    source._take(chain[:50], published)  # noqa: SLF001 - a chain's rows before its contract's: kept
    for k in range(0, max(len(plain), len(chain)), 3_000):
        source._take(plain[k:k + 3_000], published)  # noqa: SLF001
        source._take(chain[50 + k // 2:50 + (k + 3_000) // 2], published)  # noqa: SLF001 - trailing the book
        sent += 1
    source._take(chain[50 + len(plain) // 2:], published)  # noqa: SLF001
    session = source._sessions[contract.contract]  # noqa: SLF001
    assert sent > 3 and not same_frames(session.sent, want), contract.contract
