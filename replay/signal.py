"""Numba kernels of the planted level-approach signal (front contract only).

State lives in one float64 vector ``sg`` (positions ``G_*``) carried by ``Simulator`` across
chunks and days; every handled or observed approach is written as a row of ``ap`` (columns
``AP_*``, times in ``ap_ts``). ``docs/simulator.md`` documents the model; ``SignalParams`` in
``replay/market.py`` holds its parameters.

Level types (index ``k``): 0 PDH, 1 PDL, 2 PMH, 3 PML, 4 ORH, 5 ORL.
Outcome classes: 0 BREAK, 1 REJECT, 2 CHOP (-1: not drawn / not resolved).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from replay import book as bk
from replay import market as mk
from replay.rng import normal, randint, uniform

LEVEL_TYPES = ("PDH", "PDL", "PMH", "PML", "ORH", "ORL")
OUTCOMES = ("BREAK", "REJECT", "CHOP")
BREAK, REJECT, CHOP = 0, 1, 2
N_LEVELS = 6

G_LVL, G_KNOWN, G_ARMED, G_DIR, G_REG_F, G_REG_W = 0, 6, 12, 18, 24, 30
G_PM_HI, G_PM_LO, G_PM_N, G_OR_HI, G_OR_LO, G_OR_N, G_RTH_HI, G_RTH_LO, G_RTH_N = range(36, 45)
G_FS, G_FA, G_FT = 45, 46, 47
G_ACT, G_EK, G_EL, G_ED, G_ET0, G_ETARGET, G_EROW, G_ERES, G_ETRES = range(48, 57)
G_PEND, G_NAP, G_OR_END_S, G_NEW, G_MAG, G_HAS_MAG = 57, 58, 59, 60, 61, 62
N_SG = 63

(AP_K, AP_LEVEL, AP_DIR, AP_MID, AP_FLOW, AP_LIQ, AP_BEHIND, AP_REF, AP_P_BREAK, AP_P_REJECT,
 AP_P_CHOP, AP_DRAWN, AP_REALISED, AP_T_RESOLVE, AP_HANDLED, AP_REG_FLOW, AP_REG_WALL) = range(17)
N_AP = 17
AP_COLUMNS = ("level_type", "level_ticks", "direction", "mid_ticks", "x_flow", "x_liq", "behind", "ref",
              "p_break", "p_reject", "p_chop", "drawn", "realised", "t_resolve_s", "handled",
              "regime_flow", "regime_wall")
MAX_APPROACHES = 4096


def new_state() -> np.ndarray:
    sg = np.zeros(N_SG, dtype=np.float64)
    sg[G_PEND] = -1.0
    sg[G_ERES] = -1.0
    return sg


def begin_day(sg: np.ndarray, or_end_s: float) -> None:
    """Yesterday's RTH high/low become PDH/PDL; every other level is unknown until its window closes."""
    had_rth = sg[G_RTH_N] > 0
    hi, lo = sg[G_RTH_HI], sg[G_RTH_LO]
    sg[:] = 0.0
    sg[G_PEND] = -1.0
    sg[G_ERES] = -1.0
    sg[G_OR_END_S] = or_end_s
    if had_rth:
        sg[G_LVL + 0], sg[G_LVL + 1] = hi, lo
        sg[G_KNOWN + 0] = sg[G_KNOWN + 1] = 1.0


@njit(cache=True)
def on_trade(sg, p, t_s, rth_s, tick, q, sgn):
    """A front-contract trade of ``q`` lots at ``tick`` (``sgn`` +1 buyer-, -1 seller-initiated)."""
    if t_s < rth_s:
        hi, lo, nn = G_PM_HI, G_PM_LO, G_PM_N
    else:
        hi, lo, nn = G_RTH_HI, G_RTH_LO, G_RTH_N
        if t_s < sg[G_OR_END_S]:
            if sg[G_OR_N] == 0:
                sg[G_OR_HI] = tick
                sg[G_OR_LO] = tick
            sg[G_OR_HI] = max(sg[G_OR_HI], tick)
            sg[G_OR_LO] = min(sg[G_OR_LO], tick)
            sg[G_OR_N] += 1
    if sg[nn] == 0:
        sg[hi] = tick
        sg[lo] = tick
    sg[hi] = max(sg[hi], tick)
    sg[lo] = min(sg[lo], tick)
    sg[nn] += 1
    dec = math.exp(-(t_s - sg[G_FT]) / p[mk.P_SIG_FLOW_TAU_S])
    sg[G_FS] = sg[G_FS] * dec + sgn * q
    sg[G_FA] = sg[G_FA] * dec + q
    sg[G_FT] = t_s


@njit(cache=True)
def flow_push(rng, p, sg):
    """Aggressor side (BID = buyer) of an extra aggressive order from the pending level's flow
    regime, or -1: toward the level when its regime ``g > 0``, away from it when ``g < 0``."""
    k = int(sg[G_PEND])
    if p[mk.P_SIG_ENABLED] == 0.0 or k < 0:
        return -1
    g = sg[G_REG_F + k]
    if uniform(rng) >= min(p[mk.P_SIG_FLOW_RATE] * abs(g), 0.5):
        return -1
    toward_up = (g * sg[G_DIR + k]) > 0.0
    return bk.BID if toward_up else bk.ASK


@njit(cache=True)
def wall_target(b, rng, p, sg):
    """``(side, tick)`` for a passive add thickening the pending level's wall, or ``(-1, -1)``."""
    k = int(sg[G_PEND])
    if p[mk.P_SIG_ENABLED] == 0.0 or k < 0:
        return -1, -1
    w = sg[G_REG_W + k]
    if w <= 0.0 or uniform(rng) >= min(p[mk.P_SIG_WALL_RATE] * w, 0.9):
        return -1, -1
    d = int(sg[G_DIR + k])
    t = int(sg[G_LVL + k]) + d * randint(rng, 0, int(p[mk.P_SIG_LIQ_TICKS]) - 1)
    top = b[4]
    if d > 0 and t > top[0, bk.T_BEST_BID]:
        return bk.ASK, t
    if d < 0 and t < top[0, bk.T_BEST_ASK]:
        return bk.BID, t
    return -1, -1


@njit(cache=True)
def thin_target(b, rng, p, sg):
    """A resting order behind the pending level to cancel (thinning its wall), or NIL."""
    k = int(sg[G_PEND])
    if p[mk.P_SIG_ENABLED] == 0.0 or k < 0:
        return bk.NIL
    w = sg[G_REG_W + k]
    if w >= 0.0 or uniform(rng) >= min(-p[mk.P_SIG_THIN_RATE] * w, 0.9):
        return bk.NIL
    d = int(sg[G_DIR + k])
    side = bk.ASK if d > 0 else bk.BID
    nliq = int(p[mk.P_SIG_LIQ_TICKS])
    j0 = randint(rng, 0, nliq - 1)
    lv = b[0]
    for m in range(nliq):
        t = int(sg[G_LVL + k]) + d * ((j0 + m) % nliq)
        if 0 <= t < bk.N_TICKS:
            slot = lv[bk.L_HEAD, 0, side, t]
            if slot != bk.NIL:
                return slot
    return bk.NIL


@njit(cache=True)
def _inputs(b, p, sg, t_s, k, d, out):
    """x_flow, x_liq, behind, ref at the start of an approach to level ``k`` from direction ``d``."""
    lv, top = b[0], b[4]
    dec = math.exp(-(t_s - sg[G_FT]) / p[mk.P_SIG_FLOW_TAU_S])
    out[0] = d * sg[G_FS] * dec / (sg[G_FA] * dec + 1.0)
    side = bk.ASK if d > 0 else bk.BID
    nliq = int(p[mk.P_SIG_LIQ_TICKS])
    behind = 0.0
    lvl = int(sg[G_LVL + k])
    for j in range(nliq):
        t = lvl + d * j
        if 0 <= t < bk.N_TICKS:
            behind += lv[bk.L_SIZE, 0, side, t]
    nref = int(p[mk.P_SIG_LIQ_REF_TICKS])
    tot = 0.0
    for j in range(nref):
        tb = top[0, bk.T_BEST_BID] - j
        ta = top[0, bk.T_BEST_ASK] + j
        if tb >= 0:
            tot += lv[bk.L_SIZE, 0, bk.BID, tb]
        if ta < bk.N_TICKS:
            tot += lv[bk.L_SIZE, 0, bk.ASK, ta]
    ref = nliq * tot / (2.0 * nref)
    out[1] = math.log((behind + 1.0) / (ref + 1.0))
    out[2] = behind
    out[3] = ref


@njit(cache=True)
def probabilities(p, x_flow, x_liq, out):
    """The latent multinomial logit: P(BREAK), P(REJECT), P(CHOP) into ``out``."""
    temp = p[mk.P_SIG_TEMPERATURE]
    x_flow = (x_flow - p[mk.P_SIG_FLOW_CENTER]) / p[mk.P_SIG_FLOW_SCALE]
    x_liq = (x_liq - p[mk.P_SIG_LIQ_CENTER]) / p[mk.P_SIG_LIQ_SCALE]
    zb = (p[mk.P_SIG_BIAS_BREAK] + p[mk.P_SIG_FLOW_BREAK] * x_flow + p[mk.P_SIG_LIQ_BREAK] * x_liq) / temp
    zr = (p[mk.P_SIG_BIAS_REJECT] + p[mk.P_SIG_FLOW_REJECT] * x_flow + p[mk.P_SIG_LIQ_REJECT] * x_liq) / temp
    m = max(zb, zr, 0.0)
    eb, er, ec = math.exp(zb - m), math.exp(zr - m), math.exp(-m)
    s = eb + er + ec
    out[0] = eb / s
    out[1] = er / s
    out[2] = ec / s


@njit(cache=True)
def _finish_episode(sg, ap, res, t_res):
    """Record the realised outcome on the episode's row (and rows sharing its draw); stop its drift."""
    for row in range(int(sg[G_EROW]), int(sg[G_NAP])):
        if ap[row, AP_HANDLED] == 1:
            ap[row, AP_REALISED] = res
            ap[row, AP_T_RESOLVE] = t_res
    sg[G_ACT] = 0.0
    sg[G_ERES] = -1.0


@njit(cache=True)
def update(b, rng, p, sg, ap, ap_ts, t_ns, t_s, rth_s, front_moved):
    """After an event: levels becoming known, arming, approaches, outcome draws and resolution."""
    top = b[4]
    enabled = p[mk.P_SIG_ENABLED] != 0.0
    # resolve the running episode (its horizon ends before this event's mid counts)
    if sg[G_ACT] != 0.0 and t_s - sg[G_ET0] > p[mk.P_SIG_HORIZON_S]:
        _finish_episode(sg, ap, CHOP, p[mk.P_SIG_HORIZON_S])
    if not front_moved:
        return
    bb, ba = top[0, bk.T_BEST_BID], top[0, bk.T_BEST_ASK]
    if bb < 0 or ba >= bk.N_TICKS:
        return
    mid = 0.5 * (bb + ba)
    if sg[G_ACT] != 0.0 and sg[G_ERES] < 0:
        x = sg[G_ED] * (mid - sg[G_EL])
        if x >= p[mk.P_SIG_OUTCOME]:
            _finish_episode(sg, ap, BREAK, t_s - sg[G_ET0])
        elif x <= -p[mk.P_SIG_OUTCOME]:
            _finish_episode(sg, ap, REJECT, t_s - sg[G_ET0])
    # levels become known when their window closes
    if t_s >= rth_s and sg[G_KNOWN + 2] == 0.0 and sg[G_PM_N] > 0:
        sg[G_LVL + 2], sg[G_LVL + 3] = sg[G_PM_HI], sg[G_PM_LO]
        sg[G_KNOWN + 2] = sg[G_KNOWN + 3] = 1.0
    if t_s >= sg[G_OR_END_S] and sg[G_KNOWN + 4] == 0.0 and sg[G_OR_N] > 0:
        sg[G_LVL + 4], sg[G_LVL + 5] = sg[G_OR_HI], sg[G_OR_LO]
        sg[G_KNOWN + 4] = sg[G_KNOWN + 5] = 1.0
    in_window = rth_s <= t_s < rth_s + p[mk.P_SIG_WINDOW_S]
    pend = -1
    best = 1e18
    mag = 1e18
    sg[G_HAS_MAG] = 0.0
    for k in range(N_LEVELS):
        if sg[G_KNOWN + k] == 0.0:
            continue
        lvl = sg[G_LVL + k]
        dist = abs(mid - lvl)
        if sg[G_ARMED + k] != 0.0:
            if dist <= p[mk.P_SIG_APPROACH]:
                sg[G_ARMED + k] = 0.0
                if in_window:
                    _start(b, rng, p, sg, ap, ap_ts, t_ns, t_s, k, mid, enabled)
            else:
                if dist <= p[mk.P_SIG_PREP_TICKS] and dist < best:
                    best = dist
                    pend = k
                if in_window and enabled and dist <= p[mk.P_SIG_MAGNET_TICKS] and dist < mag:
                    mag = dist
                    sg[G_MAG] = lvl
                    sg[G_HAS_MAG] = 1.0
        elif dist >= p[mk.P_SIG_RESET]:
            sg[G_ARMED + k] = 1.0
            sg[G_DIR + k] = 1.0 if lvl > mid else -1.0
            if enabled:
                sg[G_REG_F + k] = normal(rng)
                sg[G_REG_W + k] = normal(rng)
    sg[G_PEND] = pend


@njit(cache=True)
def _start(b, rng, p, sg, ap, ap_ts, t_ns, t_s, k, mid, enabled):
    row = int(sg[G_NAP])
    if row >= ap.shape[0]:
        return
    sg[G_NAP] += 1
    d = sg[G_DIR + k]
    lvl = sg[G_LVL + k]
    x = np.empty(4)
    _inputs(b, p, sg, t_s, k, int(d), x)
    pr = np.empty(3)
    probabilities(p, x[0], x[1], pr)
    ap_ts[row] = t_ns
    ap[row, AP_K] = k
    ap[row, AP_LEVEL] = lvl
    ap[row, AP_DIR] = d
    ap[row, AP_MID] = mid
    ap[row, AP_FLOW] = x[0]
    ap[row, AP_LIQ] = x[1]
    ap[row, AP_BEHIND] = x[2]
    ap[row, AP_REF] = x[3]
    ap[row, AP_P_BREAK] = pr[0]
    ap[row, AP_P_REJECT] = pr[1]
    ap[row, AP_P_CHOP] = pr[2]
    ap[row, AP_DRAWN] = -1
    ap[row, AP_REALISED] = -1
    ap[row, AP_T_RESOLVE] = -1
    ap[row, AP_HANDLED] = 0
    ap[row, AP_REG_FLOW] = sg[G_REG_F + k]
    ap[row, AP_REG_WALL] = sg[G_REG_W + k]
    if not enabled:
        return
    if sg[G_ACT] != 0.0:
        # another level at the same price, approached by the same event, shares the running draw
        if sg[G_ET0] == t_s and sg[G_EL] == lvl and sg[G_ED] == d:
            ap[row, AP_DRAWN] = ap[int(sg[G_EROW]), AP_DRAWN]
            ap[row, AP_HANDLED] = 1
        return
    u = uniform(rng)
    c = BREAK if u < pr[0] else (REJECT if u < pr[0] + pr[1] else CHOP)
    ap[row, AP_DRAWN] = c
    ap[row, AP_HANDLED] = 1
    tgt = p[mk.P_SIG_TARGET_TICKS]
    sg[G_ACT] = 1.0
    sg[G_EK] = k
    sg[G_EL] = lvl
    sg[G_ED] = d
    sg[G_ET0] = t_s
    sg[G_ETARGET] = lvl + d * tgt if c == BREAK else (lvl - d * tgt if c == REJECT else lvl)
    sg[G_EROW] = row
    sg[G_ERES] = -1.0
    sg[G_NEW] = 1.0


_INT_COLUMNS = {"ts_recv", "level_type", "level_ticks", "direction", "behind", "drawn", "realised", "handled"}


def write_approaches(path, cols: dict[str, np.ndarray]) -> int:
    """Write one day's approaches as CSV (header row, one approach per row); returns the row count."""
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    fmt = ["%d" if c in _INT_COLUMNS else "%.9g" for c in names]
    table = np.empty((n, len(names)), dtype=object)
    for j, c in enumerate(names):
        table[:, j] = cols[c].astype(np.int64) if c in _INT_COLUMNS else cols[c]
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write(",".join(names) + "\n")
        if n:
            np.savetxt(fh, table, fmt=fmt, delimiter=",")
    return n


def read_approaches(path) -> dict[str, np.ndarray]:
    """Read a file written by ``write_approaches`` back into columns (ints where integral)."""
    with open(path, encoding="ascii") as fh:
        names = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    if data.size == 0:
        data = np.zeros((0, len(names)))
    out = {}
    for j, c in enumerate(names):
        col = data[:, j]
        out[c] = col.astype(np.int64) if c in _INT_COLUMNS else col
    return out
