"""Numba kernel folding 1-second book rows (``operators.book.second_dtype``) into bars.

``fold_bars`` walks the rows once. A bar with close instant ``T`` (a multiple of ``bar_ns``)
holds the rows with ``ts_recv`` in ``(T - bar_ns, T]``; it is finished when a row of a later bar
arrives (or at the end when ``final``). A bar is computed from its own rows only (at most
``bar_ns / 1e9`` of them), so the caller carries the open bar's rows and re-feeds them; the only
state that spans bars is the exponential average of near depth (``ema``), which the kernel also
saves as it was before the open bar's first row.

Features are written to ``feat[bar, k]`` in ``KERNEL_FEATURES`` order (defined here, next to the
code, so that numba's cache follows it); the caller maps them to the registry's columns by name.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_UNDEF = np.iinfo(np.int64).max
_NS = 1_000_000_000
LEVELS = 10
NEAR_TICKS = 4
NEAR_EMA_S = 300.0

# ema[0:3] = (bid, ask, seeded) now; ema[3:6] = the same before the open bar's first row.
# ema_ts[0] = ts of the last update now; ema_ts[1] = the same before the open bar.
EMA_WORDS = 6

KERNEL_FEATURES: tuple[str, ...] = (
    tuple(f"ladder_bid_sz_{k:02d}" for k in range(1, LEVELS + 1))
    + tuple(f"ladder_ask_sz_{k:02d}" for k in range(1, LEVELS + 1))
    + ("ladder_bid_depth_05", "ladder_ask_depth_05", "ladder_bid_depth_10", "ladder_ask_depth_10",
       "ladder_spread_ticks", "ladder_bid_span_ticks", "ladder_ask_span_ticks",
       "flow_aggressor_imbalance", "flow_net_aggressor_volume", "flow_ofi", "flow_ofi_norm",
       "flow_trade_count", "flow_avg_trade_size", "flow_add_bid_size", "flow_add_ask_size",
       "flow_cancel_bid_size", "flow_cancel_ask_size", "flow_event_count",
       "shape_book_skew", "shape_top_imbalance", "shape_microprice_offset_ticks",
       "shape_weighted_mid_offset_ticks", "shape_bid_top_share", "shape_ask_top_share",
       "shape_bid_hhi", "shape_ask_hhi",
       "wall_bid_size", "wall_bid_ratio", "wall_bid_distance_ticks",
       "wall_ask_size", "wall_ask_ratio", "wall_ask_distance_ticks", "wall_side",
       "vacuum_bid_near_depth", "vacuum_ask_near_depth", "vacuum_bid_near_depth_ratio",
       "vacuum_ask_near_depth_ratio", "vacuum_bid_pulled", "vacuum_ask_pulled",
       "vacuum_mid_velocity")
)


@njit(cache=True, nogil=True)
def _ratio(num, den):
    return num / den if den != 0 else np.nan


@njit(cache=True, nogil=True)
def _near(bpx, bsz, apx, asz, j, tick):
    """Resting size within NEAR_TICKS of the mid per side at row ``j``; ok=False without a mid."""
    bb = bpx[j, 0]
    ba = apx[j, 0]
    if bb == _UNDEF or ba == _UNDEF:
        return 0.0, 0.0, False
    m2 = bb + ba  # 2 x mid, exact
    lim = 2 * NEAR_TICKS * tick
    nb = 0.0
    na = 0.0
    for k in range(LEVELS):
        p = bpx[j, k]
        if p != _UNDEF and m2 - 2 * p <= lim:
            nb += bsz[j, k]
        p = apx[j, k]
        if p != _UNDEF and 2 * p - m2 <= lim:
            na += asz[j, k]
    return nb, na, True


@njit(cache=True, nogil=True)
def _span(px, j, tick, sign):
    """Ticks from the best level to the deepest present one (of the first LEVELS); NaN if none."""
    if px[j, 0] == _UNDEF:
        return np.nan
    deep = 0
    for k in range(LEVELS):
        if px[j, k] != _UNDEF:
            deep = k
    return sign * (np.float64(px[j, 0]) - np.float64(px[j, deep])) / tick


@njit(cache=True, nogil=True)
def _side(px, sz, j, tick, m2, sign, scratch, f, c):
    """Wall features of one side (size, ratio, distance); returns the ratio and the next column.

    ``sign`` is +1 for the bid (distance = mid - price) and -1 for the ask.
    """
    m = 0
    best = -1.0
    w = -1
    for k in range(LEVELS):
        if px[j, k] == _UNDEF:
            break
        q = np.float64(sz[j, k])
        scratch[m] = q
        m += 1
        if q > best:
            best = q
            w = k
    if m == 0:
        f[c] = 0.0
        f[c + 1] = np.nan
        f[c + 2] = np.nan
        return np.nan, c + 3
    for a in range(1, m):  # insertion sort of at most LEVELS values
        v = scratch[a]
        b = a - 1
        while b >= 0 and scratch[b] > v:
            scratch[b + 1] = scratch[b]
            b -= 1
        scratch[b + 1] = v
    med = scratch[m // 2] if m % 2 == 1 else (scratch[m // 2 - 1] + scratch[m // 2]) * 0.5
    ratio = _ratio(best, med)
    f[c] = best
    f[c + 1] = ratio
    if m2 == _UNDEF:
        f[c + 2] = np.nan
    else:
        f[c + 2] = sign * (np.float64(m2) - 2.0 * np.float64(px[j, w])) / (2.0 * tick)
    return ratio, c + 3


@njit(cache=True, nogil=True)
def _finish(start, end, n, ts_close, iid, valid, bpx, bsz, apx, asz, mid, micro, to, th, tl, tc,
            vol, buy, sell, trades, notional, mo, mh, ml, ofi, addb, adda, canb, cana, pullb,
            pulla, events, tick, ema, o_ts, o_iid, o_n, o_valid, o_to, o_th, o_tl, o_tc, o_vol,
            o_buy, o_sell, o_trades, o_vwap, o_mo, o_mh, o_ml, o_mc, feat, scratch):
    """Write bar ``n`` from rows ``start..end`` (inclusive); state features from row ``end``."""
    j = end
    ns = end - start + 1
    o_ts[n] = ts_close
    o_iid[n] = iid[j]
    o_n[n] = ns
    allv = True
    t_o = _UNDEF
    t_h = _UNDEF
    t_l = _UNDEF
    t_c = _UNDEF
    v = 0
    bv = 0
    sv = 0
    tr = 0
    notl = 0.0
    m_o = np.nan
    m_h = np.nan
    m_l = np.nan
    ofis = 0.0
    top = 0.0
    ntop = 0
    ab = 0
    aa = 0
    cb = 0
    ca = 0
    pb = 0
    pa = 0
    ev = 0
    for r in range(start, end + 1):
        allv = allv and valid[r]
        if to[r] != _UNDEF:
            if t_o == _UNDEF:
                t_o = to[r]
                t_h = th[r]
                t_l = tl[r]
            else:
                t_h = max(t_h, th[r])
                t_l = min(t_l, tl[r])
            t_c = tc[r]
        v += vol[r]
        bv += buy[r]
        sv += sell[r]
        tr += trades[r]
        notl += notional[r]
        if not math.isnan(mo[r]):
            if math.isnan(m_o):
                m_o = mo[r]
                m_h = mh[r]
                m_l = ml[r]
            else:
                m_h = max(m_h, mh[r])
                m_l = min(m_l, ml[r])
        ofis += ofi[r]
        if bpx[r, 0] != _UNDEF and apx[r, 0] != _UNDEF:
            top += (np.float64(bsz[r, 0]) + np.float64(asz[r, 0])) * 0.5
            ntop += 1
        ab += addb[r]
        aa += adda[r]
        cb += canb[r]
        ca += cana[r]
        pb += pullb[r]
        pa += pulla[r]
        ev += events[r]
    o_valid[n] = allv
    o_to[n] = t_o
    o_th[n] = t_h
    o_tl[n] = t_l
    o_tc[n] = t_c
    o_vol[n] = v
    o_buy[n] = bv
    o_sell[n] = sv
    o_trades[n] = tr
    o_vwap[n] = notl / v if v > 0 else np.nan
    m_c = mid[j]
    o_mo[n] = m_o
    o_mh[n] = m_h
    o_ml[n] = m_l
    o_mc[n] = m_c

    f = feat[n]
    c = 0
    # ---- ladder
    bsum5 = 0.0
    asum5 = 0.0
    bsum = 0.0
    asum = 0.0
    for k in range(LEVELS):
        q = np.float64(bsz[j, k]) if bpx[j, k] != _UNDEF else 0.0
        f[c + k] = q
        bsum += q
        q = np.float64(asz[j, k]) if apx[j, k] != _UNDEF else 0.0
        f[c + LEVELS + k] = q
        asum += q
        if k == 4:
            bsum5 = bsum
            asum5 = asum
    c += 2 * LEVELS
    f[c] = bsum5
    f[c + 1] = asum5
    f[c + 2] = bsum
    f[c + 3] = asum
    c += 4
    bb = bpx[j, 0]
    ba = apx[j, 0]
    two = bb != _UNDEF and ba != _UNDEF
    ftick = np.float64(tick)
    f[c] = (np.float64(ba) - np.float64(bb)) / ftick if two else np.nan
    c += 1
    f[c] = _span(bpx, j, ftick, 1.0)
    f[c + 1] = _span(apx, j, ftick, -1.0)
    c += 2
    # ---- flow
    f[c] = _ratio(np.float64(bv) - np.float64(sv), np.float64(bv) + np.float64(sv))
    f[c + 1] = np.float64(bv) - np.float64(sv)
    f[c + 2] = ofis
    f[c + 3] = _ratio(ofis, top / ntop) if ntop > 0 else np.nan
    f[c + 4] = tr
    f[c + 5] = _ratio(np.float64(v), np.float64(tr))
    f[c + 6] = ab
    f[c + 7] = aa
    f[c + 8] = cb
    f[c + 9] = ca
    f[c + 10] = ev
    c += 11
    # ---- shape
    f[c] = _ratio(bsum - asum, bsum + asum)
    qb1 = f[0]
    qa1 = f[LEVELS]
    f[c + 1] = _ratio(qb1 - qa1, qb1 + qa1) if two else np.nan
    mid2 = np.float64(bb) + np.float64(ba)
    if two:
        f[c + 2] = (micro[j] - mid[j]) * _NS / ftick
        wb = 0.0
        wa = 0.0
        for k in range(LEVELS):
            if bpx[j, k] != _UNDEF:
                wb += np.float64(bpx[j, k]) * np.float64(bsz[j, k])
            if apx[j, k] != _UNDEF:
                wa += np.float64(apx[j, k]) * np.float64(asz[j, k])
        # (Pb A + Pa B) / (A + B) with Pb = wb / B, Pa = wa / A
        wmid = (wb / bsum * asum + wa / asum * bsum) / (asum + bsum)
        f[c + 3] = (wmid - mid2 * 0.5) / ftick
    else:
        f[c + 2] = np.nan
        f[c + 3] = np.nan
    f[c + 4] = _ratio(qb1, bsum)
    f[c + 5] = _ratio(qa1, asum)
    hb = 0.0
    ha = 0.0
    for k in range(LEVELS):
        if bsum > 0:
            hb += (f[k] / bsum) ** 2
        if asum > 0:
            ha += (f[LEVELS + k] / asum) ** 2
    f[c + 6] = hb if bsum > 0 else np.nan
    f[c + 7] = ha if asum > 0 else np.nan
    c += 8
    # ---- wall
    m2 = bb + ba if two else _UNDEF
    rb, c = _side(bpx, bsz, j, ftick, m2, 1.0, scratch, f, c)
    ra, c = _side(apx, asz, j, ftick, m2, -1.0, scratch, f, c)
    if rb > ra:
        f[c] = 1.0
    elif rb < ra:
        f[c] = -1.0
    else:
        f[c] = 0.0
    c += 1
    # ---- vacuum
    nb, na, ok = _near(bpx, bsz, apx, asz, j, tick)
    f[c] = nb if ok else np.nan
    f[c + 1] = na if ok else np.nan
    f[c + 2] = _ratio(nb, ema[0]) if ok and ema[2] > 0 else np.nan
    f[c + 3] = _ratio(na, ema[1]) if ok and ema[2] > 0 else np.nan
    f[c + 4] = pb
    f[c + 5] = pa
    f[c + 6] = (m_c - m_o) * _NS / ftick / ns
    c += 7


@njit(cache=True, nogil=True)
def fold_bars(ts, iid, valid, bpx, bsz, apx, asz, mid, micro, to, th, tl, tc, vol, buy, sell,
              trades, notional, mo, mh, ml, ofi, addb, adda, canb, cana, pullb, pulla, events,
              bar_ns, tick, final, ema, ema_ts, o_ts, o_iid, o_n, o_valid, o_to, o_th, o_tl,
              o_tc, o_vol, o_buy, o_sell, o_trades, o_vwap, o_mo, o_mh, o_ml, o_mc, feat):
    """Fold rows (increasing ``ts``) into bars. Returns ``(bars, open_start)``.

    ``open_start`` is the first row of the unfinished bar (``len(ts)`` when ``final`` or when the
    last row sits on its bar's close). ``ema``
    and ``ema_ts`` are updated in place (see ``EMA_WORDS``).
    """
    scratch = np.empty(LEVELS, np.float64)
    alpha_k = 1.0 / (NEAR_EMA_S * _NS)
    n = 0
    cur = np.int64(-1)
    start = 0
    nrows = ts.shape[0]
    for i in range(nrows):
        t = np.int64(ts[i])
        close = ((t - 1) // bar_ns + 1) * bar_ns
        if close != cur:
            if cur != -1:
                _finish(start, i - 1, n, cur, iid, valid, bpx, bsz, apx, asz, mid, micro, to, th,
                        tl, tc, vol, buy, sell, trades, notional, mo, mh, ml, ofi, addb, adda,
                        canb, cana, pullb, pulla, events, tick, ema, o_ts, o_iid, o_n, o_valid,
                        o_to, o_th, o_tl, o_tc, o_vol, o_buy, o_sell, o_trades, o_vwap, o_mo,
                        o_mh, o_ml, o_mc, feat, scratch)
                n += 1
            cur = close
            start = i
            ema[3] = ema[0]
            ema[4] = ema[1]
            ema[5] = ema[2]
            ema_ts[1] = ema_ts[0]
        nb, na, ok = _near(bpx, bsz, apx, asz, i, tick)
        if ok:
            if ema[2] == 0:
                ema[0] = nb
                ema[1] = na
                ema[2] = 1.0
            else:
                a = 1.0 - math.exp(-np.float64(t - ema_ts[0]) * alpha_k)
                ema[0] += a * (nb - ema[0])
                ema[1] += a * (na - ema[1])
            ema_ts[0] = t
    if cur != -1 and (final or np.int64(ts[nrows - 1]) == cur):
        # At the end of input the open bar goes out as it is. Otherwise a row at the close instant
        # is the bar's last possible row, so the bar is complete now, not a row later (a live
        # vector starting on the bar grid needs it without waiting a second).
        _finish(start, nrows - 1, n, cur, iid, valid, bpx, bsz, apx, asz, mid, micro, to, th, tl,
                tc, vol, buy, sell, trades, notional, mo, mh, ml, ofi, addb, adda, canb, cana,
                pullb, pulla, events, tick, ema, o_ts, o_iid, o_n, o_valid, o_to, o_th, o_tl,
                o_tc, o_vol, o_buy, o_sell, o_trades, o_vwap, o_mo, o_mh, o_ml, o_mc, feat,
                scratch)
        n += 1
        start = nrows
    return n, start
