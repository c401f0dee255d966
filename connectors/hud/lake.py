"""What the heads-up display replays: one session's rows per contract, read from the Delta tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    BRONZE_DEFINITIONS,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    SILVER_BOOK_1S,
    SILVER_GEX_SUMMARY_1S,
    SILVER_GEX_SURFACE_1S,
    SILVER_LEVEL_APPROACH,
    SILVER_PHYSICS_BANDS_1S,
    SILVER_SESSION_LEVELS,
    SILVER_VACUUM_SURFACE_1S,
    SILVER_WALL_SURFACE_1S,
    TableSpec,
)
from operators.errors import ConfigError
from operators.hud.frames import LADDER, SessionRows, strike_totals
from operators.surfaces import NORM_NAMES


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """A contract the display can show: its id, tick and how active its session was (events)."""

    contract: str
    instrument_id: int
    tick: int
    events: int


BOOK_COLUMNS = ["ts_recv", "book_valid",
                *[f"{side}_{kind}_{i:02d}" for side in ("bid", "ask") for kind in ("px", "sz", "ct")
                  for i in range(LADDER)],
                "best_bid_px", "best_ask_px", "mid_px", "last_trade_px", "last_trade_sz", "volume"]
"""The columns of ``silver.book_snapshot_1s`` a frame is made of."""
COLUMNS: dict[str, list[str]] = {
    "book": BOOK_COLUMNS,
    "wall": ["ts_recv", "spot_px", "depth"],
    "vacuum": ["ts_recv", "spot_px", "depletion"],
    "bands": ["ts_recv", *NORM_NAMES],
    "levels": ["level_type", "price", "known_ts", "status"],
    "approaches": ["episode_id", "level_type", "direction", "start_ts", "level_price"],
    "scores": ["episode_id", "model_id", "status", "vector_time", "p_break", "p_reject", "p_chop", "nn_break",
               "nn_reject", "nn_chop", "nn_count"],
    "labels": ["episode_id", "outcome", "resolved_ts"],
}
"""Per ``SessionRows`` field: the columns read (the same names arrive on the live topics)."""
TABLES: dict[str, TableSpec] = {
    "book": SILVER_BOOK_1S, "wall": SILVER_WALL_SURFACE_1S, "vacuum": SILVER_VACUUM_SURFACE_1S,
    "bands": SILVER_PHYSICS_BANDS_1S, "levels": SILVER_SESSION_LEVELS, "approaches": SILVER_LEVEL_APPROACH,
    "scores": GOLD_INFERENCE_SCORES, "labels": GOLD_LABELS,
}


def _where(session: date, contract: str | None = None) -> str:
    clause = f"\"session_date\" = '{session.isoformat()}'"
    if contract is not None:
        clause += " AND \"contract_id\" = '" + contract.replace("'", "''") + "'"
    return clause


def sessions(lake: Lake) -> list[date]:
    """Sessions with book rows, oldest first."""
    days = lake.read(SILVER_BOOK_1S, ["session_date"])
    return sorted(set(days["session_date"].to_pylist())) if days.num_rows else []


def session_contracts(lake: Lake, session: date) -> list[ContractInfo]:
    """The session's contracts, most active (most book events) first."""
    book = lake.read(SILVER_BOOK_1S, ["contract_id", "instrument_id", "event_count"], _where(session))
    if book.num_rows == 0:
        known = ", ".join(d.isoformat() for d in sessions(lake)) or "none"
        msg = f"the lake at {lake.root} has no book rows for session {session.isoformat()} (sessions: {known})"
        raise ConfigError(msg)
    totals = book.group_by(["contract_id", "instrument_id"]).aggregate([("event_count", "sum")]).to_pylist()
    definitions = lake.read(BRONZE_DEFINITIONS, ["instrument_id", "tick_size"])
    ticks = dict(zip(definitions["instrument_id"].to_pylist(), definitions["tick_size"].to_pylist(), strict=True))
    found = [ContractInfo(r["contract_id"], int(r["instrument_id"]), int(ticks.get(r["instrument_id"]) or 0),
                          int(r["event_count_sum"] or 0)) for r in totals]
    return sorted(found, key=lambda c: (-c.events, c.contract))


def session_rows(lake: Lake, session: date, contract: ContractInfo) -> SessionRows:
    """Every row the frames of one contract and session are made of."""
    where = _where(session, contract.contract)
    read = {name: lake.read(TABLES[name], COLUMNS[name], where) for name in COLUMNS}
    return SessionRows(contract.contract, session.isoformat(), contract.tick, **read,
                       **gex_rows(lake, session, contract))


GEX_COLUMNS: dict[str, list[str]] = {
    "gex_summary": ["ts_recv", "net_gex", "zero_gamma", "call_wall", "put_wall"],
    "gex_surface": ["ts_recv", "strike", "expiration", "net_gex"],
}
"""The option chain's columns a frame is made of (read by the chain's underlier, not by contract)."""
GEX_TABLES: dict[str, TableSpec] = {"gex_summary": SILVER_GEX_SUMMARY_1S, "gex_surface": SILVER_GEX_SURFACE_1S}


def gex_rows(lake: Lake, session: date, contract: ContractInfo) -> dict[str, pa.Table]:
    """The GEX of the option chain written on ``contract`` (empty tables when it has none)."""
    where = f"\"session_date\" = '{session.isoformat()}' AND \"underlying_id\" = {contract.instrument_id}"
    summary = lake.read(GEX_TABLES["gex_summary"], GEX_COLUMNS["gex_summary"], where)
    surface = lake.read(GEX_TABLES["gex_surface"], GEX_COLUMNS["gex_surface"], where)  # empty: no chain
    return {"gex_summary": summary, "gex_strikes": strike_totals(surface)}

