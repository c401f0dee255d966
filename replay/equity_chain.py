"""Listed options on the simulated stock as OPRA publishes them: consolidated top of book (``cmbp-1``).

OPRA carries no order book, only each option's best bid and offer across the options exchanges
and its trades, so the chain is written as Databento's ``cmbp-1`` records on ``OPRA.PILLAR``:

- ``opra-pillar-YYYYMMDD.definition.dbn.zst``: one InstrumentDefMsg per option (class ``C``/``P``,
  OSI symbol, strike, expiration at 16:00 ET, underlying ``TSLA`` with the stock's instrument id
  as ``underlying_id``, 100 shares per contract, tick 0.01);
- ``opra-pillar-YYYYMMDD.statistics.dbn.zst``: each option's open interest (``stat_type`` 9) as of
  the prior close (``ts_ref``), published at 04:00 ET before the session;
- ``opra-pillar-YYYYMMDD.cmbp-1.dbn.zst``: quote updates (action ``A``) whenever a market maker's
  rounded bid or ask moves, and trades (``T``) against them, each carrying the top of book after it.

Listing: ``strikes_each_side`` strikes either side of the day's opening price at $5 spacing, a
call and a put at each, for this week's Friday, the next Friday and the monthly (third Friday of
the next month). Quotes price each option with Black-Scholes-Merton (no dividend) on the stock's
mid and a smile ``σ(k) = atm + skew·k + smile·k²`` with ``k = ln(K / S)``, every ``quote_every_s``
seconds through RTH; the consolidated quote *is* the true top of book, so no separate truth file
is written. Everything is drawn from one generator seeded per day: same seed, same files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import databento_dbn as dbn
import numpy as np

from connectors.dbn.reader import record_dtype
from operators.options import pricing
from operators.options.gex import YEAR_NS
from operators.records import RTYPE_CMBP_1, UNDEF_PRICE
from replay.chain import FuturesPath
from replay.dbn_writer import ZstWriter, metadata
from replay.equities import CENT, TSLA, UNDEF_TIMESTAMP, Stock
from replay.sessions import NEW_YORK, Session

DATASET = "OPRA.PILLAR"
PUBLISHER_ID = 20
"""The publisher the records name (an OPRA venue); each side's venue is ``bid_pb`` / ``ask_pb``."""
VENUES = np.array([20, 21, 22, 23], np.uint16)
MULTIPLIER = 100
STRIKE_STEP = 5
_NANO = 1_000_000_000
_CMBP = record_dtype("cmbp-1", 3)


@dataclass(frozen=True)
class EquityChainParams:
    strikes_each_side: int = 10
    rate: float = 0.04
    atm_vol: float = 0.55
    skew: float = -0.35
    smile: float = 1.2
    half_spread: float = 0.04
    """Half the quoted spread in dollars, plus 1 % of the option's value."""
    quote_every_s: int = 20
    trade_chance: float = 0.08
    """Per option and quoting round, near the money; further out it falls with distance."""
    open_interest: float = 4_000.0


@dataclass(frozen=True)
class StockOption:
    raw_symbol: str
    instrument_id: int
    is_call: bool
    strike: int
    """Dollars."""
    expiration_ns: int


@dataclass(frozen=True)
class ChainFiles:
    definition: Path
    statistics: Path
    quotes: Path
    options: int
    quote_records: int

    def paths(self) -> tuple[Path, ...]:
        return self.definition, self.statistics, self.quotes


def _name(day: date, schema: str) -> str:
    return f"opra-pillar-{day:%Y%m%d}.{schema}.dbn.zst"


def _friday_on_or_after(day: date) -> date:
    return day + timedelta(days=(4 - day.weekday()) % 7)


def _monthly(day: date) -> date:
    first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return _friday_on_or_after(first) + timedelta(days=14)


def expiries(day: date) -> list[date]:
    """This week's Friday (today when it is one), the next Friday, the next month's third Friday."""
    friday = _friday_on_or_after(day)
    return sorted({friday, friday + timedelta(days=7), _monthly(day)})


def _expiry_ns(expiry: date) -> int:
    return int(datetime.combine(expiry, time(16, 0), tzinfo=NEW_YORK).timestamp()) * _NANO


def osi_symbol(root: str, expiry: date, is_call: bool, strike: int) -> str:
    """The OCC symbol OPRA uses: root padded to six, YYMMDD, C or P, strike × 1000 in eight digits."""
    return f"{root:<6}{expiry:%y%m%d}{'C' if is_call else 'P'}{strike * 1000:08d}"


def option_id(expiry: date, is_call: bool, strike: int) -> int:
    """A stable id per listed option (the same on every day it is listed)."""
    return 500_000_000 + (expiry - date(2020, 1, 1)).days * 10_000 + strike * 2 + (0 if is_call else 1)


@dataclass
class EquityChainSimulator:
    """The stock's options, day after day (open interest carries over)."""

    seed: int
    stock: Stock = TSLA
    params: EquityChainParams = field(default_factory=EquityChainParams)
    _oi: dict[int, float] = field(default_factory=dict)
    _first_open: float | None = None

    def listing(self, day: date, open_px: float) -> list[StockOption]:
        centre = int(round(open_px / STRIKE_STEP)) * STRIKE_STEP
        strikes = [centre + STRIKE_STEP * j for j in range(-self.params.strikes_each_side,
                                                            self.params.strikes_each_side + 1)]
        return [StockOption(osi_symbol(self.stock.raw_symbol, e, c, k), option_id(e, c, k), c, k, _expiry_ns(e))
                for e in expiries(day) for k in strikes for c in (True, False)]

    def definition(self, o: StockOption, ts_ns: int) -> bytes:
        # databento_dbn's stub declares its enums' members as plain attributes: hence the ignores
        msg = dbn.InstrumentDefMsg(
            PUBLISHER_ID, o.instrument_id, ts_ns, ts_ns,
            min_price_increment=CENT, display_factor=1_000_000_000,
            raw_symbol=o.raw_symbol, asset=self.stock.raw_symbol, security_type="OOSTK",
            instrument_class=dbn.InstrumentClass.CALL if o.is_call else dbn.InstrumentClass.PUT,  # type: ignore[arg-type]
            security_update_action=dbn.SecurityUpdateAction.ADD,  # type: ignore[arg-type]
            expiration=o.expiration_ns, activation=UNDEF_TIMESTAMP, strike_price=o.strike * _NANO,
            unit_of_measure_qty=MULTIPLIER * _NANO, contract_multiplier=MULTIPLIER, price_ratio=_NANO,
            underlying_id=self.stock.instrument_id, underlying=self.stock.raw_symbol, exchange="OPRA",
            currency="USD", strike_price_currency="USD", cfi="OCASPS" if o.is_call else "OPASPS",
            min_trade_vol=1, channel_id=0,
        )
        return bytes(msg)

    def open_interest(self, listed: list[StockOption], open_px: float) -> dict[int, float]:
        """Each option's open interest as of the prior close: first seen, a profile around the
        first day's price (calls heavier above, puts below) shrinking with time to expiry."""
        centre = self._first_open if self._first_open is not None else open_px
        self._first_open = centre
        for o in listed:
            if o.instrument_id not in self._oi:
                away = (o.strike - centre) / (0.08 * centre)
                lean = 1.0 + 0.4 * (away if o.is_call else -away)
                self._oi[o.instrument_id] = self.params.open_interest * math.exp(-away * away) * max(lean, 0.2)
        return {o.instrument_id: self._oi[o.instrument_id] for o in listed}

    def traded(self, listed: list[StockOption], volume: np.ndarray) -> None:
        """Tomorrow's open interest moves with today's trades."""
        for o, traded in zip(listed, volume.tolist(), strict=True):
            self._oi[o.instrument_id] = max(self._oi[o.instrument_id] + 0.3 * traded * (1 if o.is_call else -1), 0.0)

    def statistics(self, listed: list[StockOption], oi: dict[int, float], sess: Session) -> list[bytes]:
        prior_close = int(datetime.combine(sess.trade_date - timedelta(days=1), time(16, 0),
                                           tzinfo=NEW_YORK).timestamp()) * _NANO
        out = []
        for k, o in enumerate(listed):
            msg = dbn.StatMsg(
                PUBLISHER_ID, o.instrument_id, sess.start_ns, sess.start_ns + k, prior_close, dbn.UNDEF_PRICE,
                int(round(oi[o.instrument_id])),
                dbn.StatType.OPEN_INTEREST,  # type: ignore[arg-type]  # enum members typed as `int` by the stub
                sequence=k + 1, ts_in_delta=0, channel_id=0,
                update_action=dbn.StatUpdateAction.NEW, stat_flags=0,  # type: ignore[arg-type]
            )
            out.append(bytes(msg))
        return out

    def quotes(self, listed: list[StockOption], sess: Session, path: FuturesPath) -> tuple[np.ndarray, np.ndarray]:
        """The day's ``cmbp-1`` records through RTH, and each option's traded volume."""
        p = self.params
        rng = np.random.default_rng([self.seed, sess.trade_date.toordinal()])
        n = len(listed)
        is_call = np.array([o.is_call for o in listed])
        strike = np.array([o.strike for o in listed], np.float64)
        expiry = np.array([o.expiration_ns for o in listed], np.int64)
        ids = np.array([o.instrument_id for o in listed], np.uint32)
        bid = np.full(n, -1, np.int64)  # cents; -1 before the first quote
        ask = np.full(n, -1, np.int64)
        bid_sz, ask_sz = np.zeros(n, np.int64), np.zeros(n, np.int64)
        bid_pb, ask_pb = np.zeros(n, np.uint16), np.zeros(n, np.uint16)
        volume = np.zeros(n, np.int64)
        rows: list[tuple[int, int, int, int, bytes, bytes]] = []  # option, ts, price (cents), size, action, side
        states: list[tuple[int, ...]] = []  # the top of book after each row
        start = sess.rth_ns
        for step, ts in enumerate(range(start, sess.end_ns, p.quote_every_s * _NANO)):
            spot = float(path.mid_at(np.zeros(1, np.int64), ts)[0])
            t = np.maximum((expiry - ts) / YEAR_NS, 1.0 / (365.0 * 24.0))
            k = np.log(strike / spot)
            vol = np.maximum(p.atm_vol + p.skew * k + p.smile * k * k, 0.05)
            fair = pricing.prices(is_call, np.full(n, spot), strike, t, p.rate, np.full(n, p.rate), vol)
            half = p.half_spread + 0.01 * fair
            new_bid = np.maximum(np.floor((fair - half) * 100.0), 1.0).astype(np.int64)
            new_ask = np.maximum(np.ceil((fair + half) * 100.0), new_bid + 1).astype(np.int64)
            moved = np.flatnonzero((new_bid != bid) | (new_ask != ask) | (step == 0))
            bid[moved], ask[moved] = new_bid[moved], new_ask[moved]
            bid_sz[moved] = rng.integers(1, 60, moved.size)
            ask_sz[moved] = rng.integers(1, 60, moved.size)
            bid_pb[moved] = rng.choice(VENUES, moved.size)
            ask_pb[moved] = rng.choice(VENUES, moved.size)
            at = ts + rng.integers(0, p.quote_every_s * _NANO // 2, moved.size)
            for j, when in zip(moved.tolist(), at.tolist(), strict=True):
                rows.append((j, when, -1, 0, b"A", b"N"))
                states.append((int(bid[j]), int(ask[j]), int(bid_sz[j]), int(ask_sz[j]), int(bid_pb[j]),
                               int(ask_pb[j])))
            near = np.exp(-np.abs(k) / 0.05)
            trading = np.flatnonzero(rng.random(n) < p.trade_chance * near)
            for j in trading.tolist():
                buy = bool(rng.random() < 0.5)
                size = int(min(rng.integers(1, 20), ask_sz[j] if buy else bid_sz[j]))
                when = ts + p.quote_every_s * _NANO // 2 + int(rng.integers(0, p.quote_every_s * _NANO // 2))
                if buy:
                    ask_sz[j] -= size
                else:
                    bid_sz[j] -= size
                volume[j] += size
                rows.append((j, when, int(ask[j] if buy else bid[j]), size, b"T", b"A" if buy else b"B"))
                states.append((int(bid[j]), int(ask[j]), int(bid_sz[j]), int(ask_sz[j]), int(bid_pb[j]),
                               int(ask_pb[j])))
        return _pack(rows, states, ids), volume


def _pack(rows: list[tuple[int, int, int, int, bytes, bytes]], states: list[tuple[int, ...]],
          ids: np.ndarray) -> np.ndarray:
    """``cmbp-1`` records in time order (a stable sort: within a nanosecond, as generated)."""
    out = np.zeros(len(rows), _CMBP)
    if not rows:
        return out
    option, ts, px, size, action, side = (np.array(c) for c in zip(*rows, strict=True))
    bid, ask, bid_sz, ask_sz, bid_pb, ask_pb = (np.array(c) for c in zip(*states, strict=True))
    order = np.argsort(ts, kind="stable")
    out["length"] = _CMBP.itemsize // 4
    out["rtype"] = RTYPE_CMBP_1
    out["publisher_id"] = PUBLISHER_ID
    out["instrument_id"] = ids[option[order]]
    out["ts_event"] = ts[order]
    out["ts_recv"] = ts[order] + 150_000
    out["ts_in_delta"] = 150_000
    out["price"] = np.where(px[order] < 0, UNDEF_PRICE, px[order] * CENT)
    out["size"] = size[order]
    out["action"] = action[order]
    out["side"] = side[order]
    out["flags"] = 128
    out["bid_px_00"] = bid[order] * CENT
    out["ask_px_00"] = ask[order] * CENT
    out["bid_sz_00"] = bid_sz[order]
    out["ask_sz_00"] = ask_sz[order]
    out["bid_pb_00"] = bid_pb[order]
    out["ask_pb_00"] = ask_pb[order]
    return out


def write_chain_day(chain: EquityChainSimulator, out_dir: Path, sess: Session, path: FuturesPath) -> ChainFiles:
    """The stock's options for ``sess`` (the module docstring lists the files)."""
    day = sess.trade_date
    open_px = float(path.mid_at(np.zeros(1, np.int64), sess.rth_ns)[0])
    listed = chain.listing(day, open_px)
    oi = chain.open_interest(listed, open_px)
    schema = dbn.Schema
    names = {s: out_dir / _name(day, s) for s in ("definition", "statistics", "cmbp-1")}
    payloads = {"definition": [chain.definition(o, sess.start_ns) for o in listed],
                "statistics": chain.statistics(listed, oi, sess)}
    for kind, target in (("definition", schema.DEFINITION), ("statistics", schema.STATISTICS)):
        w = ZstWriter.open(names[kind], metadata(target, listed, day, sess.start_ns, sess.end_ns, DATASET))  # type: ignore[arg-type]
        for rec in payloads[kind]:
            w.write(rec, 1)
        w.close()
    quotes, volume = chain.quotes(listed, sess, path)
    w = ZstWriter.open(names["cmbp-1"], metadata(schema.CMBP_1, listed, day, sess.start_ns, sess.end_ns, DATASET))  # type: ignore[arg-type]
    w.write(quotes, len(quotes))
    w.close()
    chain.traded(listed, volume)
    return ChainFiles(names["definition"], names["statistics"], names["cmbp-1"], len(listed), len(quotes))
