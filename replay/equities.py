"""A simulated US stock, TSLA on Nasdaq (``XNAS.ITCH``), from the same engine as the ES futures.

The engine simulates order books in ticks; the stock is its front book with one tick a cent
(27,400 ticks: $274.00), driven by a simulator of its own (its own seed), so the ES files are
byte for byte the same with or without it. Its day is the engine's session, 04:00-16:00 ET:
pre-market and RTH on the stock's calendar date, no overnight. Written per day:

- ``xnas-itch-YYYYMMDD.definition.dbn.zst``: the stock's InstrumentDefMsg (class ``K``, tick 0.01);
- ``xnas-itch-YYYYMMDD.mbo.dbn.zst``: its MBO, opening with a snapshot;
- ``truth/xnas-itch-YYYYMMDD.mbp-10.dbn.zst``: its true top-10 book after every event;
- ``truth/xnas-itch-YYYYMMDD.approaches.csv``: the planted level approaches (``replay/signal.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import chain
from pathlib import Path

import databento_dbn as dbn
import numpy as np

from replay.chain import FuturesPath, PathRecorder
from replay.dbn_writer import ZstWriter, metadata, pack_mbo, pack_mbp10
from replay.engine import C_INSTR, C_TS_RECV
from replay.market import MarketParams
from replay.sessions import Session
from replay.signal import write_approaches
from replay.simulator import Chunk, Simulator

DATASET = "XNAS.ITCH"
PUBLISHER_ID = 2
"""Databento's publisher id of Nasdaq TotalView-ITCH."""
CENT = 10_000_000
"""One cent in Databento's 1e-9 price units: the stock's tick."""
UNDEF_TIMESTAMP = 2**64 - 1
SEED_OFFSET = 0x5EED
"""Added to the sample's seed: the stock's market is not a copy of the ES front month's."""


@dataclass(frozen=True)
class Stock:
    raw_symbol: str
    instrument_id: int


TSLA = Stock("TSLA", 16_244)


@dataclass(frozen=True)
class StockFiles:
    """The stock's files of one day and how many records each holds; its mid through the day."""

    definition: Path
    mbo: Path
    truth: Path | None
    approaches: Path
    mbo_records: int
    truth_records: int
    approaches_records: int
    path: FuturesPath

    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.definition, self.mbo, self.truth, self.approaches) if p is not None)


def stock_simulator(seed: int, params: MarketParams) -> Simulator:
    return Simulator(seed + SEED_OFFSET, params)


def definition(stock: Stock, ts_ns: int) -> bytes:
    """The stock's InstrumentDefMsg as DBN v3 bytes (as Nasdaq's feed defines a listed share)."""
    # databento_dbn's stub declares its enums' members as plain attributes: hence the ignores
    msg = dbn.InstrumentDefMsg(
        PUBLISHER_ID, stock.instrument_id, ts_ns, ts_ns,
        min_price_increment=CENT, display_factor=1_000_000_000,
        raw_symbol=stock.raw_symbol, asset=stock.raw_symbol, security_type="EQS",
        instrument_class=dbn.InstrumentClass.STOCK,  # type: ignore[arg-type]
        security_update_action=dbn.SecurityUpdateAction.ADD,  # type: ignore[arg-type]
        expiration=UNDEF_TIMESTAMP, activation=UNDEF_TIMESTAMP,
        unit_of_measure_qty=1_000_000_000, contract_multiplier=1, price_ratio=1_000_000_000,
        min_lot_size_round_lot=100, min_trade_vol=1, channel_id=0,
        currency="USD", exchange="XNAS", cfi="ESVUFR", unit_of_measure="",
    )
    return bytes(msg)


def _name(day: date, schema: str) -> str:
    return f"xnas-itch-{day:%Y%m%d}.{schema}.dbn.zst"


def front_only(chunk: Chunk) -> Chunk:
    """The engine's records and true books of its front book alone (the stock), indices remapped."""
    mine = chunk.rec[:, C_INSTR] == 0
    position = np.cumsum(mine) - 1
    kept = mine[chunk.tru_idx]
    return Chunk(chunk.rec[mine], position[chunk.tru_idx[kept]], chunk.tru_lv[kept])


def write_stock_day(sim: Simulator, out_dir: Path, sess: Session, events_per_day: int, *, with_truth: bool,
                    stock: Stock = TSLA) -> StockFiles:
    """Simulate the stock's ``sess`` and write its files (the module docstring lists them)."""
    day = sess.trade_date
    ids = np.array([stock.instrument_id, stock.instrument_id], np.uint32)
    paths = {s: out_dir / _name(day, s) for s in ("definition", "mbo")}
    truth_path = out_dir / "truth" / _name(day, "mbp-10")
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    schema = dbn.Schema
    w = ZstWriter.open(paths["definition"], metadata(schema.DEFINITION, [stock], day, sess.start_ns,  # type: ignore[arg-type]
                                                     sess.end_ns, DATASET))
    w.write(definition(stock, sess.start_ns), 1)
    w.close()
    mbo = ZstWriter.open(paths["mbo"], metadata(schema.MBO, [stock], day, sess.start_ns, sess.end_ns, DATASET))  # type: ignore[arg-type]
    truth = (ZstWriter.open(truth_path, metadata(schema.MBP_10, [stock], day, sess.start_ns, sess.end_ns,  # type: ignore[arg-type]
                                                  DATASET)) if with_truth else None)
    sim.begin_day(sess, events_per_day)
    mids = PathRecorder(1)
    for chunk in chain([sim.snapshot()], sim.events()):  # lazily: the engine reuses its buffers
        front = front_only(chunk)
        records = pack_mbo(front.rec, ids, tick=CENT, publisher_id=PUBLISHER_ID)
        last = front.rec[front.tru_idx]
        mids.add(last[:, C_INSTR], last[:, C_TS_RECV], front.tru_lv[:, 0, 0], front.tru_lv[:, 1, 0], CENT / 1e9)
        mbo.write(records, len(records))
        if truth is not None:
            truth.write(pack_mbp10(records, front.tru_idx, front.tru_lv, tick=CENT), len(front.tru_idx))
    mbo.close()
    if truth is not None:
        truth.close()
    approaches = out_dir / "truth" / f"xnas-itch-{day:%Y%m%d}.approaches.csv"
    n_ap = write_approaches(approaches, sim.approaches())
    return StockFiles(paths["definition"], paths["mbo"], truth_path if truth is not None else None, approaches,
                      mbo.records, truth.records if truth is not None else 0, n_ap, mids.path())
