"""``Labeler``: streaming first-crossing labels, emitted when each episode resolves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.errors import ConfigError
from operators.labels import kernels as k
from operators.labels.dtypes import CHOP, LABEL_DTYPE, LABEL_EPISODE_DTYPE

_NO_TS = int(np.iinfo(np.int64).min)
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelParams:
    """First-crossing label thresholds (``gold.labels`` in the SPEC)."""

    break_ticks: int = 8
    """BREAK when the mid is this many ticks through the level in the approach direction."""
    reject_ticks: int = 8
    """REJECT when the mid is this many ticks back away from the level."""
    horizon_seconds: int = 300
    """CHOP when neither happens within this many seconds after the start (inclusive)."""
    tick: int = 0
    """The instrument's minimum price increment in 1e-9 units (its definition's, set by the flow
    per instrument; 0 in a configuration, which never fixes it)."""

    def __post_init__(self) -> None:
        for name in ("break_ticks", "reject_ticks", "horizon_seconds"):
            value = getattr(self, name)
            if value <= 0:
                msg = f"label {name} must be a positive integer, got {value}"
                raise ConfigError(msg)
        if self.tick < 0:
            msg = f"label tick must be positive (1e-9 units), got {self.tick}"
            raise ConfigError(msg)

    @property
    def horizon_ns(self) -> int:
        return self.horizon_seconds * _NS


@dataclass(frozen=True, slots=True)
class LabelState:
    """Compact, immutable copy of a ``Labeler``: its open episodes (add order) and running stats."""

    params: LabelParams
    episodes: np.ndarray  # LABEL_EPISODE_DTYPE[n_open]
    start_px: np.ndarray  # i8[n_open], start mid in 1e-9 units
    mfe: np.ndarray  # f8[n_open]
    mae: np.ndarray  # f8[n_open]
    nsamp: np.ndarray  # i8[n_open]
    last_ts: int  # last row fed, int64 min before the first


def _check_series(ts: np.ndarray, mid: np.ndarray, last_ts: int) -> tuple[np.ndarray, np.ndarray]:
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    mid = np.ascontiguousarray(mid, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != mid.shape:
        msg = f"ts and mid must be 1-d arrays of one length, got {ts.shape} and {mid.shape}"
        raise ValueError(msg)
    if ts.size and (ts[0] <= last_ts or (ts.size > 1 and bool(np.any(np.diff(ts) <= 0)))):
        msg = "ts must strictly increase within a piece and across pieces"
        raise ValueError(msg)
    return ts, mid


class Labeler:
    """First-crossing labels of one (contract, session)'s episodes, fed the 1-second mid series.

    For an episode (start_ts, level L, direction d) only rows with start_ts < ts <= start_ts +
    horizon count, and rows with a NaN mid are skipped: BREAK at the first row where
    d * (mid - L) >= break_ticks * tick, REJECT at the first where d * (L - mid) >= reject_ticks *
    tick, CHOP (resolved at start_ts + horizon) if neither; ``close()`` ends the input and gives
    the still-open episodes as CHOP with ``truncated=True``.

    Add an episode before feeding the rows after its start: ``add`` refuses an episode whose
    ``start_ts`` is before the last row already fed. The usual order per piece is
    ``detector.feed(piece)`` → ``labeler.add(...)`` → ``labeler.feed(piece)`` (rows at or before
    an episode's start are ignored for it).

    Rows come out of ``feed`` ordered by ``resolved_ts``, then by add order.
    """

    def __init__(self, params: LabelParams | None = None, *, resume: LabelState | None = None) -> None:
        self._params = params if params is not None else LabelParams()
        if self._params.tick <= 0:
            msg = "a labeler counts in the instrument's ticks: set LabelParams.tick (1e-9 units)"
            raise ConfigError(msg)
        if resume is None:
            self._ep = np.empty(0, LABEL_EPISODE_DTYPE)
            self._px = np.empty(0, np.int64)
            self._mfe = np.empty(0, np.float64)
            self._mae = np.empty(0, np.float64)
            self._nsamp = np.empty(0, np.int64)
            self._last_ts = _NO_TS
        else:
            if resume.params != self._params:
                msg = "resume state was taken from a labeler with other params"
                raise ValueError(msg)
            self._ep = resume.episodes.copy()
            self._px = resume.start_px.copy()
            self._mfe = resume.mfe.copy()
            self._mae = resume.mae.copy()
            self._nsamp = resume.nsamp.copy()
            self._last_ts = int(resume.last_ts)

    @property
    def params(self) -> LabelParams:
        return self._params

    @property
    def open_count(self) -> int:
        return int(self._ep.size)

    def add(self, episodes: np.ndarray) -> None:
        """Open episodes (``LABEL_EPISODE_DTYPE``; see ``from_approach`` for detector rows)."""
        episodes = np.asarray(episodes)
        if episodes.dtype != LABEL_EPISODE_DTYPE:
            msg = f"episodes must have LABEL_EPISODE_DTYPE, got {episodes.dtype}"
            raise TypeError(msg)
        if episodes.size == 0:
            return
        if not np.all(np.isfinite(episodes["start_mid"])):
            msg = "episode start_mid must be finite"
            raise ValueError(msg)
        if not np.all(np.abs(episodes["direction"].astype(np.int64)) == 1):
            msg = "episode direction must be +1 (UP) or -1 (DOWN)"
            raise ValueError(msg)
        if int(episodes["start_ts"].min()) < self._last_ts:
            msg = (f"episode start_ts {int(episodes['start_ts'].min())} is before the last row "
                   f"already fed ({self._last_ts}); add episodes before feeding past their start")
            raise ValueError(msg)
        px = np.rint(episodes["start_mid"] * 1e9).astype(np.int64)
        self._ep = np.concatenate([self._ep, episodes])
        self._px = np.concatenate([self._px, px])
        self._mfe = np.concatenate([self._mfe, np.zeros(episodes.size)])
        self._mae = np.concatenate([self._mae, np.zeros(episodes.size)])
        self._nsamp = np.concatenate([self._nsamp, np.zeros(episodes.size, np.int64)])

    def feed(self, ts: np.ndarray, mid: np.ndarray) -> np.ndarray:
        """Consume the next rows; returns ``LABEL_DTYPE`` rows of the episodes resolved in them."""
        ts, mid = _check_series(ts, mid, self._last_ts)
        if ts.size == 0:
            return np.empty(0, LABEL_DTYPE)
        self._last_ts = int(ts[-1])
        if self._ep.size == 0:
            return np.empty(0, LABEL_DTYPE)
        p = self._params
        m = self._ep.size
        o_idx = np.empty(m, np.int64)
        o_outcome = np.empty(m, np.int8)
        o_resolved = np.empty(m, np.int64)
        start_ts = np.ascontiguousarray(self._ep["start_ts"])
        n = k.label_piece(ts, mid, start_ts, np.ascontiguousarray(self._ep["level_price"]),
                          np.ascontiguousarray(self._ep["direction"]), self._px, self._mfe,
                          self._mae, self._nsamp, p.tick, p.break_ticks, p.reject_ticks,
                          p.horizon_ns, o_idx, o_outcome, o_resolved)
        if n == 0:
            return np.empty(0, LABEL_DTYPE)
        order = np.argsort(o_resolved[:n], kind="stable")
        idx = o_idx[:n][order]
        rows = self._rows(idx, o_outcome[:n][order], o_resolved[:n][order], truncated=False)
        keep = np.ones(m, bool)
        keep[idx] = False
        self._drop(keep)
        return rows

    def close(self) -> np.ndarray:
        """End of input: every open episode as CHOP, ``truncated=True``, resolved at the last row
        fed (or its start if later). Ordered by ``resolved_ts``, then add order."""
        m = self._ep.size
        if m == 0:
            return np.empty(0, LABEL_DTYPE)
        resolved = np.maximum(self._ep["start_ts"], self._last_ts)
        order = np.argsort(resolved, kind="stable")
        rows = self._rows(order, np.full(m, CHOP, np.int8), resolved[order], truncated=True)
        self._drop(np.zeros(m, bool))
        return rows

    def snapshot(self) -> LabelState:
        """Frozen copy to resume from: ``Labeler(params, resume=state)``."""
        return LabelState(params=self._params, episodes=self._ep.copy(), start_px=self._px.copy(),
                          mfe=self._mfe.copy(), mae=self._mae.copy(), nsamp=self._nsamp.copy(),
                          last_ts=self._last_ts)

    def _rows(self, idx: np.ndarray, outcome: np.ndarray, resolved: np.ndarray, *,
              truncated: bool) -> np.ndarray:
        ep = self._ep[idx]
        has = self._nsamp[idx] > 0
        out = np.empty(idx.size, LABEL_DTYPE)
        for f in ("key", "start_ts", "level_price", "direction"):
            out[f] = ep[f]
        out["outcome"] = outcome
        out["resolved_ts"] = resolved
        out["time_to_resolution_ns"] = resolved - ep["start_ts"]
        out["mfe_ticks"] = np.where(has, self._mfe[idx], 0.0)
        out["mae_ticks"] = np.where(has, self._mae[idx], 0.0)
        out["truncated"] = truncated
        return out

    def _drop(self, keep: np.ndarray) -> None:
        self._ep = self._ep[keep]
        self._px = self._px[keep]
        self._mfe = self._mfe[keep]
        self._mae = self._mae[keep]
        self._nsamp = self._nsamp[keep]


def from_approach(episodes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``LABEL_EPISODE_DTYPE`` rows from ``operators.approach.EPISODE_DTYPE`` rows and one
    caller-chosen int64 key per episode."""
    keys = np.asarray(keys, dtype=np.int64)
    if keys.shape != episodes.shape:
        msg = f"one key per episode: {keys.shape} keys for {episodes.shape} episodes"
        raise ValueError(msg)
    out = np.empty(episodes.size, LABEL_EPISODE_DTYPE)
    out["key"] = keys
    for f in ("start_ts", "level_price", "direction", "start_mid"):
        out[f] = episodes[f]
    return out


def label_session(ts: np.ndarray, mid: np.ndarray, episodes: np.ndarray,
                  params: LabelParams | None = None) -> np.ndarray:
    """One-shot streaming labels of a whole session: add all, feed all, close."""
    lab = Labeler(params)
    lab.add(episodes)
    return np.concatenate([lab.feed(ts, mid), lab.close()])
