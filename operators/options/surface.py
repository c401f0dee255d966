"""The rows of ``silver.gex_surface_1s`` (per underlier, second, expiry and strike) and
``silver.gex_summary_1s`` (per underlier and second), and ``recompute``: a surface row's numbers
from its own input columns, for anyone who wants to check them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat

import numpy as np
from numba import njit

from operators.options import pricing
from operators.options.gex import (
    SIGN_CONVENTIONS,
    ChainQuotes,
    GexConfig,
    OptionModel,
    carry,
    option_gex_seconds,
    spot_grids,
    zero_gamma_levels,
)

SURFACE_INPUTS = ("underlying_px", "strike", "t_years", "rate", "carry", "vol_floor", "multiplier",
                  "call_mid", "put_mid", "call_iv", "put_iv", "call_oi", "put_oi", "call_sign", "put_sign")
"""What a surface row was computed from; ``recompute`` needs nothing else."""
SURFACE_OUTPUTS = ("call_gamma", "put_gamma", "call_gex", "put_gex", "net_gex")


def _pairs(chain: ChainQuotes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (expiry, strike) keys in order, and each key's call and put index (−1: not listed)."""
    order = np.lexsort((chain.strike, chain.expiration_ns))
    exp, strike = chain.expiration_ns[order], chain.strike[order]
    first = np.r_[True, (exp[1:] != exp[:-1]) | (strike[1:] != strike[:-1])] if order.size else np.zeros(0, bool)
    slot = np.cumsum(first) - 1
    keys = np.empty(int(first.sum()), [("expiration", np.int64), ("strike", np.float64)])
    keys["expiration"], keys["strike"] = exp[first], strike[first]
    calls = np.full(keys.shape[0], -1, np.int64)
    puts = np.full(keys.shape[0], -1, np.int64)
    is_call = chain.is_call[order]
    calls[slot[is_call]] = order[is_call]
    puts[slot[~is_call]] = order[~is_call]
    return keys, calls, puts


@dataclass(frozen=True, slots=True)
class ChainLayout:
    """What a second's rows need of a chain's listing alone, not of its quotes: the (expiry,
    strike) pairs and each one's call and put, and the strike groups the walls sum over. A chain's
    listing changes only when an expiry passes or an option joins, so ``ChainGex`` builds this
    once per listing instead of once per second."""

    keys: np.ndarray
    calls: np.ndarray
    puts: np.ndarray
    call_groups: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Calls in strike order, where each strike's run starts, and that strike."""
    put_groups: tuple[np.ndarray, np.ndarray, np.ndarray]
    strikes: np.ndarray
    """The distinct strikes, ascending ..."""
    strike_slot: np.ndarray
    """... and each option's index into them (``operators.options.profile``)."""
    expiries: np.ndarray
    """The distinct expirations, ascending."""


def _strike_groups(strike: np.ndarray, mine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = np.flatnonzero(mine)
    order = index[np.argsort(strike[index], kind="stable")]
    ordered = strike[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if order.size else np.zeros(0, np.int64)
    return order, starts, ordered[starts]


def chain_layout(chain: ChainQuotes) -> ChainLayout:
    keys, calls, puts = _pairs(chain)
    strike = chain.strike.astype(np.float64)
    strikes, slot = np.unique(strike, return_inverse=True)
    return ChainLayout(keys, calls, puts, _strike_groups(strike, chain.is_call), _strike_groups(strike, ~chain.is_call),
                       strikes, slot.ravel(), np.unique(chain.expiration_ns))


@dataclass(frozen=True, slots=True)
class Repeated:
    """One value on every row of a column set (an underlier, a model, a convention, the rate): a
    surface has ~130 rows a second, and a Python string per row and column was a tenth of a
    second's GEX cost on the options bench day; an array of one number repeated is memory written
    twice (here, then into Arrow) for nothing."""

    value: str | float
    n: int

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[str | float]:
        return repeat(self.value, self.n)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        """As numpy sees it: the value on each row (``np.asarray`` of a column set's columns)."""
        if dtype is None:
            dtype = np.dtype(object) if isinstance(self.value, str) else np.dtype(np.float64)
        return np.full(self.n, self.value, dtype=dtype)


Columns = dict[str, np.ndarray | Repeated]


@dataclass(frozen=True, slots=True)
class GexSummary:
    """One row of ``silver.gex_summary_1s``."""

    underlier: str
    ts_second: int
    underlying_px: float
    model: OptionModel
    sign_convention: str
    net_gex: float
    call_gex: float
    put_gex: float
    zero_gamma: float
    """NaN when the net GEX keeps one sign over the whole grid."""
    call_wall: float
    put_wall: float
    options_priced: int
    """Options whose mid gave a σ."""
    grid_low: float
    grid_high: float
    grid_points: int


def gex_second(underlier: str, second_ns: int, spot: float, chain: ChainQuotes, model: OptionModel,
               cfg: GexConfig, dividend_yield: float = 0.0,
               guess: np.ndarray | None = None,
               layout: ChainLayout | None = None) -> tuple[Columns, GexSummary, dict[str, np.ndarray]]:
    """The surface rows and the summary row of one underlier's chain at one second, and each
    option's numbers (``option_gex``: its σ, NaN where none, is a good ``guess`` for the next
    second's search). ``layout``: ``chain_layout(chain)``, when the caller keeps it."""
    surface, summaries, per = gex_seconds(underlier, np.array([second_ns], np.int64), np.array([spot], np.float64),
                                          chain, chain.mid[None, :], chain.underlying_px[None, :], model, cfg,
                                          dividend_yield, guess, layout)
    return surface, summaries[0], {name: values[0] for name, values in per.items()}


def gex_seconds(underlier: str, seconds_ns: np.ndarray, spots: np.ndarray, chain: ChainQuotes, mids: np.ndarray,
                underlying: np.ndarray, model: OptionModel, cfg: GexConfig, dividend_yield: float = 0.0,
                guess: np.ndarray | None = None,
                layout: ChainLayout | None = None) -> tuple[Columns, list[GexSummary], dict[str, np.ndarray]]:
    """``gex_second`` at several seconds of one listing (``mids``, ``underlying``: one row per
    second; ``chain``'s own mid and underlying price are not read), the surface rows of every
    second in one set of columns (second by second), and each option's numbers per second."""
    per = option_gex_seconds(chain, seconds_ns, mids, underlying, model, cfg, dividend_yield, guess)
    layout = layout if layout is not None else chain_layout(chain)
    return (surface_rows(underlier, seconds_ns, chain, mids, underlying, model, cfg, per, dividend_yield, layout),
            summary_rows(underlier, seconds_ns, spots, chain, underlying, model, cfg, per, dividend_yield, layout), per)


_SURFACE_NUMBERS = ("underlying_px", "t_years", "multiplier", "call_mid", "put_mid", "call_iv", "put_iv", "call_gamma",
                    "put_gamma", "call_oi", "put_oi", "call_gex", "put_gex", "net_gex")
"""The surface's number columns that vary by row, in the order ``_surface_numbers`` fills them."""


def surface_rows(underlier: str, seconds_ns: np.ndarray, chain: ChainQuotes, mids: np.ndarray, underlying: np.ndarray,
                 model: OptionModel, cfg: GexConfig, per: dict[str, np.ndarray], dividend_yield: float,
                 layout: ChainLayout) -> Columns:
    """Per second, one row per (expiry, strike) listed for ``underlier``: the call and the put side by side."""
    keys = layout.keys
    call_sign, put_sign = SIGN_CONVENTIONS[cfg.sign_convention]
    m, k = len(seconds_ns), keys.shape[0]
    n = m * k
    numbers = np.empty((len(_SURFACE_NUMBERS), n))
    _surface_numbers(layout.calls, layout.puts, np.ascontiguousarray(mids, np.float64),
                     np.ascontiguousarray(underlying, np.float64), per["t_years"], per["iv"], per["gamma"], per["gex"],
                     chain.open_interest.astype(np.float64), chain.multiplier.astype(np.float64), numbers)
    return {
        "underlier": Repeated(underlier, n),
        "ts_second": np.repeat(np.asarray(seconds_ns, np.int64), k),
        "expiration": np.tile(keys["expiration"], m),
        "strike": np.tile(keys["strike"], m),
        "model": Repeated(model, n),
        "sign_convention": Repeated(cfg.sign_convention, n),
        "rate": Repeated(cfg.rate, n),
        "carry": Repeated(carry(model, cfg.rate, dividend_yield), n),
        "vol_floor": Repeated(cfg.min_vol, n),
        "call_sign": Repeated(call_sign, n),
        "put_sign": Repeated(put_sign, n),
        **dict(zip(_SURFACE_NUMBERS, numbers, strict=True)),
    }


@njit(cache=True, nogil=True)
def _surface_numbers(calls: np.ndarray, puts: np.ndarray, mids: np.ndarray, underlying: np.ndarray, t: np.ndarray,
                     iv: np.ndarray, gamma: np.ndarray, gex: np.ndarray, oi: np.ndarray, multiplier: np.ndarray,
                     out: np.ndarray) -> None:
    """``_SURFACE_NUMBERS`` of every (second, key) row into ``out``'s rows, in one pass: per column
    a gather, a ``where`` and a reshape in numpy wrote each surface three times over."""
    nan = math.nan
    m, k = mids.shape[0], calls.shape[0]
    for j in range(m):
        for q in range(k):
            r, c, p = j * k + q, calls[q], puts[q]
            e = c if c >= 0 else p
            out[0, r], out[1, r], out[2, r] = underlying[j, e], t[j, e], multiplier[e]
            out[3, r] = mids[j, c] if c >= 0 else nan
            out[4, r] = mids[j, p] if p >= 0 else nan
            out[5, r] = iv[j, c] if c >= 0 else nan
            out[6, r] = iv[j, p] if p >= 0 else nan
            out[7, r] = gamma[j, c] if c >= 0 else nan
            out[8, r] = gamma[j, p] if p >= 0 else nan
            out[9, r] = oi[c] if c >= 0 else 0.0
            out[10, r] = oi[p] if p >= 0 else 0.0
            call_gex = gex[j, c] if c >= 0 else 0.0
            put_gex = gex[j, p] if p >= 0 else 0.0
            out[11, r], out[12, r], out[13, r] = call_gex, put_gex, call_gex + put_gex


def recompute(row: dict[str, float]) -> dict[str, float]:
    """``SURFACE_OUTPUTS`` from ``SURFACE_INPUTS`` of one row (σ re-implied from each mid)."""
    s, k, t, r, b = row["underlying_px"], row["strike"], row["t_years"], row["rate"], row["carry"]
    out: dict[str, float] = {}
    for side in ("call", "put"):
        iv = pricing.implied_vol(row[f"{side}_mid"], side == "call", s, k, t, r, b)
        g = pricing.gamma(s, k, t, r, b, max(iv, row["vol_floor"])) if math.isfinite(iv) else math.nan
        out[f"{side}_iv"] = iv
        out[f"{side}_gamma"] = g
        gex = row[f"{side}_sign"] * g * row[f"{side}_oi"] * row["multiplier"] * s * s * 0.01
        out[f"{side}_gex"] = gex if math.isfinite(gex) else 0.0
    out["net_gex"] = out["call_gex"] + out["put_gex"]
    return out


def summary_rows(underlier: str, seconds_ns: np.ndarray, spots: np.ndarray, chain: ChainQuotes,
                 underlying: np.ndarray, model: OptionModel, cfg: GexConfig, per: dict[str, np.ndarray],
                 dividend_yield: float, layout: ChainLayout) -> list[GexSummary]:
    """Per second: net, call and put GEX; the zero-gamma level (NaN when the grid shows no sign
    change); the call wall and put wall (the strikes of the largest call and put |GEX|, summed over
    expiries). ``per`` is ``option_gex_seconds`` of the same seconds."""
    spots = np.asarray(spots, np.float64)
    grids = spot_grids(spots, cfg)
    call_sign, put_sign = SIGN_CONVENTIONS[cfg.sign_convention]
    levels = zero_gamma_levels(spots, grids, np.ascontiguousarray(underlying, np.float64),
                               chain.strike.astype(np.float64), per["t_years"], cfg.rate,
                               carry(model, cfg.rate, dividend_yield), per["iv"], chain.is_call.astype(np.bool_),
                               chain.open_interest.astype(np.float64), chain.multiplier.astype(np.float64),
                               call_sign, put_sign, cfg.min_vol)
    gex, calls = np.ascontiguousarray(per["gex"]), chain.is_call.astype(np.bool_)
    net, call_gex, put_gex = _side_sums(gex, calls)
    call_walls, put_walls = _walls(*layout.call_groups, gex), _walls(*layout.put_groups, gex)
    priced = np.isfinite(per["iv"]).sum(axis=1)
    columns = zip(np.asarray(seconds_ns, np.int64).tolist(), spots.tolist(), net.tolist(), call_gex.tolist(),
                  put_gex.tolist(), np.asarray(levels, np.float64).tolist(), call_walls.tolist(), put_walls.tolist(),
                  priced.tolist(), grids[:, 0].tolist(), grids[:, -1].tolist(), strict=True)
    return [GexSummary(underlier, second, spot, model, cfg.sign_convention, net_j, calls_j, puts_j, zero, call_wall,
                       put_wall, priced_j, low, high, cfg.grid_points)  # positional, from Python numbers: ~15k a day
            for second, spot, net_j, calls_j, puts_j, zero, call_wall, put_wall, priced_j, low, high in columns]


@njit(cache=True, nogil=True)
def _side_sums(gex: np.ndarray, is_call: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per second: net, call and put GEX, each summed in option order. A row's sums must not depend
    on how many seconds share its batch (numpy's reductions over one axis of a 2-D array can), or
    two workers, which batch seconds differently, would write different rows."""
    m, n = gex.shape
    net, calls, puts = np.zeros(m), np.zeros(m), np.zeros(m)
    for j in range(m):
        for i in range(n):
            net[j] += gex[j, i]
            if is_call[i]:
                calls[j] += gex[j, i]
            else:
                puts[j] += gex[j, i]
    return net, calls, puts


@njit(cache=True, nogil=True)
def _walls(order: np.ndarray, starts: np.ndarray, strikes: np.ndarray, gex: np.ndarray) -> np.ndarray:
    """Per second (row of ``gex``), the strike holding the most |GEX| over all expiries (the lowest
    such strike on a tie); NaN where the side holds none. ``order``, ``starts``, ``strikes``: the
    side's options in strike order, where each strike's run starts, and that strike. Each
    strike's |GEX| is summed in that order, as ``np.add.reduceat`` sums."""
    m, groups = gex.shape[0], starts.shape[0]
    out = np.full(m, math.nan)
    for j in range(m):
        best, best_total, held = -1, -1.0, False
        for g in range(groups):
            end = starts[g + 1] if g + 1 < groups else order.shape[0]
            total = 0.0
            for i in range(starts[g], end):
                value = gex[j, order[i]]
                held |= value != 0.0
                total += abs(value)
            if total > best_total:
                best, best_total = g, total
        if held:
            out[j] = strikes[best]
    return out
