"""Write a deterministic multi-day sample of Databento files from the market simulator.

Per trading day ``YYYYMMDD`` under ``out_dir``:

- ``glbx-mdp3-YYYYMMDD.definition.dbn.zst``: an InstrumentDefMsg per contract (ESZ5, ESH6);
- ``glbx-mdp3-YYYYMMDD.mbo.dbn.zst``: MBO from 04:00 to 16:00 New York time, opening with a
  snapshot per contract (``R`` then ``A`` records flagged F_SNAPSHOT|F_BAD_TS_RECV);
- ``glbx-mdp3-YYYYMMDD.statistics.dbn.zst``: settlement, high, low, volume, open interest at the close;
- ``truth/glbx-mdp3-YYYYMMDD.mbp-10.dbn.zst``: the simulator's true top-10 book after every
  event (every record with F_LAST), including one after each snapshot;
- ``truth/glbx-mdp3-YYYYMMDD.approaches.csv``: every level approach of the front contract in
  09:30-13:30 ET with the planted signal's inputs, probabilities, drawn and realised outcome
  (``replay/signal.py``, ``docs/simulator.md``).

With ``equities=True``, also a US stock, TSLA on Nasdaq (``replay/equities.py``):
``xnas-itch-YYYYMMDD.{definition,mbo}.dbn.zst``, its true book and its planted approaches under
``truth/``.

With ``options=True``, also the ES options chain on those futures (``replay/chain.py``):
``glbx-mdp3-YYYYMMDD.options.{definition,statistics,mbo}.dbn.zst`` (calls and puts with strike,
expiration and underlying; open interest as of the prior close, published at the session start;
market-maker quotes and trades) and ``truth/glbx-mdp3-YYYYMMDD.options.mbp-10.dbn.zst`` (each
option's true top of book after every event). The futures files are the same with or without.

The same arguments give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import databento_dbn as dbn
import numpy as np

from replay import chain as ch
from replay import equities as eq
from replay.contracts import CONTRACTS, TICK_NANO, definition, statistics
from replay.dbn_writer import Listed, ZstWriter, metadata, pack_mbo, pack_mbp10
from replay.engine import C_INSTR, C_TS_RECV
from replay.equity_chain import ChainFiles, EquityChainSimulator, write_chain_day
from replay.market import MarketParams
from replay.sessions import Session, session, trading_days
from replay.signal import write_approaches
from replay.simulator import Chunk, Simulator

INSTRUMENT_IDS = np.array([c.instrument_id for c in CONTRACTS], dtype=np.uint32)


@dataclass(frozen=True)
class DayFiles:
    """The files written for one trading day and how many records each holds."""

    trade_date: date
    definition: Path
    mbo: Path
    statistics: Path
    truth: Path
    definition_records: int
    mbo_records: int
    statistics_records: int
    truth_records: int
    approaches: Path | None = None
    approaches_records: int = 0
    options: OptionFiles | None = None
    equities: eq.StockFiles | None = None
    stock_options: ChainFiles | None = None


@dataclass(frozen=True)
class OptionFiles:
    """The options chain's files of one day and their record counts."""

    definition: Path
    statistics: Path
    mbo: Path
    truth: Path
    instruments: int
    statistics_records: int
    mbo_records: int
    truth_records: int

    def paths(self) -> tuple[Path, ...]:
        return self.definition, self.statistics, self.mbo, self.truth


@dataclass(frozen=True)
class SampleManifest:
    """What ``write_sample`` wrote, day by day."""

    out_dir: Path
    seed: int
    events_per_day: int
    days: tuple[DayFiles, ...]

    @property
    def mbo_records(self) -> int:
        return sum(d.mbo_records for d in self.days)

    def files(self) -> list[Path]:
        out = []
        for d in self.days:
            out += [d.definition, d.mbo, d.statistics, d.truth, d.approaches, *(d.options.paths() if d.options else ()),
                    *(d.equities.paths() if d.equities else ()), *(d.stock_options.paths() if d.stock_options else ())]
        return [p for p in out if p is not None and p.exists()]


def _name(day: date, schema: str) -> str:
    return f"glbx-mdp3-{day:%Y%m%d}.{schema}.dbn.zst"


def _write_chunk(chunk: Chunk, mbo: ZstWriter, truth: ZstWriter | None, path: ch.PathRecorder | None) -> None:
    records = pack_mbo(chunk.rec, INSTRUMENT_IDS)
    mbo.write(records, len(records))
    if truth is not None:
        truth.write(pack_mbp10(records, chunk.tru_idx, chunk.tru_lv), len(chunk.tru_idx))
    if path is not None:
        last = chunk.rec[chunk.tru_idx]
        path.add(last[:, C_INSTR], last[:, C_TS_RECV], chunk.tru_lv[:, 0, 0], chunk.tru_lv[:, 1, 0], TICK_NANO / 1e9)


def _write_options(chain: ch.ChainSimulator, out_dir: Path, sess: Session, path: ch.FuturesPath,
                   events_per_day: int) -> OptionFiles:
    day = sess.trade_date
    names = {s: out_dir / _name(day, f"options.{s}") for s in ("definition", "statistics", "mbo")}
    truth_path = out_dir / "truth" / _name(day, "options.mbp-10")
    listed = chain.listing(sess, [float(m) for m in path.mid_at(np.arange(len(CONTRACTS)), sess.start_ns)])
    # databento_dbn's stub declares Schema's members as `str` attributes, not members: hence the ignores
    schema = dbn.Schema
    _write_small(names["definition"], schema.DEFINITION, sess,  # type: ignore[arg-type]
                         [ch.definition(o, sess.start_ns) for o in listed], listed)
    n_stat = _write_small(names["statistics"], schema.STATISTICS, sess,  # type: ignore[arg-type]
                          chain.statistics(listed, sess), listed)
    quotes = chain.day(sess, listed, path, events_per_day)
    for target, records, kind in ((names["mbo"], quotes.mbo, schema.MBO), (truth_path, quotes.truth, schema.MBP_10)):
        w = ZstWriter.open(target, metadata(kind, listed, day, sess.start_ns, sess.end_ns))  # type: ignore[arg-type]
        w.write(records, len(records))
        w.close()
    return OptionFiles(names["definition"], names["statistics"], names["mbo"], truth_path, len(listed), n_stat,
                       len(quotes.mbo), len(quotes.truth))


def _write_small(path: Path, schema: dbn.Schema, sess: Session, payload: list[bytes],
                 instruments: Sequence[Listed] = CONTRACTS) -> int:
    w = ZstWriter.open(path, metadata(schema, instruments, sess.trade_date, sess.start_ns, sess.end_ns))
    for rec in payload:
        w.write(rec, 1)
    w.close()
    return w.records


def _write_day(sim: Simulator, out_dir: Path, sess: Session, day_index: int, events_per_day: int,
               progress: Callable[[str], None] | None, with_truth: bool,
               chain: ch.ChainSimulator | None = None) -> DayFiles:
    day = sess.trade_date
    paths = {s: out_dir / _name(day, s) for s in ("definition", "mbo", "statistics")}
    paths["truth"] = out_dir / "truth" / _name(day, "mbp-10")
    # databento_dbn's stub declares Schema's members as `str` attributes, not members: hence the ignores
    n_def = _write_small(paths["definition"], dbn.Schema.DEFINITION, sess,  # type: ignore[arg-type]
                         [definition(c, sess.start_ns) for c in CONTRACTS])
    mbo_meta = metadata(dbn.Schema.MBO, CONTRACTS, day, sess.start_ns, sess.end_ns)  # type: ignore[arg-type]
    mbo = ZstWriter.open(paths["mbo"], mbo_meta)
    truth_meta = metadata(dbn.Schema.MBP_10, CONTRACTS, day, sess.start_ns, sess.end_ns)  # type: ignore[arg-type]
    truth = (ZstWriter.open(paths["truth"], truth_meta)
             if with_truth else None)
    sim.begin_day(sess, events_per_day)
    path = ch.PathRecorder(len(CONTRACTS)) if chain is not None else None
    _write_chunk(sim.snapshot(), mbo, truth, path)
    for chunk in sim.events():
        _write_chunk(chunk, mbo, truth, path)
        if progress:
            progress(f"{day}: {mbo.records:,} MBO records")
    mbo.close()
    if truth is not None:
        truth.close()
    stats = []
    for i, c in enumerate(CONTRACTS):
        s = sim.day_stats(i)
        values = {"settle": s.last * TICK_NANO, "high": s.high * TICK_NANO, "low": s.low * TICK_NANO,
                  "volume": s.volume}
        stats.extend(statistics(c, i, day_index, sess.end_ns, sess.start_ns, values))
    n_stat = _write_small(paths["statistics"], dbn.Schema.STATISTICS, sess, stats)  # type: ignore[arg-type]
    ap_path = out_dir / "truth" / f"glbx-mdp3-{day:%Y%m%d}.approaches.csv"
    ap_path.parent.mkdir(parents=True, exist_ok=True)
    n_ap = write_approaches(ap_path, sim.approaches())
    options = None
    if chain is not None and path is not None:
        if progress:
            progress(f"{day}: options chain")
        options = _write_options(chain, out_dir, sess, path.path(), events_per_day)
    return DayFiles(day, paths["definition"], paths["mbo"], paths["statistics"], paths["truth"],
                    n_def, mbo.records, n_stat, truth.records if truth is not None else 0, ap_path, n_ap, options)


def write_sample(
    out_dir: Path,
    *,
    days: int = 3,
    seed: int = 7,
    events_per_day: int = 100_000,
    start_date: date = date(2025, 11, 3),
    progress: Callable[[str], None] | None = None,
    params: MarketParams | None = None,
    truth: bool = True,
    options: bool = False,
    equities: bool = False,
) -> SampleManifest:
    """Simulate ``days`` consecutive trading days from ``start_date`` and write their files.

    ``events_per_day`` is the approximate number of MBO records per day over both contracts.
    ``truth=False`` skips the MBP-10 true book (large at benchmark sizes). ``params`` defaults to
    ``MarketParams()``. ``options=True`` adds the ES options chain's files, ``equities=True`` the
    TSLA stock's, and both its options chain as OPRA publishes it (``replay/equity_chain.py``).
    """
    out_dir = Path(out_dir)
    params = params if params is not None else MarketParams()
    sim = Simulator(seed, params)
    chain = ch.ChainSimulator(seed, CONTRACTS) if options else None
    stock = eq.stock_simulator(seed, params) if equities else None
    stock_chain = EquityChainSimulator(seed) if equities and options else None
    written = []
    for k, day in enumerate(trading_days(start_date, days)):
        files = _write_day(sim, out_dir, session(day), k, events_per_day, progress, truth, chain)
        if stock is not None:
            if progress:
                progress(f"{day}: TSLA")
            files = replace(files, equities=eq.write_stock_day(stock, out_dir, session(day), events_per_day,
                                                               with_truth=truth))
        if stock_chain is not None and files.equities is not None:
            files = replace(files, stock_options=write_chain_day(stock_chain, out_dir, session(day),
                                                                 files.equities.path))
        written.append(files)
        if progress:
            progress(f"{day}: done")
    return SampleManifest(out_dir, seed, events_per_day, tuple(written))
