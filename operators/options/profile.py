"""The chain as a setup vector reads it: one underlier's GEX, open interest and volume per strike
(summed over expiries) at one second, its zero-gamma level and its skew.

The GEX surface is per (expiry, strike) with every input beside it, for checking; an episode
needs far less — what sits near its level — and needs it for whatever second it started on. So
the chain step keeps a profile for every second it computes a surface, and the episode step reads
the last one at or before the episode's start (``operators.vectors.options``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from operators.options.gex import YEAR_NS, ChainQuotes

SKEW_MONEYNESS: Final = 0.02
"""Skew: σ of the put struck nearest S × (1 − 0.02) minus σ of the call nearest S × (1 + 0.02) ..."""
SKEW_MIN_YEARS: Final = 1.0 / 365
"""... on the nearest expiry at least a day away with both priced (0DTE smiles are all wings)."""


@dataclass(frozen=True, slots=True)
class GexProfile:
    """One underlier's chain at one second, per listed strike (ascending)."""

    ts_second: int
    spot: float
    zero_gamma: float
    """NaN when net GEX keeps one sign over the search grid."""
    skew: float
    """NaN when no expiry has both sides priced (``SKEW_MONEYNESS``, ``SKEW_MIN_YEARS``)."""
    strikes: np.ndarray
    net_gex: np.ndarray
    """Dealer-signed dollars per 1 % move (``operators.options.gex``)."""
    call_oi: np.ndarray
    put_oi: np.ndarray
    call_volume: np.ndarray
    """Contracts traded in the session up to this second."""
    put_volume: np.ndarray


def gex_profile(second_ns: int, spot: float, zero_gamma: float, chain: ChainQuotes, gex: np.ndarray,
                iv: np.ndarray, volume: np.ndarray,
                strikes_and_slots: tuple[np.ndarray, np.ndarray] | None = None,
                expiries: np.ndarray | None = None) -> GexProfile:
    """The profile of ``chain`` (one entry per option) given each option's GEX, σ (NaN: none) and
    session volume so far. ``strikes_and_slots``: the distinct strikes and each option's index
    into them, and ``expiries`` the distinct expirations, when the caller keeps them (``ChainLayout``)."""
    if strikes_and_slots is None:
        strikes, slot = np.unique(chain.strike.astype(np.float64), return_inverse=True)
    else:
        strikes, slot = strikes_and_slots
    calls = chain.is_call.astype(bool)
    oi, traded = chain.open_interest.astype(np.float64), volume.astype(np.float64)
    values = np.stack([gex, np.where(calls, oi, 0.0), np.where(calls, 0.0, oi), np.where(calls, traded, 0.0),
                       np.where(calls, 0.0, traded)], axis=1)
    n = strikes.shape[0]
    sums = np.stack([np.bincount(slot, weights=values[:, k], minlength=n) for k in range(5)], axis=1)
    return GexProfile(
        ts_second=second_ns, spot=spot, zero_gamma=zero_gamma,
        skew=skew(second_ns, spot, chain.expiration_ns, chain.strike.astype(np.float64), calls, iv, expiries),
        strikes=strikes, net_gex=sums[:, 0], call_oi=sums[:, 1], put_oi=sums[:, 2], call_volume=sums[:, 3],
        put_volume=sums[:, 4],
    )


def skew(second_ns: int, spot: float, expiration_ns: np.ndarray, strike: np.ndarray, is_call: np.ndarray,
         iv: np.ndarray, expiries: np.ndarray | None = None) -> float:
    """σ(put, K ≈ S(1 − m)) − σ(call, K ≈ S(1 + m)) on the nearest expiry at least ``SKEW_MIN_YEARS``
    away where both are priced; positive when downside protection is dearer (the usual index smile)."""
    priced = np.isfinite(iv)
    for expiry in (expiries if expiries is not None else np.unique(expiration_ns)):
        if (int(expiry) - second_ns) / YEAR_NS < SKEW_MIN_YEARS:
            continue
        mine = priced & (expiration_ns == expiry)
        puts, calls = mine & ~is_call, mine & is_call
        if not (puts.any() and calls.any()):
            continue
        put = np.flatnonzero(puts)[np.argmin(np.abs(strike[puts] - spot * (1 - SKEW_MONEYNESS)))]
        call = np.flatnonzero(calls)[np.argmin(np.abs(strike[calls] - spot * (1 + SKEW_MONEYNESS)))]
        return float(iv[put] - iv[call])
    return math.nan
