"""Numba kernel of the wall and vacuum surfaces: book rows in, preallocated columns out.

Per row ``i`` (one second of one contract's book):

- **spot**: ``m = rint(mid_px * 1e9)`` (int nanodollars), ``spot = floor(m / tick) * tick`` (floor
  division, so rounding is *down* for any sign). A row has a surface only if ``book_valid`` and
  ``mid_px`` is finite; otherwise its spot is ``NO_SPOT`` and all its columns are NaN.
- **depth** at column ``j`` (offset ``o = j - half_width``): the summed size of the row's non-empty
  levels (``px != EMPTY_PX`` and ``sz > 0``) of both sides at ``floor((px - spot) / tick) == o``.
  Levels beyond ``+-half_width`` are dropped. Offsets with no level read 0.
- **change** = ``depth[i] - depth[i-1]`` column by column (same *offset*); 0 when row ``i-1``
  had no surface (the first row, or after an invalid row).
- **depletion** (vacuum): for every non-empty level of row ``i-1`` at price ``p`` with size ``s``
  on side ``S``: ``max(0, s - size of row i's side-S levels at p)``, added at row ``i``'s offset
  of ``p``. Side by side: a bid level that became an ask (spot moved through it) counts as fully
  depleted on the bid side. A price is skipped when row ``i`` cannot see it: its side ``S`` has
  all ``depth`` levels filled and ``p`` is beyond the last one (it may only have scrolled out of
  the top-N window). Liquidity that merely moved to a new offset because spot moved is never
  depletion: the comparison is by absolute price. 0 when row ``i-1`` had no surface.

Levels come best first (bids by falling, asks by rising price, empty slots last), as the book
writes them, so a price's size on the next row is found by merging the two rows' lists. The
flow's rows list the full book near spot (``near_*``, every level within reach); rows with the
visible top N only give the surfaces of what those show.

State carried between calls (owned by ``operators.surfaces.logic.SurfaceBuilder``): ``prev_ok``
int64[1] (1 if the last row had a surface), ``prev_depth`` float32[W], and the last row's levels
``prev_bid_px``/``prev_bid_sz``/``prev_ask_px``/``prev_ask_sz`` [depth].
"""

from __future__ import annotations

import numpy as np
from numba import njit

EMPTY_PX = np.iinfo(np.int64).max
NO_SPOT = np.iinfo(np.int64).min


@njit(cache=True, nogil=True)
def _hidden(px: np.ndarray, sz: np.ndarray, p: int, is_bid: bool) -> bool:
    """True when ``p`` lies beyond the last of a full side's levels (not visible in the top N)."""
    last = px.shape[0] - 1
    if px[last] == EMPTY_PX or sz[last] == 0:
        return False
    return p < px[last] if is_bid else p > px[last]


@njit(cache=True, nogil=True)
def _deplete(prev_px: np.ndarray, prev_sz: np.ndarray, px: np.ndarray, sz: np.ndarray, is_bid: bool, spot: np.int64,
             tick: int, half_width: int, out: np.ndarray) -> None:
    """Add one side's pulled size, price by price, to ``out`` (a row by offset from ``spot``).
    Both rows list their levels best first: one merge pass."""
    d = px.shape[0]
    q = 0
    for k in range(prev_px.shape[0]):
        p = prev_px[k]
        if p == EMPTY_PX or prev_sz[k] == 0 or _hidden(px, sz, p, is_bid):
            continue
        while q < d and px[q] != EMPTY_PX and (px[q] > p if is_bid else px[q] < p):
            q += 1
        now = sz[q] if q < d and px[q] == p else 0
        gone = prev_sz[k] - np.float64(now)
        off = (p - spot) // tick
        if gone > 0 and -half_width <= off <= half_width:
            out[off + half_width] += gone


@njit(cache=True, nogil=True)
def surface_rows(
    valid: np.ndarray,
    mid: np.ndarray,
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    ask_px: np.ndarray,
    ask_sz: np.ndarray,
    tick: int,
    half_width: int,
    prev_ok: np.ndarray,
    prev_depth: np.ndarray,
    prev_bid_px: np.ndarray,
    prev_bid_sz: np.ndarray,
    prev_ask_px: np.ndarray,
    prev_ask_sz: np.ndarray,
    o_spot: np.ndarray,
    o_depth: np.ndarray,
    o_change: np.ndarray,
    o_vac: np.ndarray,
) -> int:
    """Fill ``o_*[i]`` for every row; update the carried state to the last row. Returns the row count."""
    n = mid.shape[0]
    w = 2 * half_width + 1
    d = bid_px.shape[1]
    for i in range(n):
        ok = valid[i] and np.isfinite(mid[i])
        if not ok:
            o_spot[i] = NO_SPOT
            for j in range(w):
                o_depth[i, j] = np.nan
                o_change[i, j] = np.nan
                o_vac[i, j] = np.nan
            prev_ok[0] = 0
            continue
        m = np.int64(np.rint(mid[i] * 1e9))
        spot = (m // tick) * tick
        o_spot[i] = spot
        for j in range(w):
            o_depth[i, j] = 0.0
            o_vac[i, j] = 0.0
        for k in range(d):
            p = bid_px[i, k]
            if p != EMPTY_PX and bid_sz[i, k] > 0:
                off = (p - spot) // tick
                if -half_width <= off <= half_width:
                    o_depth[i, off + half_width] += bid_sz[i, k]
            p = ask_px[i, k]
            if p != EMPTY_PX and ask_sz[i, k] > 0:
                off = (p - spot) // tick
                if -half_width <= off <= half_width:
                    o_depth[i, off + half_width] += ask_sz[i, k]
        had = prev_ok[0] == 1
        for j in range(w):
            o_change[i, j] = o_depth[i, j] - prev_depth[j] if had else 0.0
        if had:
            _deplete(prev_bid_px, prev_bid_sz, bid_px[i], bid_sz[i], True, spot, tick, half_width, o_vac[i])
            _deplete(prev_ask_px, prev_ask_sz, ask_px[i], ask_sz[i], False, spot, tick, half_width, o_vac[i])
        prev_ok[0] = 1
        for j in range(w):
            prev_depth[j] = o_depth[i, j]
        for k in range(d):
            prev_bid_px[k] = bid_px[i, k]
            prev_bid_sz[k] = bid_sz[i, k]
            prev_ask_px[k] = ask_px[i, k]
            prev_ask_sz[k] = ask_sz[i, k]
    return n
