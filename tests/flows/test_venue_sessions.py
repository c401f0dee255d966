"""The same records dated on their feed's calendar through the whole graph: a Nasdaq stock's
post-market stays on its calendar date, where a Globex contract's evening opens the next trade
date; every step after the book counts in the instrument's own tick (0.01, from its definition)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pyarrow.compute as pc
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_DEFINITIONS, BRONZE_MBO, SILVER_BOOK_1S
from operators.records import (
    ACTION_ADD,
    ACTION_CLEAR,
    F_LAST,
    MBO_DTYPE,
    RTYPE_MBO,
    SIDE_ASK,
    SIDE_BID,
    SIDE_NONE,
    UNDEF_PRICE,
)
from operators.sessions import new_york_instant_ns
from tests.connectors.dbn_files import definition_records, write_dbn

DAY = date(2025, 11, 13)  # a Thursday
STOCK = 11
CENT = 10_000_000  # 0.01 dollars in 1e-9 units
QUOTES = ((SIDE_NONE, 0), (SIDE_BID, 25_000), (SIDE_ASK, 25_001), (SIDE_BID, 24_998), (SIDE_ASK, 25_003))
"""Per block: a clear (the book starts from it), then four orders (cents)."""
EVENING = ((17, 30), (18, 30), (19, 30))  # New York wall clock on DAY


def _mbo() -> np.ndarray:
    rec = np.zeros(len(EVENING) * len(QUOTES), MBO_DTYPE)
    rec["length"], rec["rtype"] = MBO_DTYPE.itemsize // 4, RTYPE_MBO
    rec["publisher_id"], rec["instrument_id"] = 2, STOCK
    rec["flags"], rec["action"], rec["size"] = F_LAST, bytes([ACTION_ADD]), 100
    k = 0
    for hour, minute in EVENING:
        for j, (side, cents) in enumerate(QUOTES):
            ts = new_york_instant_ns(DAY, hour, minute) + j * 1_000_000
            rec[k]["ts_recv"] = rec[k]["ts_event"] = ts
            rec[k]["order_id"], rec[k]["sequence"] = k + 1, k + 1
            rec[k]["side"], rec[k]["price"] = bytes([side]), cents * CENT if cents else UNDEF_PRICE
            if side == SIDE_NONE:
                rec[k]["action"], rec[k]["size"] = bytes([ACTION_CLEAR]), 0
            k += 1
    return rec


def _feed(folder: Path, dataset: str) -> Path:
    """One day of the stock as ``dataset`` publishes it: its MBO file and its definition file."""
    folder.mkdir(parents=True)
    start, end = new_york_instant_ns(DAY, 4), new_york_instant_ns(DAY, 20)
    prefix = dataset.lower().replace(".", "-")
    definition = definition_records([{"instrument_id": STOCK, "raw_symbol": b"TSLA", "instrument_class": b"K",
                                      "min_price_increment": CENT, "ts_recv": start, "ts_event": start}])
    write_dbn(folder / f"{prefix}-{DAY:%Y%m%d}.definition.dbn.zst", definition, schema=dbn.Schema.DEFINITION,  # type: ignore[arg-type]
              symbols={"TSLA": STOCK}, start_ns=start, end_ns=end, dataset=dataset)
    write_dbn(folder / f"{prefix}-{DAY:%Y%m%d}.mbo.dbn.zst", _mbo(), symbols={"TSLA": STOCK}, start_ns=start,
              end_ns=end, dataset=dataset)
    return folder


@pytest.fixture(name="lakes", scope="module")
def fixture_lakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Lake]:
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config  # the replay fixture's own builder, module-scoped here

    root = tmp_path_factory.mktemp("venues")
    out = {}
    for dataset in ("XNAS.ITCH", "GLBX.MDP3"):
        prepared = prepare(app_config([_feed(root / dataset / "in", dataset)], root / dataset / "lake"))
        run_flow(prepared, workers=1)
        out[dataset] = prepared.lake
    return out


def _dates(lake: Lake, spec, column: str = "session_date") -> list[date]:
    return lake.read(spec, [column])[column].to_pylist()


def test_a_nasdaq_stock_keeps_its_post_market_on_its_calendar_date(lakes: dict[str, Lake]) -> None:
    lake = lakes["XNAS.ITCH"]

    assert _dates(lake, BRONZE_MBO) == [DAY] * 15
    assert set(_dates(lake, SILVER_BOOK_1S)) == {DAY}


def test_the_same_records_on_globex_open_the_next_trade_date_at_18_00(lakes: dict[str, Lake]) -> None:
    lake = lakes["GLBX.MDP3"]
    ts = lake.read(BRONZE_MBO, ["ts_recv", "session_date"]).sort_by("ts_recv")

    assert ts["session_date"].to_pylist() == [DAY] * 5 + [DAY + timedelta(days=1)] * 10
    assert set(_dates(lake, SILVER_BOOK_1S)) == {DAY, DAY + timedelta(days=1)}


def test_the_book_counts_in_the_stocks_own_tick(lakes: dict[str, Lake]) -> None:
    lake = lakes["XNAS.ITCH"]
    book = lake.read(SILVER_BOOK_1S, ["best_bid_px", "best_ask_px", "spread_ticks"])
    quoted = book.filter(pc.is_valid(book["best_ask_px"]))

    assert lake.read(BRONZE_DEFINITIONS, ["tick_size"])["tick_size"].to_pylist() == [CENT]
    assert set(quoted["best_bid_px"].to_pylist()) == {25_000 * CENT}
    assert set(quoted["spread_ticks"].to_pylist()) == {1}  # 250.00 x 250.01: one cent, one tick

