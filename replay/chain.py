"""ES options on the simulated futures: a listed chain, market makers quoting an implied-volatility
smile around each future, trades, and open interest carried from day to day.

Each trading day lists, for the front future, a daily (0DTE), the next day's daily (1DTE), the
next Friday weekly and the quarterly, and for the back future its quarterly; ``strikes_each_side``
strikes either side of the day's opening price at CME's 5-point spacing, a call and a put at each.
One market maker rests one bid and one ask order per option. At each quoting round it prices the
option with Black-76 on its own future's mid and a smile

    σ(k) = atm + skew·k + smile·k²,   k = ln(K / F),   atm = atm_vol + spot_vol·ln(F / F_open)

and, when the value has left its quote (or a side was filled away), moves (``M``), adds (``A``)
or pulls (``C``) the orders to the new rounded quote; rounds come ``rth_share`` in RTH and the
rest before it, evenly spaced. Customers trade against the quotes near the money (``T``, ``F``,
then ``C`` or ``M`` for the resting order, as the futures engine writes a fill). Prices are on
the options' own 0.05 grid.

Open interest is a property of the listed option carried across days: a smooth profile around
the first day's price (puts heavier below, calls above) moved each day by a share of the day's
volume, published as Databento statistics (``stat_type`` 9) at the start of the next session
with ``ts_ref`` the close it is as of.

Everything is drawn from one generator seeded per day, so the same seed gives the same files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import databento_dbn as dbn
import numpy as np

from operators.options import pricing
from operators.options.gex import YEAR_NS
from operators.records import MBO_DTYPE, MBP10_DTYPE, RTYPE_MBO, UNDEF_PRICE
from replay.contracts import PUBLISHER_ID, Contract
from replay.dbn_writer import mbp10_headers
from replay.engine import F_BAD_TS_RECV, F_LAST, F_SNAPSHOT
from replay.sessions import NEW_YORK, Session

OPTION_TICK_NANO = 50_000_000
"""0.05 index points: the ES options' price grid (their definitions say so, the analytics read it)."""
STRIKE_STEP = 5
"""Index points between listed strikes."""
MULTIPLIER = 50
_NANO = 1_000_000_000
_FIRST_ORDER_ID = 9_100_000_000_000
_MONTHS = "FGHJKMNQUVXZ"
_DAILY_LETTERS = "ABCD"  # Monday to Thursday; Friday's weeklies are EW<n>
A_ADD, A_CANCEL, A_MODIFY, A_CLEAR, A_TRADE, A_FILL = b"A", b"C", b"M", b"R", b"T", b"F"


@dataclass(frozen=True)
class ChainParams:
    strikes_each_side: int = 32
    rate: float = 0.04
    atm_vol: float = 0.16
    skew: float = -0.9
    smile: float = 6.0
    spot_vol: float = -2.0
    rounds_per_event: float = 0.005
    """Quoting rounds per simulated futures event (500 a day for the 100,000-record sample) ..."""
    max_rounds: int = 5_000
    """... and at most this many."""
    rth_share: float = 0.8
    trades_per_round: float = 0.6
    open_interest: float = 6_000.0
    """Open interest of an at-the-money quarterly on the first day (less for shorter expiries)."""


@dataclass(frozen=True)
class OptionContract:
    raw_symbol: str
    instrument_id: int
    future: Contract
    future_index: int
    is_call: bool
    strike: int
    """Index points."""
    expiration_ns: int
    kind: str
    """``daily``, ``weekly`` or ``quarterly``."""


def _ny_ns(day: date, wall: time) -> int:
    return int(datetime.combine(day, wall, tzinfo=NEW_YORK).timestamp()) * _NANO


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _root(expiry: date, kind: str, future: Contract) -> str:
    if kind == "quarterly":
        return future.raw_symbol
    week, month, year = (expiry.day - 1) // 7 + 1, _MONTHS[expiry.month - 1], expiry.year % 10
    if expiry.weekday() == 4:
        return f"EW{week}{month}{year}"
    return f"E{week}{_DAILY_LETTERS[expiry.weekday()]}{month}{year}"


def expiries(day: date, future: Contract, front: bool) -> list[tuple[str, int, str]]:
    """(symbol root, expiration, kind) listed on ``day``: dailies and weeklies at 16:00 ET, the
    quarterly at the future's own expiration (the 09:30 ET opening print)."""
    quarterly = datetime.fromtimestamp(future.expiration_ns / _NANO, UTC).date()
    out = [(future.raw_symbol, future.expiration_ns, "quarterly")]
    if front:
        tomorrow = _next_weekday(day)
        friday = tomorrow + timedelta(days=1)
        while friday.weekday() != 4:
            friday += timedelta(days=1)
        for expiry, kind in ((day, "daily"), (tomorrow, "daily"), (friday, "weekly")):
            if expiry < quarterly and expiry.weekday() < 5:
                kind = "weekly" if expiry.weekday() == 4 else kind
                out.append((_root(expiry, kind, future), _ny_ns(expiry, time(16, 0)), kind))
    return sorted(set(out), key=lambda e: e[1])


def option_id(expiration_ns: int, strike: int, is_call: bool) -> int:
    """A stable instrument id per (expiry date, strike, right): the same option keeps it every day."""
    days = (datetime.fromtimestamp(expiration_ns / _NANO, UTC).date() - date(2020, 1, 1)).days
    return 200_000_000 + (days % 4096) * 32_768 + (strike // STRIKE_STEP) * 2 + (0 if is_call else 1)


def listed_chain(day: date, futures: tuple[Contract, ...], centres: list[float],
                 params: ChainParams) -> list[OptionContract]:
    """Every option listed on ``day``: per future, its expiries x strikes around ``centres[i]``."""
    out = []
    for i, future in enumerate(futures):
        atm = int(round(centres[i] / STRIKE_STEP)) * STRIKE_STEP
        wing = params.strikes_each_side * STRIKE_STEP
        strikes = range(atm - wing, atm + wing + STRIKE_STEP, STRIKE_STEP)
        for root, expiration, kind in expiries(day, future, front=i == 0):
            for k in strikes:
                for is_call in (True, False):
                    symbol = f"{root} {'C' if is_call else 'P'}{k}"
                    out.append(OptionContract(symbol, option_id(expiration, k, is_call), future, i, is_call, k,
                                              expiration, kind))
    return out


def definition(o: OptionContract, ts_ns: int) -> bytes:
    """The option's InstrumentDefMsg (DBN v3): class, strike, expiration, underlying and its id."""
    exp = datetime.fromtimestamp(o.expiration_ns / _NANO, UTC)
    msg = dbn.InstrumentDefMsg(
        PUBLISHER_ID, o.instrument_id, ts_ns, ts_ns,
        min_price_increment=OPTION_TICK_NANO, display_factor=_NANO,
        raw_symbol=o.raw_symbol, asset="ES", security_type="OOF",
        # databento_dbn's stub types its enums' members as plain attributes (see replay.contracts)
        instrument_class=dbn.InstrumentClass.CALL if o.is_call else dbn.InstrumentClass.PUT,  # type: ignore[arg-type]
        security_update_action=dbn.SecurityUpdateAction.ADD,  # type: ignore[arg-type]
        expiration=o.expiration_ns, activation=ts_ns - 30 * 86_400 * _NANO,
        unit_of_measure_qty=MULTIPLIER * _NANO, contract_multiplier=1,
        min_price_increment_amount=MULTIPLIER * OPTION_TICK_NANO, price_ratio=_NANO,
        strike_price=o.strike * _NANO, strike_price_currency="USD",
        underlying_id=o.future.instrument_id, underlying=o.future.raw_symbol,
        market_depth_implied=0, market_depth=10, market_segment_id=0, max_trade_vol=2500,
        min_lot_size=_NANO, min_lot_size_block=_NANO, min_lot_size_round_lot=_NANO, min_trade_vol=1, appl_id=0,
        maturity_year=exp.year, maturity_month=exp.month, maturity_day=exp.day, channel_id=0,
        currency="USD", settl_currency="USD", group="ES", exchange="XCME",
        cfi="OCAFPS" if o.is_call else "OPAFPS", unit_of_measure="IPNT",
        match_algorithm=dbn.MatchAlgorithm.FIFO, main_fraction=1, price_display_format=0,  # type: ignore[arg-type]
        sub_fraction=0, underlying_product=5, contract_multiplier_unit=0, flow_schedule_type=0, tick_rule=0,
    )
    return bytes(msg)


def open_interest_record(o: OptionContract, quantity: int, ts_ns: int, as_of_ns: int, sequence: int) -> bytes:
    """Open interest as of the close ``as_of_ns`` (``ts_ref``), published at ``ts_ns``."""
    msg = dbn.StatMsg(
        PUBLISHER_ID, o.instrument_id, ts_ns, ts_ns, as_of_ns, UNDEF_PRICE, quantity,
        dbn.StatType.OPEN_INTEREST,  # type: ignore[arg-type]  # enum members typed as `int` by the stub
        sequence=sequence, ts_in_delta=0, channel_id=0,
        update_action=dbn.StatUpdateAction.NEW, stat_flags=0,  # type: ignore[arg-type]  # ditto
    )
    return bytes(msg)


def smile_vol(strike: np.ndarray, forward: np.ndarray, forward_open: np.ndarray, p: ChainParams) -> np.ndarray:
    k = np.log(strike / forward)
    atm = np.maximum(p.atm_vol + p.spot_vol * np.log(forward / forward_open), 0.05)
    return atm + p.skew * k + p.smile * k * k


@dataclass
class _Books:
    """The market maker's one order per side per option: price (ticks of 0.05; -1 none), size, id."""

    px: np.ndarray
    size: np.ndarray
    oid: np.ndarray


@dataclass
class ChainDay:
    """One day of option MBO, its true top of book after every event, and the day's volume."""

    mbo: np.ndarray
    truth: np.ndarray
    volume: dict[int, int]


@dataclass
class _Writer:
    """Rows of one day's records, in order; ``event`` closes an event (F_LAST) and writes the
    option's true top of book after it."""

    rows: list[tuple[int, int, int, int, int, int, int, bytes, bytes]] = field(default_factory=list)
    truth: list[tuple[int, int, int, int, int, int, int, int]] = field(default_factory=list)

    def add(self, iid: int, ts: int, oid: int, px: int, size: int, flags: int, action: bytes, side: bytes) -> None:
        self.rows.append((iid, ts, oid, px, size, flags, len(self.rows), action, side))

    def event(self, books: _Books, j: int) -> None:
        iid, ts, oid, px, size, flags, seq, action, side = self.rows[-1]
        self.rows[-1] = (iid, ts, oid, px, size, flags | F_LAST, seq, action, side)
        bid, ask = int(books.px[j, 0]), int(books.px[j, 1])
        self.truth.append((len(self.rows) - 1, bid, int(books.size[j, 0]), ask, int(books.size[j, 1]),
                           int(bid >= 0), int(ask >= 0), iid))


class ChainSimulator:
    """The options of every day, quoted on the futures' path; open interest carried across days."""

    def __init__(self, seed: int, futures: tuple[Contract, ...], params: ChainParams | None = None) -> None:
        self.params = params if params is not None else ChainParams()
        self.futures = futures
        self._seed = seed
        self._oi: dict[int, int] = {}
        self._first_centre: list[float] | None = None
        self._as_of_ns = 0
        self._next_oid = _FIRST_ORDER_ID

    def listing(self, sess: Session, centres: list[float]) -> list[OptionContract]:
        if self._first_centre is None:
            self._first_centre = list(centres)
        return listed_chain(sess.trade_date, self.futures, centres, self.params)

    def open_interest(self, options: list[OptionContract]) -> dict[int, int]:
        """Each listed option's open interest as of the prior close (profile for a first listing)."""
        assert self._first_centre is not None
        out = {}
        for o in options:
            if o.instrument_id not in self._oi:
                centre = self._first_centre[o.future_index]
                k = math.log(o.strike / centre)
                heavy = 1.5 if (k < 0) != o.is_call else 0.6
                scale = {"quarterly": 1.0, "weekly": 0.5, "daily": 0.25}[o.kind]
                noise = 0.6 + 0.8 * ((o.instrument_id * 2654435761) % 1000) / 1000  # stable per option
                self._oi[o.instrument_id] = int(self.params.open_interest * scale * heavy * noise
                                                * math.exp(-0.5 * (k / 0.03) ** 2))
            out[o.instrument_id] = self._oi[o.instrument_id]
        return out

    def statistics(self, options: list[OptionContract], sess: Session) -> list[bytes]:
        """Open interest of every listed option as of the prior close, published at the session start."""
        oi = self.open_interest(options)
        as_of = self._as_of_ns or sess.start_ns - 12 * 3_600 * _NANO  # the first day: the evening before
        return [open_interest_record(o, oi[o.instrument_id], sess.start_ns, as_of, k + 1)
                for k, o in enumerate(sorted(options, key=lambda o: o.instrument_id))]

    def day(self, sess: Session, options: list[OptionContract], path: FuturesPath, events: int) -> ChainDay:
        """The day's option MBO: a snapshot of the opening quotes, then quoting rounds and trades."""
        p = self.params
        rng = np.random.default_rng([self._seed, sess.trade_date.toordinal()])
        n = len(options)
        strike = np.array([o.strike for o in options], np.float64)
        expiry = np.array([o.expiration_ns for o in options], np.int64)
        calls = np.array([o.is_call for o in options], np.bool_)
        which = np.array([o.future_index for o in options], np.int64)
        iids = [o.instrument_id for o in options]
        books = _Books(np.full((n, 2), -1, np.int64), np.zeros((n, 2), np.int64), np.zeros((n, 2), np.int64))
        out = _Writer()
        volume = dict.fromkeys(iids, 0)
        f_open = path.mid_at(which, sess.start_ns)
        rounds = _round_times(sess, min(max(int(events * p.rounds_per_event), 4), p.max_rounds), p.rth_share)
        for r, t in enumerate(rounds):
            forward = path.mid_at(which, int(t))
            live = expiry > t
            years = np.maximum((expiry - t) / YEAR_NS, 1.0 / (365 * 24))
            sigma = smile_vol(strike, forward, f_open, p)
            theo = np.where(live, pricing.prices(calls, forward, strike, years, p.rate, np.zeros(n), sigma), 0.0)
            bid, ask = _quotes(theo, live)
            # a quote stays while the value is still inside it; a pulled or filled side comes back
            fair = theo / (OPTION_TICK_NANO / _NANO)
            inside = (books.px[:, 0] >= 0) & (books.px[:, 0] <= fair) & (fair <= books.px[:, 1]) & live
            keep = inside & (books.size[:, 0] > 0) & (books.size[:, 1] > 0)
            redo = np.flatnonzero(~keep | (bid < 0)) if r > 0 else np.arange(n)
            flags = F_SNAPSHOT | F_BAD_TS_RECV if r == 0 else 0
            ts = int(t)
            for j in map(int, redo):
                if r == 0:
                    out.add(iids[j], ts, 0, UNDEF_PRICE, 0, flags, A_CLEAR, b"N")
                if self._requote(books, j, (int(bid[j]), int(ask[j])), rng, out, iids[j], ts, flags) or r == 0:
                    out.event(books, j)
                    ts += 1_000
            if r > 0:
                self._trades(rng, books, options, forward, strike, live, out, volume, ts)
        for o in options:
            self._oi[o.instrument_id] = max(0, self._oi[o.instrument_id]
                                            + int(volume[o.instrument_id] * rng.uniform(-0.3, 0.8)))
        self._as_of_ns = sess.end_ns
        return ChainDay(_pack_mbo(out.rows), _pack_truth(out.rows, out.truth), volume)

    def _new_oid(self) -> int:
        self._next_oid += 1
        return self._next_oid

    def _requote(self, books: _Books, j: int, want: tuple[int, int], rng: np.random.Generator,
                 out: _Writer, iid: int, ts: int, flags: int) -> bool:
        """Move, add or pull each side's order to the wanted quote; whether anything was written."""
        changed = False
        for s, side in ((0, b"B"), (1, b"A")):
            px = want[s]
            held = int(books.px[j, s])
            if px == held and books.size[j, s] > 0:
                continue
            if px < 0:
                if held >= 0:
                    out.add(iid, ts, int(books.oid[j, s]), held * OPTION_TICK_NANO, int(books.size[j, s]), flags,
                            A_CANCEL, side)
                    books.px[j, s], books.size[j, s] = -1, 0
                    changed = True
                continue
            size = int(rng.integers(5, 60))
            if held >= 0 and books.size[j, s] > 0:
                out.add(iid, ts, int(books.oid[j, s]), px * OPTION_TICK_NANO, size, flags, A_MODIFY, side)
            else:
                books.oid[j, s] = self._new_oid()
                out.add(iid, ts, int(books.oid[j, s]), px * OPTION_TICK_NANO, size, flags, A_ADD, side)
            books.px[j, s], books.size[j, s] = px, size
            changed = True
        return changed

    def _trades(self, rng: np.random.Generator, books: _Books, options: list[OptionContract], forward: np.ndarray,
                strike: np.ndarray, live: np.ndarray, out: _Writer, volume: dict[int, int], ts: int) -> None:
        near = np.exp(-0.5 * (np.log(strike / forward) / 0.01) ** 2) * live
        if near.sum() <= 0:
            return
        for _ in range(int(rng.poisson(self.params.trades_per_round))):
            j = int(rng.choice(len(options), p=near / near.sum()))
            s = int(rng.integers(2))  # the resting side hit: 0 bid (a sell), 1 ask (a buy)
            if books.px[j, s] < 0 or books.size[j, s] <= 0:
                continue
            iid, px, rest = options[j].instrument_id, int(books.px[j, s]) * OPTION_TICK_NANO, int(books.size[j, s])
            qty = min(rest, int(rng.integers(1, 25)))
            aggressor, resting = (b"A", b"B") if s == 0 else (b"B", b"A")
            out.add(iid, ts, 0, px, qty, 0, A_TRADE, aggressor)
            out.add(iid, ts, int(books.oid[j, s]), px, qty, 0, A_FILL, resting)
            if qty == rest:
                out.add(iid, ts, int(books.oid[j, s]), px, rest, 0, A_CANCEL, resting)
                books.px[j, s], books.size[j, s] = -1, 0
            else:
                out.add(iid, ts, int(books.oid[j, s]), px, rest - qty, 0, A_MODIFY, resting)
                books.size[j, s] = rest - qty
            volume[iid] += qty
            out.event(books, j)
            ts += 1_000


def _quotes(theo: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bid and ask in ticks per option: one tick or 1 % of value either side of it, no bid under
    one tick (-1), nothing for an expired option."""
    half = np.maximum(0.01 * theo, 0.05)
    tick = OPTION_TICK_NANO / _NANO
    bid = np.floor((theo - half) / tick + 1e-9).astype(np.int64)
    ask = np.maximum(np.ceil((theo + half) / tick - 1e-9).astype(np.int64), bid + 1)
    bid = np.where((bid >= 1) & live, bid, -1)
    return bid, np.where(live, ask, -1)


def _round_times(sess: Session, rounds: int, rth_share: float) -> np.ndarray:
    """The first round at the session start (the opening snapshot), ``rth_share`` of the rest evenly
    over RTH and the others evenly before it."""
    in_rth = max(int(rounds * rth_share), 1)
    before = max(rounds - in_rth - 1, 1)
    pre = np.linspace(sess.start_ns, sess.rth_ns, before + 2)[1:-1]
    rth = np.linspace(sess.rth_ns, sess.end_ns, in_rth + 2)[1:-1]
    return np.concatenate([[sess.start_ns], pre, rth]).astype(np.int64)


@dataclass
class FuturesPath:
    """Each future's mid (index points) over the day: the last one of every second."""

    seconds: list[np.ndarray]
    mids: list[np.ndarray]

    def mid_at(self, which: np.ndarray, ts_ns: int) -> np.ndarray:
        """The mid of future ``which[i]`` at ``ts_ns`` (its last one before, or its first)."""
        out = np.empty(which.shape[0])
        for i in np.unique(which):
            secs, mids = self.seconds[i], self.mids[i]
            k = max(int(np.searchsorted(secs, ts_ns // _NANO, side="right")) - 1, 0)
            out[which == i] = mids[k]
        return out


class PathRecorder:
    """Collects ``FuturesPath`` from the futures engine's chunks as they are written."""

    def __init__(self, futures: int) -> None:
        self._secs: list[list[np.ndarray]] = [[] for _ in range(futures)]
        self._mids: list[list[np.ndarray]] = [[] for _ in range(futures)]

    def add(self, instrument: np.ndarray, ts_recv: np.ndarray, bid_ticks: np.ndarray, ask_ticks: np.ndarray,
            tick_points: float) -> None:
        ok = (bid_ticks > 0) & (ask_ticks > bid_ticks)
        for i in range(len(self._secs)):
            mine = ok & (instrument == i)
            if not mine.any():
                continue
            secs = ts_recv[mine] // _NANO
            last = np.flatnonzero(np.r_[secs[1:] != secs[:-1], True])
            self._secs[i].append(secs[last])
            self._mids[i].append(0.5 * (bid_ticks[mine][last] + ask_ticks[mine][last]) * tick_points)

    def path(self) -> FuturesPath:
        return FuturesPath([np.concatenate(s) if s else np.zeros(1, np.int64) for s in self._secs],
                           [np.concatenate(m) if m else np.zeros(1) for m in self._mids])


def _pack_mbo(rows: list[tuple[int, int, int, int, int, int, int, bytes, bytes]]) -> np.ndarray:
    out = np.zeros(len(rows), MBO_DTYPE)
    if not rows:
        return out
    iid, ts, oid, px, size, flags, seq, action, side = zip(*rows, strict=True)
    out["length"] = MBO_DTYPE.itemsize // 4
    out["rtype"] = RTYPE_MBO
    out["publisher_id"] = PUBLISHER_ID
    out["instrument_id"] = iid
    out["ts_recv"] = ts
    out["ts_event"] = np.asarray(ts, np.int64) - 900
    out["ts_in_delta"] = 900
    out["order_id"] = oid
    out["price"] = px
    out["size"] = size
    out["flags"] = flags
    out["action"] = action
    out["side"] = side
    out["sequence"] = np.asarray(seq, np.int64) + 1
    return out


def _pack_truth(rows: list[tuple[int, int, int, int, int, int, int, bytes, bytes]],
                truth: list[tuple[int, int, int, int, int, int, int, int]]) -> np.ndarray:
    if not truth:
        return np.zeros(0, MBP10_DTYPE)
    idx, bid, bid_sz, ask, ask_sz, bid_ct, ask_ct, _ = (np.asarray(c) for c in zip(*truth, strict=True))
    out = mbp10_headers(_pack_mbo(rows)[idx])
    for k in range(10):
        out[f"bid_px_{k:02d}"] = UNDEF_PRICE
        out[f"ask_px_{k:02d}"] = UNDEF_PRICE
    out["bid_px_00"] = np.where(bid >= 0, bid * OPTION_TICK_NANO, UNDEF_PRICE)
    out["ask_px_00"] = np.where(ask >= 0, ask * OPTION_TICK_NANO, UNDEF_PRICE)
    out["bid_sz_00"], out["ask_sz_00"] = np.where(bid >= 0, bid_sz, 0), np.where(ask >= 0, ask_sz, 0)
    out["bid_ct_00"], out["ask_ct_00"] = bid_ct, ask_ct
    return out
