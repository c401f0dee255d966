"""The rows of ``silver.gex_surface_1s`` (per underlier, second, expiry and strike) and
``silver.gex_summary_1s`` (per underlier and second), and ``recompute``: a surface row's numbers
from its own input columns, for anyone who wants to check them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from operators.options import pricing
from operators.options.gex import (
    SIGN_CONVENTIONS,
    ChainQuotes,
    GexConfig,
    OptionModel,
    carry,
    option_gex,
    spot_grid,
    zero_gamma_level,
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


def _side(values: np.ndarray, index: np.ndarray, missing: float) -> np.ndarray:
    return np.where(index >= 0, values[np.maximum(index, 0)], missing)


Columns = dict[str, np.ndarray | list[str]]


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
    per = option_gex(chain, second_ns, model, cfg, dividend_yield, guess)
    layout = layout if layout is not None else chain_layout(chain)
    return (surface_rows(underlier, second_ns, chain, model, cfg, per, dividend_yield, layout),
            summary_row(underlier, second_ns, spot, chain, model, cfg, per, dividend_yield, layout), per)


def surface_rows(underlier: str, second_ns: int, chain: ChainQuotes, model: OptionModel, cfg: GexConfig,
                 per: dict[str, np.ndarray], dividend_yield: float = 0.0,
                 layout: ChainLayout | None = None) -> Columns:
    """One row per (expiry, strike) listed for ``underlier``: the call and the put side by side."""
    layout = layout if layout is not None else chain_layout(chain)
    keys, calls, puts = layout.keys, layout.calls, layout.puts
    either = np.where(calls >= 0, calls, puts)
    call_sign, put_sign = SIGN_CONVENTIONS[cfg.sign_convention]
    n = keys.shape[0]
    call_gex, put_gex = _side(per["gex"], calls, 0.0), _side(per["gex"], puts, 0.0)
    return {
        "underlier": [underlier] * n,
        "ts_second": np.full(n, second_ns, np.int64),
        "expiration": keys["expiration"],
        "strike": keys["strike"],
        "model": [model] * n,
        "sign_convention": [cfg.sign_convention] * n,
        "underlying_px": chain.underlying_px[either].astype(np.float64),
        "t_years": per["t_years"][either],
        "rate": np.full(n, cfg.rate),
        "carry": np.full(n, carry(model, cfg.rate, dividend_yield)),
        "vol_floor": np.full(n, cfg.min_vol),
        "multiplier": chain.multiplier[either].astype(np.float64),
        "call_mid": _side(chain.mid.astype(np.float64), calls, math.nan),
        "put_mid": _side(chain.mid.astype(np.float64), puts, math.nan),
        "call_iv": _side(per["iv"], calls, math.nan),
        "put_iv": _side(per["iv"], puts, math.nan),
        "call_gamma": _side(per["gamma"], calls, math.nan),
        "put_gamma": _side(per["gamma"], puts, math.nan),
        "call_oi": _side(chain.open_interest.astype(np.float64), calls, 0.0),
        "put_oi": _side(chain.open_interest.astype(np.float64), puts, 0.0),
        "call_sign": np.full(n, call_sign),
        "put_sign": np.full(n, put_sign),
        "call_gex": call_gex,
        "put_gex": put_gex,
        "net_gex": call_gex + put_gex,
    }


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


def summary_row(underlier: str, second_ns: int, spot: float, chain: ChainQuotes, model: OptionModel,
                cfg: GexConfig, per: dict[str, np.ndarray], dividend_yield: float = 0.0,
                layout: ChainLayout | None = None) -> GexSummary:
    """Net, call and put GEX; the zero-gamma level (NaN when the grid shows no sign change); the
    call wall and put wall (the strikes of the largest call and put |GEX|, summed over expiries).
    ``per`` is ``option_gex`` of the same chain."""
    layout = layout if layout is not None else chain_layout(chain)
    grid = spot_grid(spot, cfg)
    call_sign, put_sign = SIGN_CONVENTIONS[cfg.sign_convention]
    known = np.isfinite(per["iv"])
    weight = np.where(known, np.where(chain.is_call, call_sign, put_sign), 0.0) * chain.open_interest * chain.multiplier
    vol = np.where(known, np.maximum(per["iv"], cfg.min_vol), cfg.min_vol)
    args = (chain.underlying_px.astype(np.float64) / spot, chain.strike.astype(np.float64), per["t_years"], cfg.rate,
            carry(model, cfg.rate, dividend_yield), vol, weight.astype(np.float64))
    level = zero_gamma_level(spot, grid, *args)
    return GexSummary(
        underlier=underlier, ts_second=second_ns, underlying_px=spot, model=model,
        sign_convention=cfg.sign_convention,
        net_gex=float(per["gex"].sum()),
        call_gex=float(per["gex"][chain.is_call].sum()),
        put_gex=float(per["gex"][~chain.is_call].sum()),
        zero_gamma=level,
        call_wall=_wall(layout.call_groups, per["gex"]),
        put_wall=_wall(layout.put_groups, per["gex"]),
        options_priced=int(known.sum()),
        grid_low=float(grid[0]), grid_high=float(grid[-1]), grid_points=cfg.grid_points,
    )


def _wall(groups: tuple[np.ndarray, np.ndarray, np.ndarray], gex: np.ndarray) -> float:
    """The strike holding the most |GEX| over all expiries (the lowest such strike on a tie)."""
    order, starts, strikes = groups
    if order.size == 0 or not np.any(gex[order]):
        return math.nan
    total = np.add.reduceat(np.abs(gex[order]), starts)
    return float(strikes[int(np.argmax(total))])
