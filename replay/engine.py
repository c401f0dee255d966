"""The numba event generator: a price process driving order flow into the simulator's book.

One call of ``run_chunk`` generates whole events (groups of MBO records sharing ``ts_recv``) until
the output buffer is nearly full or the session ends, updating the book and process state in place,
so a day of any size streams through a fixed amount of memory. Every event is written together with
the true top-10 book after it (the MBP-10 truth).

Records go into a plain int64 table (columns ``C_*``, prices in ticks, -1 meaning "no price");
``dbn_writer`` turns it into DBN bytes.
"""

from __future__ import annotations

import math

from numba import njit

from replay import book as bk
from replay import market as mk
from replay import signal as sgl
from replay.modulation import (
    OBS_ASK_CT0,
    OBS_ASK_SZ0,
    OBS_BID_CT0,
    OBS_BID_SZ0,
    OBS_DAY_OPEN,
    OBS_FAIR,
    OBS_FLOW,
    OBS_MID,
    OBS_SIG_ACTIVE,
    OBS_SIG_HAS_MAGNET,
    OBS_SIG_MAGNET,
    OBS_SIG_TARGET,
    OBS_SPREAD,
    OBS_T_S,
    modulate,
)
from replay.rng import exponential, normal, randint, uniform

C_INSTR, C_TS_EVENT, C_TS_RECV, C_DELTA, C_OID, C_PRICE, C_SIZE, C_FLAGS, C_ACTION, C_SIDE, C_SEQ = (
    range(11)
)
N_COLS = 11
MAX_FILLS = 256
"""An aggressive order stops after filling this many resting orders (the rest is dropped, IOC)."""
MAX_EVENT_RECORDS = 3 * MAX_FILLS + 16

# int state mi[...]
M_T, M_SEQ, M_NEXT_OID, M_TS_EVENT, M_DELTA, M_DONE, M_LAST_SLOT, M_LAST_OID = 0, 1, 2, 3, 4, 5, 6, 8
N_MI = 10
# float state fs[...]
F_ANCHOR, F_DEV, F_TREND, F_BASIS, F_FLOW, F_SCALE, F_DAY_OPEN = 0, 1, 2, 3, 4, 6, 7
N_FS = 8
# session schedule sched[...] (ns)
S_START, S_RTH, S_END = 0, 1, 2
# per-instrument trade statistics stats[i, ...]
ST_HIGH, ST_LOW, ST_VOLUME, ST_LAST, ST_OPEN, ST_TRADES = 0, 1, 2, 3, 4, 5

A_ADD, A_CANCEL, A_MODIFY, A_CLEAR, A_TRADE, A_FILL = 65, 67, 77, 82, 84, 70
SIDE_CHAR = (66, 65)  # bid 'B', ask 'A'
SIDE_NONE = 78
F_LAST, F_SNAPSHOT, F_BAD_TS_RECV = 128, 32, 8


@njit(cache=True)
def _emit(rec, n, mi, i, action, side, tick, size, oid, flags):
    rec[n, C_INSTR] = i
    rec[n, C_TS_EVENT] = mi[M_TS_EVENT]
    rec[n, C_TS_RECV] = mi[M_T]
    rec[n, C_DELTA] = mi[M_DELTA]
    rec[n, C_OID] = oid
    rec[n, C_PRICE] = tick
    rec[n, C_SIZE] = size
    rec[n, C_FLAGS] = flags
    rec[n, C_ACTION] = action
    rec[n, C_SIDE] = side
    mi[M_SEQ] += 1
    rec[n, C_SEQ] = mi[M_SEQ]
    return n + 1


@njit(cache=True)
def _finish(b, rec, n, i, tru_idx, tru_lv, nt):
    """Mark the event's last record F_LAST and record the true book after it."""
    rec[n - 1, C_FLAGS] |= F_LAST
    tru_idx[nt] = n - 1
    bk.top_levels(b[0], b[4], i, tru_lv, nt)
    return nt + 1


@njit(cache=True)
def draw_size(rng, p):
    """Heavy-tailed lot size: lognormal body (mostly 1-20) with a Pareto tail (50-500)."""
    if uniform(rng) < p[mk.P_BIG_PROB]:
        s = p[mk.P_BIG_XM] * (1.0 - uniform(rng)) ** (-1.0 / p[mk.P_BIG_ALPHA])
    else:
        s = 1.0 + math.exp(p[mk.P_SIZE_MU] + p[mk.P_SIZE_SIGMA] * normal(rng))
    return int(min(s, p[mk.P_MAX_SIZE]))


@njit(cache=True)
def fair_of(fs, i, p):
    f = fs[F_ANCHOR] + fs[F_DEV]
    if i == 1:
        f += p[mk.P_SPREAD_TICKS] + fs[F_BASIS]
    return f


@njit(cache=True)
def _add_tick(b, rng, p, fs, i, s):
    """Where a passive order goes: mostly near the fair price, some spread over deep levels."""
    top = b[4]
    f = fair_of(fs, i, p)
    bid_top = int(math.floor(f - 0.5))
    depth = p[mk.P_DEPTH0] if i == 0 else p[mk.P_DEPTH1]
    if uniform(rng) < p[mk.P_NEAR_ADD]:
        d = int(exponential(rng) * 1.2)
    else:
        d = int(uniform(rng) * depth)
    if s == bk.BID:
        t = min(bid_top - d, top[i, bk.T_BEST_ASK] - 1)
    else:
        t = max(bid_top + 1 + d, top[i, bk.T_BEST_BID] + 1)
    return min(max(t, 1), bk.N_TICKS - 2)


@njit(cache=True)
def _new_oid(mi):
    mi[M_NEXT_OID] += 1 + (mi[M_NEXT_OID] * 7919) % 13
    return mi[M_NEXT_OID]


@njit(cache=True)
def ev_add(b, rng, p, mi, fs, i, rec, n, k):
    """``k`` new resting orders in one event."""
    for _ in range(k):
        s = bk.BID if uniform(rng) < 0.5 else bk.ASK
        t = _add_tick(b, rng, p, fs, i, s)
        size = draw_size(rng, p)
        oid = _new_oid(mi)
        slot = bk.add_order(b[0], b[1], b[2], b[3], b[4], b[5], i, s, t, size, oid)
        mi[M_LAST_SLOT + i] = slot
        mi[M_LAST_OID + i] = oid
        n = _emit(rec, n, mi, i, A_ADD, SIDE_CHAR[s], t, size, oid, 0)
    return n


@njit(cache=True)
def ev_add_at(b, rng, p, mi, i, rec, n, s, t):
    """One new resting order at a given side and tick (the planted signal's wall)."""
    size = draw_size(rng, p)
    oid = _new_oid(mi)
    slot = bk.add_order(b[0], b[1], b[2], b[3], b[4], b[5], i, s, t, size, oid)
    mi[M_LAST_SLOT + i] = slot
    mi[M_LAST_OID + i] = oid
    return _emit(rec, n, mi, i, A_ADD, SIDE_CHAR[s], t, size, oid, 0)


@njit(cache=True)
def ev_cancel_slot(b, mi, i, rec, n, slot):
    """Cancel one given resting order in full (the planted signal thinning a wall)."""
    ords = b[1]
    s, t, size, oid = ords[bk.O_SIDE, slot], ords[bk.O_TICK, slot], ords[bk.O_SIZE, slot], ords[bk.O_ID, slot]
    bk.remove_order(b[0], ords, b[2], b[3], b[4], b[5], slot)
    return _emit(rec, n, mi, i, A_CANCEL, SIDE_CHAR[s], t, size, oid, 0)


@njit(cache=True)
def _distance_to_top(top, ords, slot):
    i, s, t = ords[bk.O_INSTR, slot], ords[bk.O_SIDE, slot], ords[bk.O_TICK, slot]
    return top[i, bk.T_BEST_BID] - t if s == bk.BID else t - top[i, bk.T_BEST_ASK]


@njit(cache=True)
def _pick_order(b, rng, p, mi, i, tries):
    """A resting order to cancel or modify: often the latest add (short lifetimes), else near the top."""
    ords, live, top = b[1], b[2], b[4]
    nl = top[i, bk.T_N_LIVE]
    if nl == 0:
        return bk.NIL
    last = mi[M_LAST_SLOT + i]
    if last != bk.NIL and uniform(rng) < p[mk.P_FLICKER]:
        if ords[bk.O_ID, last] == mi[M_LAST_OID + i]:
            mi[M_LAST_SLOT + i] = bk.NIL
            return last
    best = live[i, randint(rng, 0, nl - 1)]
    if uniform(rng) < p[mk.P_NEAR_TOP_CANCEL]:
        for _ in range(tries - 1):
            c = live[i, randint(rng, 0, nl - 1)]
            if _distance_to_top(top, ords, c) < _distance_to_top(top, ords, best):
                best = c
    return best


@njit(cache=True)
def ev_cancel(b, rng, p, mi, i, rec, n, k):
    """``k`` cancels, some partial (the order stays with the rest)."""
    ords = b[1]
    for _ in range(k):
        slot = _pick_order(b, rng, p, mi, i, 3)
        if slot == bk.NIL:
            break
        s, t, size, oid = ords[bk.O_SIDE, slot], ords[bk.O_TICK, slot], ords[bk.O_SIZE, slot], ords[bk.O_ID, slot]
        if size > 1 and uniform(rng) < p[mk.P_PARTIAL_CANCEL]:
            q = randint(rng, 1, size - 1)
            bk.reduce_size(b[0], ords, b[4], slot, size - q)
        else:
            q = size
            bk.remove_order(b[0], ords, b[2], b[3], b[4], b[5], slot)
        n = _emit(rec, n, mi, i, A_CANCEL, SIDE_CHAR[s], t, q, oid, 0)
    return n


@njit(cache=True)
def ev_modify(b, rng, p, mi, i, rec, n):
    """One modify: size down (keeps priority), price change or size up (back of the queue)."""
    ords, top = b[1], b[4]
    slot = _pick_order(b, rng, p, mi, i, 2)
    if slot == bk.NIL:
        return n
    s, t, size, oid = ords[bk.O_SIDE, slot], ords[bk.O_TICK, slot], ords[bk.O_SIZE, slot], ords[bk.O_ID, slot]
    u = uniform(rng)
    if u < 0.5 and size > 1:
        new_size = randint(rng, 1, size - 1)
        bk.reduce_size(b[0], ords, top, slot, new_size)
        return _emit(rec, n, mi, i, A_MODIFY, SIDE_CHAR[s], t, new_size, oid, 0)
    new_tick = t
    new_size = size
    if u < 0.8:
        new_tick = t + randint(rng, -2, 2)
        if s == bk.BID:
            new_tick = min(new_tick, top[i, bk.T_BEST_ASK] - 1)
        else:
            new_tick = max(new_tick, top[i, bk.T_BEST_BID] + 1)
        new_tick = min(max(new_tick, 1), bk.N_TICKS - 2)
    if new_tick == t:
        new_size = size + randint(rng, 1, max(1, size))
    bk.requeue(b[0], ords, top, slot, new_tick, new_size)
    return _emit(rec, n, mi, i, A_MODIFY, SIDE_CHAR[s], new_tick, new_size, oid, 0)


@njit(cache=True)
def _record_trade(stats, i, t, q):
    if stats[i, ST_TRADES] == 0:
        stats[i, ST_OPEN] = t
        stats[i, ST_HIGH] = t
        stats[i, ST_LOW] = t
    stats[i, ST_HIGH] = max(stats[i, ST_HIGH], t)
    stats[i, ST_LOW] = min(stats[i, ST_LOW], t)
    stats[i, ST_VOLUME] += q
    stats[i, ST_LAST] = t
    stats[i, ST_TRADES] += 1


@njit(cache=True)
def ev_aggress(b, rng, p, mi, fs, stats, i, rec, n, scratch, sg, sched, force_side):
    """A marketable order: T per price level, F per resting order filled, then C/M per fill.

    A sweep takes several levels. A remainder either rests at the limit price (which is then
    uncrossed, every opposite order up to it having been taken) or is dropped (IOC).
    """
    lv, ords, top = b[0], b[1], b[4]
    f = fair_of(fs, i, p)
    mid = 0.5 * (top[i, bk.T_BEST_BID] + top[i, bk.T_BEST_ASK])
    if force_side >= 0:
        s = force_side  # the planted signal's flow regime
    else:
        p_buy = 1.0 / (1.0 + math.exp(-p[mk.P_AGGR_SKEW] * (f - mid)))
        s = bk.BID if uniform(rng) < p_buy else bk.ASK  # aggressor side
    o = 1 - s
    step = 1 if s == bk.BID else -1
    best_opp = top[i, o]
    levels = 1
    if uniform(rng) < p[mk.P_SWEEP_PROB]:
        levels = randint(rng, 2, 5)
    limit = best_opp + step * (levels - 1)
    if levels > 1:
        avail = 0
        t = best_opp
        for _ in range(levels):
            avail += lv[bk.L_SIZE, i, o, t]
            t += step
        qty = max(1, int(avail * (0.8 + 0.4 * uniform(rng))))
    else:
        qty = draw_size(rng, p)
    fill_slot, fill_qty, lvl_tick, lvl_end = scratch[0], scratch[1], scratch[2], scratch[3]
    q = qty
    nf = 0
    nl = 0
    t = best_opp
    while q > 0 and nf < MAX_FILLS and (t - limit) * step <= 0:
        slot = lv[bk.L_HEAD, i, o, t]
        if slot != bk.NIL:
            while slot != bk.NIL and q > 0 and nf < MAX_FILLS:
                fq = min(q, ords[bk.O_SIZE, slot])
                fill_slot[nf] = slot
                fill_qty[nf] = fq
                nf += 1
                q -= fq
                slot = ords[bk.O_NEXT, slot]
            lvl_tick[nl] = t
            lvl_end[nl] = nf
            nl += 1
        t += step
    start = 0
    for L in range(nl):
        tq = 0
        for j in range(start, lvl_end[L]):
            tq += fill_qty[j]
        n = _emit(rec, n, mi, i, A_TRADE, SIDE_CHAR[s], lvl_tick[L], tq, 0, 0)
        _record_trade(stats, i, lvl_tick[L], tq)
        if i == 0:
            sgl.on_trade(sg, p, (mi[M_T] - sched[S_START]) * 1e-9, (sched[S_RTH] - sched[S_START]) * 1e-9,
                         lvl_tick[L], tq, 1 - 2 * s)
        for j in range(start, lvl_end[L]):
            sl = fill_slot[j]
            n = _emit(rec, n, mi, i, A_FILL, SIDE_CHAR[o], lvl_tick[L], fill_qty[j], ords[bk.O_ID, sl], 0)
        start = lvl_end[L]
    for j in range(nf):
        sl = fill_slot[j]
        size, oid, tk = ords[bk.O_SIZE, sl], ords[bk.O_ID, sl], ords[bk.O_TICK, sl]
        if fill_qty[j] == size:
            bk.remove_order(lv, ords, b[2], b[3], top, b[5], sl)
            n = _emit(rec, n, mi, i, A_CANCEL, SIDE_CHAR[o], tk, size, oid, 0)
        elif uniform(rng) < 0.5:
            bk.reduce_size(lv, ords, top, sl, size - fill_qty[j])
            n = _emit(rec, n, mi, i, A_CANCEL, SIDE_CHAR[o], tk, fill_qty[j], oid, 0)
        else:
            bk.reduce_size(lv, ords, top, sl, size - fill_qty[j])
            n = _emit(rec, n, mi, i, A_MODIFY, SIDE_CHAR[o], tk, size - fill_qty[j], oid, 0)
    fs[F_FLOW + i] = fs[F_FLOW + i] * p[mk.P_FLOW_DECAY] + (qty - q) * (1 - 2 * s)
    uncrossed = (top[i, o] - limit) * step > 0
    if q > 0 and uncrossed and uniform(rng) >= p[mk.P_IOC_PROB]:
        oid = _new_oid(mi)
        slot = bk.add_order(lv, ords, b[2], b[3], top, b[5], i, s, limit, q, oid)
        n = _emit(rec, n, mi, i, A_ADD, SIDE_CHAR[s], limit, q, oid, 0)
    return n


@njit(cache=True)
def _observe(b, fs, p, mi, sched, obs, sg):
    top, lv = b[4], b[0]
    bb, ba = top[0, bk.T_BEST_BID], top[0, bk.T_BEST_ASK]
    obs[OBS_FAIR] = fair_of(fs, 0, p)
    obs[OBS_MID] = 0.5 * (bb + ba)
    obs[OBS_SPREAD] = ba - bb
    if bb >= 0 and ba < bk.N_TICKS:
        obs[OBS_BID_SZ0] = lv[bk.L_SIZE, 0, bk.BID, bb]
        obs[OBS_ASK_SZ0] = lv[bk.L_SIZE, 0, bk.ASK, ba]
        obs[OBS_BID_CT0] = lv[bk.L_COUNT, 0, bk.BID, bb]
        obs[OBS_ASK_CT0] = lv[bk.L_COUNT, 0, bk.ASK, ba]
    obs[OBS_FLOW] = fs[F_FLOW]
    obs[OBS_T_S] = (mi[M_T] - sched[S_START]) * 1e-9
    obs[OBS_DAY_OPEN] = fs[F_DAY_OPEN]
    obs[OBS_SIG_ACTIVE] = sg[sgl.G_ACT]
    obs[OBS_SIG_TARGET] = sg[sgl.G_ETARGET]
    obs[OBS_SIG_HAS_MAGNET] = sg[sgl.G_HAS_MAG]
    obs[OBS_SIG_MAGNET] = sg[sgl.G_MAG]


@njit(cache=True)
def _advance(rng, p, mi, fs, sched, drift, intensity, dev_scale):
    """Move the clock to the next event and the fair price along with it; False at session end."""
    t_s = (mi[M_T] - sched[S_START]) * 1e-9
    rth_s = (sched[S_RTH] - sched[S_START]) * 1e-9
    end_s = (sched[S_END] - sched[S_START]) * 1e-9
    act = mk.activity(t_s, rth_s, end_s)
    dt = exponential(rng) / (fs[F_SCALE] * act * intensity)
    t_new = mi[M_T] + max(1, int(dt * 1e9))
    if t_new >= sched[S_END]:
        mi[M_DONE] = 1
        return False
    mi[M_T] = t_new
    lat = p[mk.P_LAT_MIN_NS] + exponential(rng) * p[mk.P_LAT_MEAN_NS]
    mi[M_TS_EVENT] = t_new - int(lat)
    mi[M_DELTA] = int(lat * 0.6)
    dt_act = dt * act
    if uniform(rng) < 1.0 - math.exp(-dt / p[mk.P_TREND_MEAN_S]):
        fs[F_TREND] = p[mk.P_TREND_SPEED] * (randint(rng, 0, 3) - 1.5) / 1.5 * (randint(rng, 0, 1))
    fs[F_ANCHOR] += (fs[F_TREND] + drift) * dt + p[mk.P_SIGMA_RW] * math.sqrt(dt_act) * normal(rng)
    if dev_scale == 1.0:
        fs[F_DEV] += -p[mk.P_KAPPA] * fs[F_DEV] * dt_act + p[mk.P_SIGMA_DEV] * math.sqrt(dt_act) * normal(rng)
    else:  # a planted episode runs: calmer, faster-reverting deviation
        kappa_dt = min(p[mk.P_KAPPA] / dev_scale * dt_act, 1.0)
        fs[F_DEV] += -fs[F_DEV] * kappa_dt + dev_scale * p[mk.P_SIGMA_DEV] * math.sqrt(dt_act) * normal(rng)
    fs[F_BASIS] += -p[mk.P_BASIS_KAPPA] * fs[F_BASIS] * dt + p[mk.P_BASIS_SIGMA] * math.sqrt(dt) * normal(rng)
    return True


@njit(cache=True)
def run_chunk(b, rng, p, mi, fs, stats, sched, rec, tru_idx, tru_lv, scratch, obs, sg, ap, ap_ts):
    """Generate events until the buffers are nearly full or the session ends.

    Returns ``(n_records, n_truth)``; ``mi[M_DONE]`` is 1 once the session is over.
    """
    top = b[4]
    cap = rec.shape[0]
    n = 0
    nt = 0
    while n + MAX_EVENT_RECORDS <= cap:
        _observe(b, fs, p, mi, sched, obs, sg)
        drift, intensity = modulate(obs, p)
        dev_scale = p[mk.P_SIG_DEV_SCALE] if sg[sgl.G_ACT] != 0.0 else 1.0
        if not _advance(rng, p, mi, fs, sched, drift, intensity, dev_scale):
            break
        i = 0 if uniform(rng) < p[mk.P_FRONT_SHARE] else 1
        k = 1
        if uniform(rng) < p[mk.P_MULTI_PROB]:
            k = randint(rng, 2, 4)
        n0 = n
        if top[i, bk.T_BEST_BID] < 0 or top[i, bk.T_BEST_ASK] >= bk.N_TICKS:
            n = ev_add(b, rng, p, mi, fs, i, rec, n, k)
        else:
            f = fair_of(fs, i, p)
            mid = 0.5 * (top[i, bk.T_BEST_BID] + top[i, bk.T_BEST_ASK])
            gap = min(max(abs(f - mid) - 0.25, 0.0), 4.0)
            p_aggr = p[mk.P_AGGR_BASE] + p[mk.P_AGGR_GAP] * gap
            target = p[mk.P_TARGET_LIVE0] if i == 0 else p[mk.P_TARGET_LIVE1]
            r = top[i, bk.T_N_LIVE] / target
            fside = -1 if i != 0 else sgl.flow_push(rng, p, sg)
            u = 0.0 if fside >= 0 else uniform(rng)
            if u < p_aggr:
                n = ev_aggress(b, rng, p, mi, fs, stats, i, rec, n, scratch, sg, sched, fside)
            elif u < p_aggr + p[mk.P_MODIFY_PROB]:
                n = ev_modify(b, rng, p, mi, i, rec, n)
            elif uniform(rng) < 1.0 / (1.0 + r * r):
                ws, wt = (-1, -1) if i != 0 else sgl.wall_target(b, rng, p, sg)
                if ws >= 0:
                    n = ev_add_at(b, rng, p, mi, i, rec, n, ws, wt)
                else:
                    n = ev_add(b, rng, p, mi, fs, i, rec, n, k)
            else:
                slot = bk.NIL if i != 0 else sgl.thin_target(b, rng, p, sg)
                if slot != bk.NIL:
                    n = ev_cancel_slot(b, mi, i, rec, n, slot)
                else:
                    n = ev_cancel(b, rng, p, mi, i, rec, n, k)
        if n == n0:
            n = ev_add(b, rng, p, mi, fs, i, rec, n, 1)
        nt = _finish(b, rec, n, i, tru_idx, tru_lv, nt)
        t_s = (mi[M_T] - sched[S_START]) * 1e-9
        sgl.update(b, rng, p, sg, ap, ap_ts, mi[M_T], t_s, (sched[S_RTH] - sched[S_START]) * 1e-9, i == 0)
        if sg[sgl.G_NEW] != 0.0:  # an episode starts: fold the fast deviation into the anchor
            sg[sgl.G_NEW] = 0.0
            fs[F_ANCHOR] += fs[F_DEV]
            fs[F_DEV] = 0.0
    return n, nt


@njit(cache=True)
def emit_snapshot(b, mi, i, rec, n, tru_idx, tru_lv, nt):
    """An ``R`` then an ``A`` per resting order (bids best first, then asks), all F_SNAPSHOT."""
    lv, ords, top = b[0], b[1], b[4]
    mi[M_TS_EVENT] = mi[M_T]
    mi[M_DELTA] = 0
    flags = F_SNAPSHOT | F_BAD_TS_RECV
    n = _emit(rec, n, mi, i, A_CLEAR, SIDE_NONE, -1, 0, 0, flags)
    for s in range(2):
        step = -1 if s == bk.BID else 1
        t = top[i, s]
        seen = 0
        while seen < top[i, bk.T_NLV_BID + s]:
            slot = lv[bk.L_HEAD, i, s, t]
            if slot != bk.NIL:
                seen += 1
            while slot != bk.NIL:
                n = _emit(rec, n, mi, i, A_ADD, SIDE_CHAR[s], t, ords[bk.O_SIZE, slot], ords[bk.O_ID, slot], flags)
                slot = ords[bk.O_NEXT, slot]
            t += step
    return n, _finish(b, rec, n, i, tru_idx, tru_lv, nt)


@njit(cache=True)
def seed_book(b, rng, p, mi, fs, i):
    """Fill an empty book around the fair price so the very first snapshot has depth."""
    f = fair_of(fs, i, p)
    bid_top = int(math.floor(f - 0.5))
    depth = int(p[mk.P_DEPTH0] if i == 0 else p[mk.P_DEPTH1])
    for s in range(2):
        for d in range(depth):
            t = bid_top - d if s == bk.BID else bid_top + 1 + d
            for _ in range(randint(rng, 1, 8 if d < 5 else 5)):
                bk.add_order(b[0], b[1], b[2], b[3], b[4], b[5], i, s, t, draw_size(rng, p), _new_oid(mi))
