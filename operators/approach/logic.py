"""``ApproachDetector``: streaming level-approach episodes for one (contract, session).

Feed the session's 1-second series in pieces of any size; the episodes are the same as from one
call over the whole series. ``snapshot()`` gives a frozen copy to resume from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from operators.approach import kernels as k
from operators.approach.dtypes import EPISODE_DTYPE
from operators.errors import ConfigError

_OUT_FIELDS = ("start_ts", "level_index", "level_price", "direction", "distance_ticks",
               "approach_seconds", "velocity_tps", "max_distance_ticks", "start_mid")
_MAX_OUT = 1 << 14


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproachParams:
    """When an approach to a level starts (see ``silver.level_approach`` in the SPEC)."""

    approach_ticks: int = 4
    """An episode starts when an armed level is within this many ticks of the mid (inclusive)."""
    reset_ticks: int = 12
    """A level is armed once the mid is at least this many ticks away from it (inclusive)."""
    tick: int = 0
    """The instrument's minimum price increment in 1e-9 units (its definition's, set by the flow
    per instrument; 0 in a configuration, which never fixes it)."""

    def __post_init__(self) -> None:
        if self.tick < 0:
            msg = f"approach tick must be positive (1e-9 units), got {self.tick}"
            raise ConfigError(msg)
        if self.approach_ticks <= 0:
            msg = f"approach_ticks must be positive, got {self.approach_ticks}"
            raise ConfigError(msg)
        if self.reset_ticks <= self.approach_ticks:
            msg = (f"reset_ticks ({self.reset_ticks}) must be greater than approach_ticks "
                   f"({self.approach_ticks}); raise reset_ticks")
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True)
class ApproachState:
    """Compact, immutable copy of an ``ApproachDetector`` (owned arrays)."""

    params: ApproachParams
    level_type: tuple[str, ...]
    level_price: np.ndarray  # i8[n_levels]
    known_ts: np.ndarray  # i8[n_levels]
    istate: np.ndarray  # i8[n_levels, kernels.N_I]
    fstate: np.ndarray  # f8[n_levels, kernels.N_F]
    ring_ts: np.ndarray  # i8[kernels.RING]
    ring_mid: np.ndarray  # f8[kernels.RING]
    last_ts: int  # last row fed, kernels.NO_TS before the first


def _levels(levels: Sequence[tuple[str, int, int]]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    types, prices, known = [], [], []
    for i, lv in enumerate(levels):
        level_type, price, known_ts = lv
        if not isinstance(level_type, str) or not level_type:
            msg = f"level {i}: level_type must be a non-empty string, got {level_type!r}"
            raise ValueError(msg)
        types.append(level_type)
        prices.append(int(price))
        known.append(int(known_ts))
    if len(types) > np.iinfo(np.int16).max:
        msg = f"at most {np.iinfo(np.int16).max} levels per detector, got {len(types)}"
        raise ValueError(msg)
    return tuple(types), np.array(prices, np.int64), np.array(known, np.int64)


def _check_series(ts: np.ndarray, mid: np.ndarray, last_ts: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, mid)`` as contiguous int64/float64 arrays; raises if ts does not strictly increase
    (within the piece and after ``last_ts``)."""
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    mid = np.ascontiguousarray(mid, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != mid.shape:
        msg = f"ts and mid must be 1-d arrays of one length, got {ts.shape} and {mid.shape}"
        raise ValueError(msg)
    if ts.size and (ts[0] <= last_ts or (ts.size > 1 and bool(np.any(np.diff(ts) <= 0)))):
        msg = "ts must strictly increase within a piece and across pieces"
        raise ValueError(msg)
    return ts, mid


class ApproachDetector:
    """Level-approach episodes of one (contract, session), fed in pieces.

    ``levels`` are ``(level_type, price, known_ts)``: price in 1e-9 units, ``known_ts`` the first
    instant (ns) at which the level may be used. Per level:

    - it is *armed* at a row with ts >= known_ts and |mid - price| >= reset_ticks * tick;
    - an episode starts at the first row where an armed level has |mid - price| <=
      approach_ticks * tick; the level is then disarmed until the mid is again >= reset ticks away;
    - a row with a NaN (or infinite) mid neither arms nor triggers.

    ``episode.level_index`` is the position in ``levels``; ``level_types`` maps it back.
    """

    def __init__(self, levels: Sequence[tuple[str, int, int]], params: ApproachParams | None = None,
                 *, resume: ApproachState | None = None) -> None:
        self._params = params if params is not None else ApproachParams()
        if self._params.tick <= 0:
            msg = "an approach detector counts in the instrument's ticks: set ApproachParams.tick (1e-9 units)"
            raise ConfigError(msg)
        self._types, self._price, self._known = _levels(levels)
        n = len(self._types)
        if resume is None:
            self._istate = np.zeros((n, k.N_I), np.int64)
            self._istate[:, k.I_ARM_TS] = k.NO_TS
            self._istate[:, k.I_FAR_TS] = k.NO_TS
            self._fstate = np.zeros((n, k.N_F), np.float64)
            self._ring_ts = np.full(k.RING, k.NO_TS, np.int64)
            self._ring_mid = np.full(k.RING, np.nan, np.float64)
            self._last_ts = int(k.NO_TS)
        else:
            same = (resume.params == self._params and resume.level_type == self._types
                    and np.array_equal(resume.level_price, self._price)
                    and np.array_equal(resume.known_ts, self._known))
            if not same:
                msg = "resume state was taken from a detector with other levels or params"
                raise ValueError(msg)
            self._istate = resume.istate.copy()
            self._fstate = resume.fstate.copy()
            self._ring_ts = resume.ring_ts.copy()
            self._ring_mid = resume.ring_mid.copy()
            self._last_ts = int(resume.last_ts)

    @property
    def params(self) -> ApproachParams:
        return self._params

    @property
    def level_types(self) -> tuple[str, ...]:
        """``level_type`` of each level, indexed by ``EPISODE_DTYPE.level_index``."""
        return self._types

    def feed(self, ts: np.ndarray, mid: np.ndarray) -> np.ndarray:
        """Consume the next rows (``ts`` int64 ns strictly increasing, ``mid`` float64 dollars,
        NaN = no valid book); returns the episodes that started in them (``EPISODE_DTYPE``)."""
        ts, mid = _check_series(ts, mid, self._last_ts)
        if ts.size == 0:
            return np.empty(0, EPISODE_DTYPE)
        n_lv = len(self._types)
        cap = max(1, min(ts.size * max(n_lv, 1), _MAX_OUT))
        p = self._params
        chunks: list[np.ndarray] = []
        i = 0
        while i < ts.size:
            out = np.empty(cap, EPISODE_DTYPE)
            cols = tuple(out[f] for f in _OUT_FIELDS)
            i, n = k.detect_approaches(ts, mid, i, self._price, self._known, p.tick,
                                       p.approach_ticks, p.reset_ticks, self._istate,
                                       self._fstate, self._ring_ts, self._ring_mid, *cols)
            if n:
                chunks.append(out[:n])
        self._last_ts = int(ts[-1])
        if not chunks:
            return np.empty(0, EPISODE_DTYPE)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def with_levels(self, levels: Sequence[tuple[str, int, int]]) -> ApproachDetector:
        """A detector over ``levels`` that is where a new one would be after being fed every row
        this one has seen, without those rows.

        A level this detector already has keeps its state (matched by type, price and known
        time); the ring of recent rows is shared by all levels and carries over. A new level
        must become known after the last row fed (``known_ts > last row``): the kernel skips a
        level on rows before its known time, so its state from those rows is the initial one.
        This lets a session learn levels as they become known without keeping its whole series
        to re-feed a rebuilt detector.
        """
        grown = ApproachDetector(levels, self._params)
        old: dict[tuple[str, int, int], list[int]] = {}
        for j, key in enumerate(zip(self._types, self._price.tolist(), self._known.tolist(), strict=True)):
            old.setdefault(key, []).append(j)
        for j, key in enumerate(zip(grown._types, grown._price.tolist(), grown._known.tolist(), strict=True)):
            if old.get(key):
                src = old[key].pop(0)
                grown._istate[j] = self._istate[src]
                grown._fstate[j] = self._fstate[src]
            elif key[2] <= self._last_ts:
                msg = (f"level {key[0]} is known from {key[2]}, not after the last row fed ({self._last_ts}): "
                       "its state would depend on rows this detector no longer has")
                raise ValueError(msg)
        grown._ring_ts = self._ring_ts.copy()
        grown._ring_mid = self._ring_mid.copy()
        grown._last_ts = self._last_ts
        return grown

    def snapshot(self) -> ApproachState:
        """Frozen copy to resume from: ``ApproachDetector(levels, params, resume=state)``."""
        return ApproachState(
            params=self._params,
            level_type=self._types,
            level_price=self._price.copy(),
            known_ts=self._known.copy(),
            istate=self._istate.copy(),
            fstate=self._fstate.copy(),
            ring_ts=self._ring_ts.copy(),
            ring_mid=self._ring_mid.copy(),
            last_ts=self._last_ts,
        )

    @classmethod
    def from_state(cls, state: ApproachState) -> ApproachDetector:
        """Rebuild a detector from its snapshot alone."""
        levels = list(zip(state.level_type, state.level_price.tolist(), state.known_ts.tolist(),
                          strict=True))
        return cls(levels, state.params, resume=state)


def episode_id(contract_id: str, session_date: date, level_type: str, start_ts: int) -> str:
    """Deterministic episode id: the first 16 hex digits of the sha256 of
    ``"{contract_id}|{session_date:%Y-%m-%d}|{level_type}|{start_ts}"`` (UTF-8)."""
    key = f"{contract_id}|{session_date.isoformat()}|{level_type}|{int(start_ts)}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
