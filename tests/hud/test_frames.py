"""Frames against the lake: every column of sampled seconds recomputed from the Delta tables by
brute force (row by row, in Python), and the wire's plain types."""

from __future__ import annotations

import bisect
import math
from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from connectors.delta.lake import Lake
from connectors.hud.lake import TABLES, session_contracts, session_rows
from operators.hud.frames import FRAME_SCHEMA, frames, ipc_message
from operators.levels import LEVEL_TYPES
from operators.surfaces import NORM_NAMES
from tests.hud.conftest import same_frames

UNDEF = (1 << 63) - 1
EVERY = 53
"""Seconds compared: every 53rd, plus every second where an episode starts, is scored or resolves."""


def _where(day: date, contract: str) -> str:
    return f"\"session_date\" = '{day.isoformat()}' AND \"contract_id\" = '{contract}'"


def _px(v: Any) -> float:
    return math.nan if v is None or v == UNDEF else v / 1e9


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return bool(got == want)


@pytest.fixture(name="built", scope="module")
def fixture_built(hud_lake: Lake, hud_session: date) -> dict[str, tuple[pa.Table, dict[str, list[dict[str, Any]]]]]:
    """Per contract: the frames, and the lake's rows they were made from (plain dicts)."""
    out = {}
    for contract in session_contracts(hud_lake, hud_session):
        where = _where(hud_session, contract.contract)
        lake_rows = {name: hud_lake.read(spec, where=where).to_pylist() for name, spec in TABLES.items()}
        out[contract.contract] = (frames(session_rows(hud_lake, hud_session, contract), contract.instrument_id),
                                  lake_rows)
    return out


def _expected(ts: int, lake: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One second's frame values, from the lake's rows alone."""
    want: dict[str, Any] = {"t_ms": ts / 1e6}
    book = next(r for r in lake["book"] if r["ts_recv"] == ts)
    for side in ("bid", "ask"):
        for i in range(10):
            want[f"{side}_px_{i}"] = _px(book[f"{side}_px_{i:02d}"])
            want[f"{side}_sz_{i}"] = float(book[f"{side}_sz_{i:02d}"])
            want[f"{side}_ct_{i}"] = float(book[f"{side}_ct_{i:02d}"])
    want.update(best_bid=_px(book["best_bid_px"]), best_ask=_px(book["best_ask_px"]), mid=book["mid_px"],
                last_trade_px=_px(book["last_trade_px"]), volume=float(book["volume"]))
    wall = next(r for r in lake["wall"] if r["ts_recv"] == ts)
    vacuum = next(r for r in lake["vacuum"] if r["ts_recv"] == ts)
    want["spot"] = _px(wall["spot_px"])
    for j in range(41):
        want[f"wall_{j:02d}"], want[f"vacuum_{j:02d}"] = float(wall["depth"][j]), float(vacuum["depletion"][j])
    bands = next(r for r in lake["bands"] if r["ts_recv"] == ts)
    want.update({name: float(bands[name]) for name in NORM_NAMES})
    for level in LEVEL_TYPES:
        row = next((r for r in lake["levels"] if r["level_type"] == level and r["status"] == "ok"), None)
        known = row if row is not None and row["known_ts"] <= ts else None
        want[f"level_{level}"] = known["price"] / 1e9 if known else math.nan
        want[f"level_{level}_known_ms"] = known["known_ts"] / 1e6 if known else math.nan
    labels = {r["episode_id"]: r for r in lake["labels"]}
    started = [a for a in lake["approaches"] if a["start_ts"] <= ts]
    want["episodes_open"] = sum(1 for a in started if a["episode_id"] not in labels
                                or labels[a["episode_id"]]["resolved_ts"] > ts)
    newest = max(started, key=lambda a: (a["start_ts"], a["episode_id"]), default=None)
    want["ep_episode_id"] = newest["episode_id"] if newest else ""
    score = None
    if newest is not None:
        mine = [s for s in lake["scores"] if s["episode_id"] == newest["episode_id"] and s["vector_time"] <= ts]
        score = min(mine, key=lambda s: (s["status"] != "ok", s["model_id"]), default=None)
    for name in ("p_break", "p_reject", "p_chop", "nn_break", "nn_reject", "nn_chop"):
        want[f"ep_{name}"] = math.nan if score is None or score[name] is None else score[name]
    want["nn_count"] = score["nn_count"] if score is not None else 0
    label = labels.get(newest["episode_id"]) if newest else None
    want["ep_outcome"] = label["outcome"] if label is not None and label["resolved_ts"] <= ts else ""
    return want


def test_every_sampled_second_equals_the_lake(built: dict[str, tuple[pa.Table, dict[str, Any]]]) -> None:
    checked = scored = resolved = 0
    for contract, (table, lake) in built.items():
        assert table.num_rows == len(lake["book"]) > 1000
        t_ms = table["t_ms"].to_pylist()
        assert t_ms == sorted(t_ms)
        events = {a["start_ts"] for a in lake["approaches"]} | {s["vector_time"] for s in lake["scores"]} | {
            r["resolved_ts"] for r in lake["labels"]}
        ts_all = [int(round(t * 1e6)) for t in t_ms]
        picks = [i for i, ts in enumerate(ts_all) if i % EVERY == 0 or any(ts - 1_000_000_000 < e <= ts
                                                                             for e in events)]
        for i in picks:
            got = table.slice(i, 1).to_pylist()[0]
            want = _expected(ts_all[i], lake)
            wrong = {k: (got[k], v) for k, v in want.items() if not _same(got[k], v)}
            assert not wrong, (contract, ts_all[i], wrong)
            assert got["contract"] == contract
            checked += 1
            scored += not math.isnan(want["ep_p_break"])
            resolved += want["ep_outcome"] != ""
    assert checked > 500 and scored > 20 and resolved > 20, (checked, scored, resolved)


def test_a_level_appears_at_its_known_second_and_never_before(
        built: dict[str, tuple[pa.Table, dict[str, Any]]]) -> None:
    table, lake = next(iter(built.values()))
    ok = [r for r in lake["levels"] if r["status"] == "ok"]
    assert ok
    t_ms = table["t_ms"].to_numpy()
    for level in ok:
        shown = table[f"level_{level['level_type']}"].to_numpy()
        before = t_ms < level["known_ts"] / 1e6
        assert all(math.isnan(v) for v in shown[before])
        assert (shown[~before] == level["price"] / 1e9).all()


def test_the_wire_uses_plain_types_and_round_trips_through_ipc(
        built: dict[str, tuple[pa.Table, dict[str, Any]]]) -> None:
    plain = {pa.float64(), pa.int32(), pa.string()}
    assert {f.type for f in FRAME_SCHEMA} <= plain
    table, _ = next(iter(built.values()))
    message = ipc_message(table.slice(100, 900), "snapshot")
    reader = pa.ipc.open_stream(message)
    back = reader.read_all()
    assert reader.schema.metadata == {b"version": b"hud.v2", b"kind": b"snapshot"}
    assert not same_frames(back, table.slice(100, 900))
    assert pa.ipc.open_stream(ipc_message(table.slice(0, 0), "frame")).read_all().num_rows == 0


@pytest.mark.integration
def test_a_contracts_gex_is_its_chains_latest_rows_at_or_before_each_second(chain_lake: Lake) -> None:
    """The GEX columns of every frame are the chain's summary row and per-strike sums as of that
    second, recomputed here from the lake row by row; a contract's frames never show another
    contract's chain."""
    from connectors.delta.tables import SILVER_GEX_SUMMARY_1S, SILVER_GEX_SURFACE_1S
    from connectors.hud.lake import sessions
    from operators.hud.frames import GEX_STRIKES

    day = sessions(chain_lake)[-1]
    checked = 0
    for contract in session_contracts(chain_lake, day):
        table = frames(session_rows(chain_lake, day, contract), contract.instrument_id)
        where = f"\"session_date\" = '{day.isoformat()}' AND \"underlying_id\" = {contract.instrument_id}"
        summary = chain_lake.read(SILVER_GEX_SUMMARY_1S, None, where).sort_by("ts_recv").to_pylist()
        surface = chain_lake.read(SILVER_GEX_SURFACE_1S, ["ts_recv", "strike", "net_gex"], where).to_pylist()
        assert summary and surface, contract.contract
        rows = table.to_pylist()
        seconds = [r["ts_recv"] for r in summary]
        for row in rows[:: max(1, len(rows) // 150)]:
            ts = int(row["t_ms"] * 1e6)
            i = bisect.bisect_right(seconds, ts) - 1
            if i < 0 or math.isnan(row["spot"]):
                assert math.isnan(row["gex_net_bn"]) and math.isnan(row["gex_strike_00"])
                continue
            s = summary[i]
            assert row["gex_net_bn"] == pytest.approx(s["net_gex"] / 1e9, rel=1e-12)
            for column, source in (("gex_zero", "zero_gamma"), ("gex_call_wall", "call_wall"),
                                   ("gex_put_wall", "put_wall")):
                want = math.nan if s[source] is None else s[source]
                assert row[column] == want or (math.isnan(row[column]) and math.isnan(want)), column
            by_strike: dict[float, float] = {}
            for r in surface:
                if r["ts_recv"] == s["ts_recv"]:
                    by_strike[r["strike"]] = by_strike.get(r["strike"], 0.0) + r["net_gex"]
            strikes = [row[f"gex_strike_{k:02d}"] for k in range(GEX_STRIKES)]
            assert strikes == sorted(strikes) and set(strikes) <= set(by_strike)
            assert min(strikes) <= row["spot"] <= max(strikes)
            for k, strike in enumerate(strikes):
                assert row[f"gex_bn_{k:02d}"] == pytest.approx(by_strike[strike] / 1e9, rel=1e-9, abs=1e-12)
            checked += 1
    assert checked > 100



def test_strike_totals_add_a_strikes_expiries_in_expiry_order_whatever_order_the_rows_come_in() -> None:
    """The GEX per strike that a frame shows is the same to the last bit however the lake hands
    over the surface's rows (files, row groups, threads): the sums run in expiry order. 0.1, 0.2
    and 0.3 added in that order give 0.6000000000000001; in the reverse order, 0.6."""
    from operators.hud.frames import strike_totals

    rows = [{"ts_recv": t, "strike": k, "expiration": e, "net_gex": g}
            for t in (1_000_000_000, 2_000_000_000) for k in (6800.0, 6805.0)
            for e, g in ((3, 0.3), (2, 0.2), (1, 0.1))]  # latest expiry first
    schema = pa.schema([("ts_recv", pa.int64()), ("strike", pa.float64()), ("expiration", pa.int64()),
                        ("net_gex", pa.float64())])
    surface = pa.Table.from_pylist(rows, schema=schema)
    shuffled = surface.take(pa.array([5, 0, 11, 3, 8, 1, 10, 6, 2, 9, 4, 7]))
    for table in (surface, shuffled):
        got = strike_totals(table).to_pylist()
        assert len(got) == 4
        assert all(r["net_gex"] == (0.1 + 0.2) + 0.3 != 0.6 for r in got)
