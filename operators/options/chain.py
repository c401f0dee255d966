"""One underlier's option chain through a session: the options' books, their top of book at the
close of each second they were active, and the chain's gamma exposure as those quotes and the
underlying move.

``OptionTops`` keeps an L3 book per option (``operators.book.L3Book``, depth 1) and gives a row
per option and active second: the top after the last event before the second's close, and the
second's trades. A second is closed once a later record arrives (or at ``close``), so chunks may
split it.

``ChainGex`` keeps each listed option's latest mid and, given the underlying's mid per second,
computes ``operators.options.surface.gex_seconds`` at every second in which an input changed (the
underlying's mid or an option's quote) and at least every ``heartbeat_s`` seconds in between (so
time decay shows on a quiet chain): a second without a row has the inputs of the row before it.
Open interest is fixed for the session: the prior session's, given at construction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numba import njit

from operators.book import L3Book
from operators.book.logic import BookState
from operators.chunks import InstrumentInfo
from operators.grouping import among, group_rows, take_records
from operators.options.gex import ChainQuotes, GexConfig, OptionModel
from operators.options.profile import GexProfile, gex_profiles
from operators.options.surface import ChainLayout, Columns, GexSummary, chain_layout, gex_seconds
from operators.records import UNDEF_PRICE

NS = 1_000_000_000
CHAIN_PREFIX = "gex:"


def chain_key(underlying_id: int, session_day: int) -> str:
    """The state key of one underlier's option chain in one session: ``gex:underlying_id:day``.
    It travels with the book keys (``SourceEnd.book_keys``, the manifest) and is told apart by
    its prefix."""
    return f"{CHAIN_PREFIX}{underlying_id}:{session_day}"


def is_chain_key(key: str) -> bool:
    return key.startswith(CHAIN_PREFIX)


def chain_of(key: str) -> tuple[int, int]:
    """``(underlying_id, session_day)`` of a chain key."""
    uid, day = key[len(CHAIN_PREFIX):].split(":")
    return int(uid), int(day)


OPTION_TOP_DTYPE = np.dtype([
    ("ts_recv", "<i8"),  # the second's close: the top after every event before it
    ("instrument_id", "<u4"),
    ("bid_px", "<i8"),
    ("bid_sz", "<u4"),
    ("ask_px", "<i8"),
    ("ask_sz", "<u4"),
    ("last_trade_px", "<i8"),  # UNDEF_PRICE: no trade in the second
    ("volume", "<i8"),  # lots traded in the second
])
_TRADE = ord("T")


@dataclass(frozen=True, slots=True)
class OptionTopsState:
    ticks: dict[int, int]
    books: dict[int, BookState]
    open: np.ndarray


class OptionTops:
    """The books of a set of options and their rows of OPTION_TOP_DTYPE, second by second."""

    def __init__(self, ticks: Mapping[int, int] | None = None, *, resume: OptionTopsState | None = None) -> None:
        self._ticks = dict(ticks or {})
        self._books: dict[int, L3Book] = {}
        self._open = np.zeros(0, OPTION_TOP_DTYPE)
        if resume is not None:
            self._ticks = dict(resume.ticks)
            self._books = {i: L3Book(b.tick, depth=1, resume=b) for i, b in resume.books.items()}
            self._open = resume.open.copy()

    def apply(self, records: np.ndarray, ticks: Mapping[int, int] | None = None) -> np.ndarray:
        """Apply MBO records (in ``ts_recv`` order; ``ticks`` of options not seen before); the rows
        of the seconds now closed."""
        self._ticks.update(ticks or {})
        if len(records) == 0:
            return np.zeros(0, OPTION_TOP_DTYPE)
        rows = _merge(self._open, self._rows(records))
        last_close = (int(records["ts_recv"][-1]) // NS + 1) * NS
        done = rows["ts_recv"] < last_close
        self._open = rows[~done]
        return rows[done]

    def through(self, clock_ns: int) -> np.ndarray:
        """The rows of the seconds closing at or before ``clock_ns``, when no record before it is
        still to come (a topic's tick: the chain's clock moved on without a record of its own)."""
        done = self._open["ts_recv"].astype(np.int64) <= clock_ns
        if not done.any():
            return np.zeros(0, OPTION_TOP_DTYPE)
        out, self._open = self._open[done], self._open[~done]
        return out

    def close(self) -> np.ndarray:
        """The last second's rows (the end of the session)."""
        out, self._open = self._open, np.zeros(0, OPTION_TOP_DTYPE)
        return out

    def snapshot(self) -> OptionTopsState:
        return OptionTopsState(dict(self._ticks), {i: b.snapshot() for i, b in self._books.items()}, self._open.copy())

    def _rows(self, records: np.ndarray) -> np.ndarray:
        consolidated = "bid_px_00" in (records.dtype.names or ())
        ids, counts, parts = [], [], []
        for iid, rows in group_rows(records["instrument_id"]):
            mine = take_records(records, rows)
            # OPRA's cmbp-1: each record carries the top after it, no book to keep
            tops = quote_tops(mine) if consolidated else self._book(iid).apply_events(mine)
            ids.append(iid)
            counts.append(len(tops))
            parts.append(tops)
        trades = records[records["action"].view(np.uint8) == _TRADE]
        tops = _top_fields(np.concatenate(parts))  # once for the chunk: per option it was most of the loop
        return by_second(_per_second(np.repeat(np.array(ids, np.int64), counts), tops, trades))

    def _book(self, instrument_id: int) -> L3Book:
        book = self._books.get(instrument_id)
        if book is None:
            book = self._books[instrument_id] = L3Book(self._ticks.get(instrument_id, 0), depth=1)
        return book


_QUOTE_TOP = np.dtype([("ts_recv", "<u8"), ("book_valid", "?"), ("bid_px", "<i8", (1,)), ("ask_px", "<i8", (1,)),
                       ("bid_sz", "<u4", (1,)), ("ask_sz", "<u4", (1,))])


def quote_tops(records: np.ndarray) -> np.ndarray:
    """Consolidated top-of-book records (``cmbp-1``) as the tops a book would give after each."""
    out = np.zeros(len(records), _QUOTE_TOP)
    out["ts_recv"], out["book_valid"] = records["ts_recv"], True
    for side in ("bid", "ask"):
        out[f"{side}_px"][:, 0] = records[f"{side}_px_00"]
        out[f"{side}_sz"][:, 0] = records[f"{side}_sz_00"]
    return out


def _close_of(ts: np.ndarray) -> np.ndarray:
    return (ts.astype(np.int64) // NS + 1) * NS


_TOP_FIELDS = np.dtype([("ts_recv", "<u8"), ("book_valid", "?"), ("bid_px", "<i8"), ("ask_px", "<i8"),
                        ("bid_sz", "<u4"), ("ask_sz", "<u4")])


def _top_fields(tops: np.ndarray) -> np.ndarray:
    """What a second's row takes of a book's (or a quote's) tops: the first level of each side."""
    out = np.empty(len(tops), _TOP_FIELDS)
    out["ts_recv"], out["book_valid"] = tops["ts_recv"], tops["book_valid"]
    for name in ("bid_px", "ask_px", "bid_sz", "ask_sz"):
        out[name] = tops[name][:, 0]
    return out


def _per_second(ids: np.ndarray, tops: np.ndarray, trades: np.ndarray) -> np.ndarray:
    """One row per option and second with an event: the last top in it (``tops``, grouped by
    option, ``ids`` theirs, each group in time order), its trades' volume and last price.
    (A second whose event ends in the next chunk has its trades only; ``_merge`` adds its top.)
    Rows in (option, second) order; seconds fit in 32 bits, so (option, second) packs in one key."""
    close = _close_of(tops["ts_recv"])
    top_key = (ids << 32) | (close // NS)
    last = np.flatnonzero(np.r_[top_key[1:] != top_key[:-1], True]) if len(top_key) else np.zeros(0, np.int64)
    t_close = _close_of(trades["ts_recv"])
    trade_key = (trades["instrument_id"].astype(np.int64) << 32) | (t_close // NS)
    keys = np.union1d(top_key[last], trade_key)
    out = np.zeros(len(keys), OPTION_TOP_DTYPE)
    out["ts_recv"], out["instrument_id"] = (keys & 0xFFFFFFFF) * NS, keys >> 32
    out["bid_px"] = out["ask_px"] = out["last_trade_px"] = UNDEF_PRICE
    at = np.searchsorted(keys, top_key[last])
    valid = tops["book_valid"][last]
    for side in ("bid", "ask"):
        px = tops[f"{side}_px"][last]
        out[f"{side}_px"][at] = np.where(valid, px, UNDEF_PRICE)
        out[f"{side}_sz"][at] = np.where(valid & (px != UNDEF_PRICE), tops[f"{side}_sz"][last], 0)
    if len(trades):
        at = np.searchsorted(keys, trade_key)
        np.add.at(out["volume"], at, trades["size"].astype(np.int64))
        keyed, first_from_end = np.unique(trade_key[::-1], return_index=True)  # each second's last trade
        out["last_trade_px"][np.searchsorted(keys, keyed)] = trades["price"][len(trades) - 1 - first_from_end]
    return out


def _merge(carried: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` after the carried open second: an option's row for the same second replaces the
    carried top and adds the carried trades."""
    if len(carried) == 0:
        return rows
    alike = np.flatnonzero(np.isin(rows["ts_recv"], carried["ts_recv"]))  # only the carried seconds can match
    same = {(int(rows["ts_recv"][i]), int(rows["instrument_id"][i])): int(i) for i in alike}
    keep = []
    for row in carried:
        i = same.get((int(row["ts_recv"]), int(row["instrument_id"])))
        if i is None:
            keep.append(row)
            continue
        rows["volume"][i] += row["volume"]  # the top is the later chunk's: the second's last event
        if rows["last_trade_px"][i] == UNDEF_PRICE:
            rows["last_trade_px"][i] = row["last_trade_px"]
    return by_second(np.concatenate([np.array(keep, OPTION_TOP_DTYPE), rows]))


def by_second(rows: np.ndarray) -> np.ndarray:
    """Rows in (second, instrument) order, ties broken by their content: the order never depends
    on how rows arrived (which differs with the worker count). An option has one row per second,
    so ties are rare: the content decides only when two rows share both keys."""
    order = np.lexsort((rows["instrument_id"], rows["ts_recv"]))
    ts, iid = rows["ts_recv"][order], rows["instrument_id"][order]
    if not ((ts[1:] == ts[:-1]) & (iid[1:] == iid[:-1])).any():
        return rows[order]
    keys = [rows[name] for name in reversed(OPTION_TOP_DTYPE.names or ())]
    return rows[np.lexsort(keys)]


def option_mid(bid_px: np.ndarray, ask_px: np.ndarray) -> np.ndarray:
    """The mid in index points; NaN unless both sides are quoted."""
    both = (bid_px != UNDEF_PRICE) & (ask_px != UNDEF_PRICE)
    return np.where(both, (bid_px.astype(np.float64) + ask_px.astype(np.float64)) / 2e9, np.nan)


@dataclass(frozen=True, slots=True)
class ChainGexConfig:
    gex: GexConfig = GexConfig()
    model: OptionModel = "black76"
    dividend_yield: float = 0.0
    heartbeat_s: int = 60


@dataclass(frozen=True, slots=True)
class ChainGexState:
    underlier: str
    infos: tuple[InstrumentInfo, ...]
    mids: np.ndarray
    pending: np.ndarray
    changed: bool
    spot: float
    last_row_s: int
    ivs: np.ndarray
    volume: np.ndarray


class ChainGex:
    """The GEX of one underlier's listed options over a session (see the module docstring).

    Options join as their first records arrive (``add``); they are kept in instrument-id order,
    so sums do not depend on the order they arrived in."""

    def __init__(self, underlier: str, open_interest: Mapping[int, int], cfg: ChainGexConfig,
                 *, resume: ChainGexState | None = None) -> None:
        self._underlier, self._cfg, self._all_oi = underlier, cfg, dict(open_interest)
        self._infos: dict[int, InstrumentInfo] = {}
        self._joined = False
        """Options joined since the arrays were built."""
        self._mid = np.zeros(0)
        self._pending = np.zeros(0, OPTION_TOP_DTYPE)
        self._pending_ts = np.zeros(0, np.int64)
        self._changed = False
        self._spot = np.nan
        self._last_row_s = -(1 << 62)
        if resume is not None:
            self._infos = {o.instrument_id: o for o in resume.infos}
            self._build(resume.mids, resume.volume)
            self._pending = resume.pending.copy()
            self._pending_ts = np.ascontiguousarray(self._pending["ts_recv"])
            self._changed, self._spot, self._last_row_s = resume.changed, resume.spot, resume.last_row_s
            self._iv = resume.ivs.copy()
        else:
            self._build(np.zeros(0), np.zeros(0))

    @property
    def underlier(self) -> str:
        return self._underlier

    @property
    def options(self) -> Mapping[int, InstrumentInfo]:
        return self._infos

    def add(self, options: Iterable[InstrumentInfo]) -> None:
        """Options join; the arrays are rebuilt once, when next needed (a Bronze replay adds its
        options one slice, so one option, at a time: a rebuild per option was quadratic)."""
        for o in options:
            if o.instrument_id not in self._infos:
                self._infos[o.instrument_id] = o
                self._joined = True

    def _settle(self) -> None:
        if not self._joined:
            return
        self._joined = False
        mids = dict(zip(self._ids.tolist(), self._mid.tolist(), strict=True))
        volume = dict(zip(self._ids.tolist(), self._volume.tolist(), strict=True))
        ids = sorted(self._infos)
        self._build(np.array([mids.get(i, np.nan) for i in ids]), np.array([volume.get(i, 0.0) for i in ids]))

    def _build(self, mids: np.ndarray, volume: np.ndarray) -> None:
        options = [self._infos[i] for i in sorted(self._infos)]
        self._ids = np.array([o.instrument_id for o in options], np.int64)
        self._expiration = np.array([o.expiration_ns for o in options], np.int64)
        self._strike = np.array([o.strike_price / 1e9 for o in options])
        self._is_call = np.array([o.option_right == "C" for o in options], np.bool_)
        self._multiplier = np.array([o.multiplier for o in options])
        self._oi = self._open_interest_of([o.instrument_id for o in options])
        self._mid = mids.astype(np.float64) if len(mids) == len(options) else np.full(len(options), np.nan)
        self._volume = volume.astype(np.float64) if len(volume) == len(options) else np.zeros(len(options))
        """Contracts traded in the session so far, per option (for ``GexProfile``)."""
        self._iv = np.full(len(options), np.nan)  # where each σ search starts: the last σ found
        self._layout: tuple[np.ndarray, ChainLayout, ChainQuotes] | None = None
        """The live options' mask, their ``ChainLayout`` and listing (rebuilt when the mask changes)."""

    def set_open_interest(self, open_interest: Mapping[int, int]) -> None:
        """Open interest learnt after the chain began (a live topic publishes it as it comes): the
        seconds computed from now on use it."""
        self._all_oi = dict(open_interest)
        self._oi = self._open_interest_of(self._ids.tolist())
        self._layout = None

    def _open_interest_of(self, ids: list[int]) -> np.ndarray:
        return np.array([float(self._all_oi.get(i, 0)) for i in ids])

    def snapshot(self) -> ChainGexState:
        self._settle()
        return ChainGexState(self._underlier, tuple(self._infos[i] for i in sorted(self._infos)), self._mid.copy(),
                             self._pending.copy(), self._changed, self._spot, self._last_row_s, self._iv.copy(),
                             self._volume.copy())

    def quotes(self, tops: np.ndarray) -> None:
        """Option top rows (any order of arrival; applied at their own second)."""
        if not len(tops):
            return
        self._settle()
        known = among(tops["instrument_id"], self._ids)  # ids are sorted
        rows = tops if known.all() else tops[known]
        if not len(rows):
            return
        if len(self._pending) and int(self._pending_ts[-1]) >= int(rows["ts_recv"].min()):  # they interleave
            self._pending = by_second(np.concatenate([self._pending, rows]))
        else:  # later seconds than any pending (a chain's usual case): in order once they are
            self._pending = np.concatenate([self._pending, by_second(rows)]) if len(self._pending) else by_second(rows)
        self._pending_ts = np.ascontiguousarray(self._pending["ts_recv"])

    def seconds(self, closes: np.ndarray,
                spots: np.ndarray) -> tuple[list[Columns], list[GexSummary], list[GexProfile]]:
        """The underlying's mid at the close of each second (ascending); the GEX rows due by then,
        and the profile of each of their seconds. Every option row of a second up to the last close
        must have been given to ``quotes``. The surface rows come as a few column sets, each
        holding several seconds in order; the summaries and profiles one per second."""
        closes, spots = np.ascontiguousarray(closes, np.int64), np.ascontiguousarray(spots, np.float64)
        if not len(closes):
            return [], [], []
        self._settle()
        upto = int(np.searchsorted(self._pending_ts, closes[-1], side="right"))  # the rows these closes apply
        applied = self._pending[:upto]
        slots = np.searchsorted(self._ids, applied["instrument_id"]).astype(np.int64)  # ids are sorted and known
        due, mids, volumes, self._changed, self._spot, self._last_row_s = _advance(
            closes, spots, np.ascontiguousarray(self._pending_ts[:upto]), slots,
            option_mid(applied["bid_px"], applied["ask_px"]), applied["volume"].astype(np.float64), self._mid,
            self._volume, self._changed, self._spot, self._last_row_s, self._cfg.heartbeat_s)
        self._pending, self._pending_ts = self._pending[upto:], self._pending_ts[upto:]
        return self._rows(closes[due], spots[due], mids, volumes)

    def _rows(self, closes: np.ndarray, spots: np.ndarray, mids: np.ndarray, volumes: np.ndarray
              ) -> tuple[list[Columns], list[GexSummary], list[GexProfile]]:
        """The rows of the due seconds (their closes and spots, the options' mids and volumes as of
        each), computed a run of seconds at a time: a run keeps one listing (no expiry passes inside
        it), so its numbers are a few array passes, not a few dozen numpy calls per second."""
        surfaces: list[Columns] = []
        summaries: list[GexSummary] = []
        profiles: list[GexProfile] = []
        if not len(closes):
            return surfaces, summaries, profiles
        live = self._expiration[None, :] > closes[:, None]
        breaks = np.flatnonzero(np.any(live[1:] != live[:-1], axis=1)) + 1
        for a, b in zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(closes)].tolist(), strict=True):
            surface, run_summaries, run_profiles = self._run(closes[a:b], spots[a:b], live[a], mids[a:b],
                                                             volumes[a:b])
            surfaces.append(surface)
            summaries += run_summaries
            profiles += run_profiles
        return surfaces, summaries, profiles

    def _run(self, closes: np.ndarray, spots: np.ndarray, live: np.ndarray, mids: np.ndarray,
             volumes: np.ndarray) -> tuple[Columns, list[GexSummary], list[GexProfile]]:
        if self._layout is None or not np.array_equal(live, self._layout[0]):  # an expiry passed, an option joined
            listed = ChainQuotes(self._expiration[live], self._strike[live], self._is_call[live], self._mid[live],
                                 self._oi[live], self._multiplier[live], np.zeros(int(live.sum())))
            self._layout = (live, chain_layout(listed), listed)
        _, layout, listed = self._layout
        underlying = np.repeat(spots[:, None], listed.strike.shape[0], axis=1)
        surface, summaries, per = gex_seconds(self._underlier, closes, spots, listed, mids[:, live], underlying,
                                              self._cfg.model, self._cfg.gex, self._cfg.dividend_yield,
                                              self._iv[live], layout)
        self._iv[live] = per["iv"][-1]
        profiles = gex_profiles(closes, spots, np.array([s.zero_gamma for s in summaries]), listed, per["gex"],
                                per["iv"], volumes[:, live], (layout.strikes, layout.strike_slot), layout.expiries)
        return surface, summaries, profiles



@njit(cache=True, nogil=True)
def _advance(closes: np.ndarray, spots: np.ndarray, row_ts: np.ndarray, row_slot: np.ndarray, row_mid: np.ndarray,
             row_volume: np.ndarray, mid: np.ndarray, volume: np.ndarray, changed: bool, spot: float,
             last_row_s: int, heartbeat_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, float, int]:
    """Second by second (``closes`` ascending): the option rows up to each close applied to ``mid``
    and ``volume`` (in place; an option's latest row wins), and whether the second is due a GEX
    row: the spot known, and it moved, an option's mid changed, or ``heartbeat_s`` passed since
    the last row. Returns the due seconds' indices, the mids and volumes as of each, and the state
    after the last close. A mid changed and changed back within one second is no change. One
    kernel pass: in Python the same was a handful of numpy calls per second of the session."""
    m, n = closes.shape[0], mid.shape[0]
    due = np.empty(m, np.int64)
    mids, volumes = np.empty((m, n)), np.empty((m, n))
    before = np.empty(n)
    touched = np.full(n, -1, np.int64)  # the close whose rows last saved the option's mid in ``before``
    r, count = 0, 0
    for j in range(m):
        first = r
        while r < row_ts.shape[0] and row_ts[r] <= closes[j]:
            slot = row_slot[r]
            if touched[slot] != j:
                touched[slot], before[slot] = j, mid[slot]
            mid[slot] = row_mid[r]
            volume[slot] += row_volume[r]
            r += 1
        for q in range(first, r):
            was, now = before[row_slot[q]], mid[row_slot[q]]
            if not (was == now or (math.isnan(was) and math.isnan(now))):
                changed = True
        second = closes[j] // NS
        moved = math.isfinite(spots[j]) and spots[j] != spot
        if not math.isfinite(spots[j]) or not (moved or changed or second - last_row_s >= heartbeat_s):
            continue
        spot, changed, last_row_s = spots[j], False, second
        due[count] = j
        mids[count], volumes[count] = mid, volume
        count += 1
    return due[:count], mids[:count], volumes[:count], changed, spot, last_row_s

OPEN_INTEREST = 9
"""Databento's ``StatType.OPEN_INTEREST``."""


def open_interest_before(stats: np.ndarray, session_start_ns: int, session_end_ns: int) -> dict[int, int]:
    """Each instrument's open interest for a session: its ``stat_type`` 9 record as of the latest
    close (``ts_ref``) before the session starts, among those published (``ts_recv``) before it
    ends. The session's own close, published the next morning, is never used."""
    ts_ref, ts_recv = stats["ts_ref"].astype(np.int64), stats["ts_recv"].astype(np.int64)
    oi = stats[(stats["stat_type"] == OPEN_INTEREST) & (ts_ref < session_start_ns) & (ts_recv < session_end_ns)]
    oi = oi[np.lexsort((oi["ts_recv"], oi["ts_ref"]))]
    return {int(i): int(q) for i, q in zip(oi["instrument_id"], oi["quantity"], strict=True)}
