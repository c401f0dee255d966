"""Figures of the planted level-approach signal: how learnable it is in principle.

``signal_report(days=..., seed=...)`` simulates a multi-day sample (in a temporary directory unless
``out_dir`` is given), reads the approach sidecars and the MBP-10 truth, recomputes every
approach's label from the true front-contract mid (independently of the engine), and returns:

- counts: approaches per day, by level type and direction; how many carry a drawn outcome
  (``handled``; the others started while another episode was being realised);
- class balance of the drawn and of the realised labels, and the majority-class rate (the
  baseline any model must beat);
- ``bayes_accuracy``: the accuracy of the Bayes-optimal rule ``argmax p(class | x_flow, x_liq)``
  on the drawn labels, i.e. the mean of ``max_c p_c`` over the simulator's distribution of inputs
  (a Monte Carlo estimate over the sample's approaches), and its empirical counterpart;
- agreement of the realised with the drawn outcome, and the Bayes rule's accuracy on realised
  labels (what a perfect model of the latent inputs can reach on the product's labels);
- the empirical direction of the relationship (BREAK/REJECT rates by input tercile).

``python -m replay.signal_report --days 20`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date
from pathlib import Path

import databento
import numpy as np

from replay.contracts import CONTRACTS, TICK_NANO
from replay.market import MarketParams
from replay.signal import CHOP, LEVEL_TYPES, OUTCOMES, read_approaches
from replay.synth import write_sample


def front_mid(truth_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_recv, mid in ticks)`` of the front contract after each of its events (valid books only)."""
    t = databento.DBNStore.from_file(truth_path).to_ndarray()
    t = t[(t["instrument_id"] == CONTRACTS[0].instrument_id) & (t["bid_ct_00"] > 0) & (t["ask_ct_00"] > 0)]
    mid = (t["bid_px_00"].astype(np.float64) + t["ask_px_00"].astype(np.float64)) / (2.0 * TICK_NANO)
    return t["ts_recv"].astype(np.int64), mid


def label_approaches(ts: np.ndarray, mid: np.ndarray, start_ns: np.ndarray, level: np.ndarray,
                     direction: np.ndarray, outcome_ticks: float = 8.0, horizon_s: float = 300.0) -> np.ndarray:
    """First-crossing labels from a mid series: BREAK (0) if the mid gets ``outcome_ticks`` through
    the level in the approach direction first, REJECT (1) if ``outcome_ticks`` back away first,
    CHOP (2) if neither within ``horizon_s`` after the start (events strictly after it)."""
    out = np.full(len(start_ns), CHOP, dtype=np.int64)
    for j in range(len(start_ns)):
        a = np.searchsorted(ts, start_ns[j], side="right")
        b = np.searchsorted(ts, start_ns[j] + int(horizon_s * 1e9), side="right")
        x = direction[j] * (mid[a:b] - level[j])
        hit_b = np.flatnonzero(x >= outcome_ticks)
        hit_r = np.flatnonzero(x <= -outcome_ticks)
        fb = hit_b[0] if len(hit_b) else np.iinfo(np.int64).max
        fr = hit_r[0] if len(hit_r) else np.iinfo(np.int64).max
        if fb < fr:
            out[j] = 0
        elif fr < fb:
            out[j] = 1
    return out


def _balance(labels: np.ndarray) -> dict[str, float]:
    n = max(len(labels), 1)
    return {name: round(float((labels == c).sum()) / n, 4) for c, name in enumerate(OUTCOMES)}


def signal_report(days: int = 20, seed: int = 7, events_per_day: int = 100_000,
                  params: MarketParams | None = None, out_dir: Path | None = None,
                  start_date: date = date(2025, 11, 3)) -> dict:
    """Simulate ``days`` days and measure the planted signal (see the module docstring).

    ``params`` defaults to ``MarketParams()``.
    """
    params = params if params is not None else MarketParams()
    with tempfile.TemporaryDirectory(prefix="signal-report-") as tmp:
        root = Path(out_dir) if out_dir is not None else Path(tmp)
        manifest = write_sample(root, days=days, seed=seed, events_per_day=events_per_day,
                                start_date=start_date, params=params, truth=True)
        sp = params.signal
        cols: dict[str, list[np.ndarray]] = {}
        relabel = []
        per_day = []
        for d in manifest.days:
            a = read_approaches(d.approaches)
            per_day.append(len(a["ts_recv"]))
            ts, mid = front_mid(d.truth)
            relabel.append(label_approaches(ts, mid, a["ts_recv"], a["level_ticks"].astype(np.float64),
                                            a["direction"].astype(np.float64), sp.outcome_ticks, sp.horizon_s))
            for k, v in a.items():
                cols.setdefault(k, []).append(v)
    a = {k: np.concatenate(v) for k, v in cols.items()}
    lab = np.concatenate(relabel)
    h = a["handled"] == 1
    probs = np.stack([a["p_break"], a["p_reject"], a["p_chop"]], axis=1)
    bayes = probs.argmax(axis=1)
    drawn = a["drawn"]
    n, nh = len(lab), int(h.sum())

    def rate(mask: np.ndarray, c: int) -> float:
        return round(float((lab[mask] == c).mean()), 4) if mask.any() else float("nan")

    terc_f = np.quantile(a["x_flow"], [1 / 3, 2 / 3]) if n else np.zeros(2)
    terc_l = np.quantile(a["x_liq"], [1 / 3, 2 / 3]) if n else np.zeros(2)
    lo_f, hi_f = a["x_flow"] <= terc_f[0], a["x_flow"] >= terc_f[1]
    lo_l, hi_l = a["x_liq"] <= terc_l[0], a["x_liq"] >= terc_l[1]
    realised_h = lab[h]
    return {
        "days": days, "seed": seed, "events_per_day": events_per_day,
        "approaches": n,
        "approaches_per_day": round(n / max(days, 1), 2),
        "approaches_per_day_min_max": [min(per_day, default=0), max(per_day, default=0)],
        "by_level_type": {t: int((a["level_type"] == k).sum()) for k, t in enumerate(LEVEL_TYPES)},
        "by_direction": {"UP": int((a["direction"] == 1).sum()), "DOWN": int((a["direction"] == -1).sum())},
        "handled": nh,
        "handled_share": round(nh / max(n, 1), 4),
        "drawn_balance": _balance(drawn[h]),
        "realised_balance_handled": _balance(realised_h),
        "realised_balance_all": _balance(lab),
        "majority_rate_drawn": max(_balance(drawn[h]).values(), default=0.0),
        "majority_rate_realised_handled": max(_balance(realised_h).values(), default=0.0),
        "majority_rate_realised_all": max(_balance(lab).values(), default=0.0),
        "bayes_accuracy": round(float(probs[h].max(axis=1).mean()), 4) if nh else float("nan"),
        "bayes_accuracy_all_inputs": round(float(probs.max(axis=1).mean()), 4) if n else float("nan"),
        "bayes_hits_on_drawn": round(float((bayes[h] == drawn[h]).mean()), 4) if nh else float("nan"),
        "realised_equals_drawn": round(float((realised_h == drawn[h]).mean()), 4) if nh else float("nan"),
        "engine_label_equals_recomputed":
            round(float((a["realised"][h] == realised_h).mean()), 4) if nh else float("nan"),
        "bayes_accuracy_on_realised_handled": round(float((bayes[h] == realised_h).mean()), 4) if nh else float("nan"),
        "bayes_accuracy_on_realised_all": round(float((bayes == lab).mean()), 4) if n else float("nan"),
        "break_rate_by_flow_tercile": [rate(lo_f, 0), rate(~lo_f & ~hi_f, 0), rate(hi_f, 0)],
        "reject_rate_by_flow_tercile": [rate(lo_f, 1), rate(~lo_f & ~hi_f, 1), rate(hi_f, 1)],
        "break_rate_by_liq_tercile": [rate(lo_l, 0), rate(~lo_l & ~hi_l, 0), rate(hi_l, 0)],
        "reject_rate_by_liq_tercile": [rate(lo_l, 1), rate(~lo_l & ~hi_l, 1), rate(hi_l, 1)],
        "x_flow_mean_sd": [round(float(a["x_flow"].mean()), 4), round(float(a["x_flow"].std()), 4)] if n else [],
        "x_liq_mean_sd": [round(float(a["x_liq"].mean()), 4), round(float(a["x_liq"].std()), 4)] if n else [],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--events-per-day", type=int, default=100_000)
    args = ap.parse_args()
    print(json.dumps(signal_report(args.days, args.seed, args.events_per_day), indent=2))


if __name__ == "__main__":
    main()
