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

The same arguments give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import databento_dbn as dbn
import numpy as np

from replay.contracts import CONTRACTS, TICK_NANO, definition, statistics
from replay.dbn_writer import ZstWriter, metadata, pack_mbo, pack_mbp10
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
        return [p for d in self.days for p in (d.definition, d.mbo, d.statistics, d.truth, d.approaches)
                if p is not None and p.exists()]


def _name(day: date, schema: str) -> str:
    return f"glbx-mdp3-{day:%Y%m%d}.{schema}.dbn.zst"


def _write_chunk(chunk: Chunk, mbo: ZstWriter, truth: ZstWriter | None) -> None:
    records = pack_mbo(chunk.rec, INSTRUMENT_IDS)
    mbo.write(records, len(records))
    if truth is not None:
        truth.write(pack_mbp10(records, chunk.tru_idx, chunk.tru_lv), len(chunk.tru_idx))


def _write_small(path: Path, schema: dbn.Schema, sess: Session, payload: list[bytes]) -> int:
    w = ZstWriter.open(path, metadata(schema, CONTRACTS, sess.trade_date, sess.start_ns, sess.end_ns))
    for rec in payload:
        w.write(rec, 1)
    w.close()
    return w.records


def _write_day(sim: Simulator, out_dir: Path, sess: Session, day_index: int, events_per_day: int,
               progress: Callable[[str], None] | None, with_truth: bool) -> DayFiles:
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
    _write_chunk(sim.snapshot(), mbo, truth)
    for chunk in sim.events():
        _write_chunk(chunk, mbo, truth)
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
    return DayFiles(day, paths["definition"], paths["mbo"], paths["statistics"], paths["truth"],
                    n_def, mbo.records, n_stat, truth.records if truth is not None else 0, ap_path, n_ap)


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
) -> SampleManifest:
    """Simulate ``days`` consecutive trading days from ``start_date`` and write their files.

    ``events_per_day`` is the approximate number of MBO records per day over both contracts.
    ``truth=False`` skips the MBP-10 true book (large at benchmark sizes). ``params`` defaults to
    ``MarketParams()``.
    """
    out_dir = Path(out_dir)
    sim = Simulator(seed, params if params is not None else MarketParams())
    written = []
    for k, day in enumerate(trading_days(start_date, days)):
        written.append(_write_day(sim, out_dir, session(day), k, events_per_day, progress, truth))
        if progress:
            progress(f"{day}: done")
    return SampleManifest(out_dir, seed, events_per_day, tuple(written))
