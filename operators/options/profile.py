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
from numba import njit

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
    return gex_profiles(np.array([second_ns], np.int64), np.array([spot], np.float64), np.array([zero_gamma]), chain,
                        gex[None, :], iv[None, :], volume[None, :], strikes_and_slots, expiries)[0]


def gex_profiles(seconds_ns: np.ndarray, spots: np.ndarray, zero_gamma: np.ndarray, chain: ChainQuotes,
                 gex: np.ndarray, iv: np.ndarray, volume: np.ndarray,
                 strikes_and_slots: tuple[np.ndarray, np.ndarray] | None = None,
                 expiries: np.ndarray | None = None) -> list[GexProfile]:
    """``gex_profile`` at several seconds of one listing (``gex``, ``iv``, ``volume``: a row per second)."""
    if strikes_and_slots is None:
        strikes, slot = np.unique(chain.strike.astype(np.float64), return_inverse=True)
    else:
        strikes, slot = strikes_and_slots
    if expiries is None:
        expiries = np.unique(chain.expiration_ns)
    calls = chain.is_call.astype(bool)
    oi, traded = chain.open_interest.astype(np.float64), np.asarray(volume, np.float64)
    slot = slot.astype(np.int64)
    n = strikes.shape[0]
    net = _by_strike(slot, n, np.ascontiguousarray(gex, np.float64))
    traded_calls = _by_strike(slot, n, np.ascontiguousarray(np.where(calls, traded, 0.0)))
    traded_puts = _by_strike(slot, n, np.ascontiguousarray(np.where(calls, 0.0, traded)))
    call_oi = np.bincount(slot, weights=np.where(calls, oi, 0.0), minlength=n)  # fixed for the session
    put_oi = np.bincount(slot, weights=np.where(calls, 0.0, oi), minlength=n)
    seconds = np.asarray(seconds_ns, np.int64)
    spots = np.asarray(spots, np.float64)
    skews = _skews(seconds, spots, chain.expiration_ns.astype(np.int64), chain.strike.astype(np.float64), calls,
                   np.ascontiguousarray(iv, np.float64), np.asarray(expiries, np.int64))
    return [GexProfile(ts_second=second, spot=spot, zero_gamma=float(zero), skew=float(skews[j]), strikes=strikes,
                       net_gex=net[j], call_oi=call_oi, put_oi=put_oi, call_volume=traded_calls[j],
                       put_volume=traded_puts[j])
            for j, (second, spot, zero) in enumerate(zip(seconds.tolist(), spots.tolist(),
                                                         np.asarray(zero_gamma, np.float64).tolist(), strict=True))]


@njit(cache=True, nogil=True)
def _by_strike(slot: np.ndarray, strikes: int, values: np.ndarray) -> np.ndarray:
    """Per second (row), ``values`` summed per strike in option order (as ``np.bincount`` sums)."""
    out = np.zeros((values.shape[0], strikes))
    for j in range(values.shape[0]):
        for i in range(values.shape[1]):
            out[j, slot[i]] += values[j, i]
    return out


def skew(second_ns: int, spot: float, expiration_ns: np.ndarray, strike: np.ndarray, is_call: np.ndarray,
         iv: np.ndarray, expiries: np.ndarray | None = None) -> float:
    """σ(put, K ≈ S(1 − m)) − σ(call, K ≈ S(1 + m)) on the nearest expiry at least ``SKEW_MIN_YEARS``
    away where both are priced; positive when downside protection is dearer (the usual index smile)."""
    listed = np.unique(expiration_ns) if expiries is None else expiries
    return float(_skews(np.array([second_ns], np.int64), np.array([spot], np.float64),
                        np.asarray(expiration_ns, np.int64), np.asarray(strike, np.float64),
                        np.asarray(is_call, np.bool_), np.asarray(iv, np.float64)[None, :],
                        np.asarray(listed, np.int64))[0])


@njit(cache=True, nogil=True)
def _skews(seconds: np.ndarray, spots: np.ndarray, expiration: np.ndarray, strike: np.ndarray, is_call: np.ndarray,
           iv: np.ndarray, expiries: np.ndarray) -> np.ndarray:
    """``skew`` per second: the strikes nearest the targets are the first of the closest (``argmin``)."""
    out = np.full(seconds.shape[0], math.nan)
    for j in range(seconds.shape[0]):
        low, high = spots[j] * (1 - SKEW_MONEYNESS), spots[j] * (1 + SKEW_MONEYNESS)
        for expiry in expiries:
            if (expiry - seconds[j]) / YEAR_NS < SKEW_MIN_YEARS:
                continue
            put = call = -1
            put_d = call_d = math.inf
            for i in range(expiration.shape[0]):
                if expiration[i] != expiry or not math.isfinite(iv[j, i]):
                    continue
                if is_call[i]:
                    d = abs(strike[i] - high)
                    if d < call_d:
                        call, call_d = i, d
                else:
                    d = abs(strike[i] - low)
                    if d < put_d:
                        put, put_d = i, d
            if put >= 0 and call >= 0:
                out[j] = iv[j, put] - iv[j, call]
                break
    return out
