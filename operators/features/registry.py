"""The feature registry: the one ordered, versioned list of bar features (SPEC §5 ``silver.bar_5s``).

Every feature is one ``f8`` column of ``operators.bars.BAR_DTYPE`` with the same name, in this
order, and is computed by ``operators.bars.kernels`` from the 1-second book rows of the bar
(``operators.book.second_dtype``). *State* features (ladder, shape, wall, near depth) read the
bar's LAST second, i.e. the book at the bar's close instant; *flow* features sum (or average) over
the bar's seconds. Conventions used in the formulas:

- ``b_k, a_k`` (k = 1..10): size in lots of the k-th best non-empty bid / ask level of the last
  second (0 when the side has fewer levels); ``pb_k, pa_k`` their prices; ``B = Σ b_k``,
  ``A = Σ a_k`` over the 10 levels.
- ``mid = (pb_1 + pa_1) / 2``; ``tick`` is the instrument's tick (ES: 0.25).
- Ratios whose denominator is 0, and anything needing a side that is empty, are NaN.

Bump ``REGISTRY_VERSION`` whenever the list, an order, a name or a formula changes;
``registry_hash()`` changes with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Final, Literal

Group = Literal["ladder", "flow", "shape", "wall", "vacuum"]

GROUPS: Final[tuple[str, ...]] = ("ladder", "flow", "shape", "wall", "vacuum")
LEVELS: Final = 10
"""Book levels per side the features look at."""
NEAR_TICKS: Final = 4
"""Vacuum: a level is near the mid when it is at most this many ticks from it."""
NEAR_EMA_S: Final = 300
"""Vacuum: time constant (seconds) of the exponential average that defines typical near depth."""
REGISTRY_VERSION: Final = "1.1.0"
"""1.1.0: the setup vector's options block is filled (``operators.vectors.options``)."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One bar feature: its column name, group, unit, exact formula, and history beyond the bar."""

    name: str
    group: Group
    unit: str
    formula: str
    lookback_s: int | None = None
    """Seconds of history before the bar the feature needs (None: only the bar's own seconds)."""


def _ladder() -> list[FeatureSpec]:
    out: list[FeatureSpec] = []
    for side, sym, word in (("bid", "b", "bid"), ("ask", "a", "ask")):
        for k in range(1, LEVELS + 1):
            out.append(FeatureSpec(
                f"ladder_{side}_sz_{k:02d}", "ladder", "lots",
                f"{sym}_{k}: size of {word} level {k} (levels are the non-empty prices, best "
                "first) at bar close (last second); 0 when the side has fewer levels",
            ))
    for n in (5, 10):
        for side, sym in (("bid", "b"), ("ask", "a")):
            out.append(FeatureSpec(
                f"ladder_{side}_depth_{n:02d}", "ladder", "lots",
                f"cumulative depth Σ_{{k=1..{n}}} {sym}_k at bar close (last second)",
            ))
    out.append(FeatureSpec(
        "ladder_spread_ticks", "ladder", "ticks", "(pa_1 - pb_1) / tick at bar close (last second)",
    ))
    out.append(FeatureSpec(
        "ladder_bid_span_ticks", "ladder", "ticks",
        "(pb_1 - pb_m) / tick, m = deepest present bid level (<= 10), at bar close (last second); "
        "0 with one level",
    ))
    out.append(FeatureSpec(
        "ladder_ask_span_ticks", "ladder", "ticks",
        "(pa_m - pa_1) / tick, m = deepest present ask level (<= 10), at bar close (last second); "
        "0 with one level",
    ))
    return out


def _flow() -> list[FeatureSpec]:
    f = "over the bar's seconds"
    return [
        FeatureSpec("flow_aggressor_imbalance", "flow", "ratio [-1, 1]",
                    f"(Σ buy_volume - Σ sell_volume) / (Σ buy_volume + Σ sell_volume) {f} "
                    "(aggressor side of T records)"),
        FeatureSpec("flow_net_aggressor_volume", "flow", "lots",
                    f"Σ buy_volume - Σ sell_volume {f}"),
        FeatureSpec("flow_ofi", "flow", "lots",
                    f"Σ ofi {f}: Cont-Kukanov-Stoikov order-flow imbalance summed over the events "
                    "(F_LAST) of the bar, see the book row's `ofi`"),
        FeatureSpec("flow_ofi_norm", "flow", "ratio",
                    "flow_ofi / mean((b_1 + a_1) / 2) where the mean runs over the bar's seconds "
                    "with both sides present (OFI per unit of average top-of-book depth)"),
        FeatureSpec("flow_trade_count", "flow", "count", f"Σ trade_count (T records) {f}"),
        FeatureSpec("flow_avg_trade_size", "flow", "lots",
                    f"Σ volume / Σ trade_count {f}"),
        FeatureSpec("flow_add_bid_size", "flow", "lots",
                    f"Σ add_bid_size {f}: lots added to the bid by A records and size-increasing M"),
        FeatureSpec("flow_add_ask_size", "flow", "lots", f"Σ add_ask_size {f}"),
        FeatureSpec("flow_cancel_bid_size", "flow", "lots",
                    f"Σ cancel_bid_size {f}: lots removed from the bid by C records and "
                    "size-decreasing M, excluding removals after a fill (F) in the same event"),
        FeatureSpec("flow_cancel_ask_size", "flow", "lots", f"Σ cancel_ask_size {f}"),
        FeatureSpec("flow_event_count", "flow", "count", f"Σ event_count (F_LAST records) {f}"),
    ]


def _shape() -> list[FeatureSpec]:
    last = "at bar close (last second)"
    return [
        FeatureSpec("shape_book_skew", "shape", "ratio [-1, 1]", f"(B - A) / (B + A) {last}"),
        FeatureSpec("shape_top_imbalance", "shape", "ratio [-1, 1]",
                    f"(b_1 - a_1) / (b_1 + a_1) {last}"),
        FeatureSpec("shape_microprice_offset_ticks", "shape", "ticks",
                    "(microprice - mid) / tick, microprice = (pb_1 a_1 + pa_1 b_1) / (a_1 + b_1), "
                    f"{last}"),
        FeatureSpec("shape_weighted_mid_offset_ticks", "shape", "ticks",
                    "(wmid - mid) / tick, wmid = (Pb A + Pa B) / (A + B) with Pb = Σ pb_k b_k / B "
                    f"and Pa = Σ pa_k a_k / A (10-level microprice), {last}"),
        FeatureSpec("shape_bid_top_share", "shape", "ratio [0, 1]", f"b_1 / B {last}"),
        FeatureSpec("shape_ask_top_share", "shape", "ratio [0, 1]", f"a_1 / A {last}"),
        FeatureSpec("shape_bid_hhi", "shape", "ratio [0.1, 1]",
                    f"Herfindahl concentration Σ (b_k / B)^2 {last}"),
        FeatureSpec("shape_ask_hhi", "shape", "ratio [0.1, 1]",
                    f"Herfindahl concentration Σ (a_k / A)^2 {last}"),
    ]


def _wall() -> list[FeatureSpec]:
    last = "at bar close (last second)"
    out: list[FeatureSpec] = []
    for side, sym, dist in (("bid", "b", "(mid - pb_w) / tick"), ("ask", "a", "(pa_w - mid) / tick")):
        out += [
            FeatureSpec(f"wall_{side}_size", "wall", "lots",
                        f"{sym}_w = max_k {sym}_k over the 10 levels {last}; w = the level nearest "
                        "the best among ties; 0 when the side is empty"),
            FeatureSpec(f"wall_{side}_ratio", "wall", "ratio",
                        f"{sym}_w / median of the present (non-empty) {sym}_k {last}"),
            FeatureSpec(f"wall_{side}_distance_ticks", "wall", "ticks", f"{dist} {last}"),
        ]
    out.append(FeatureSpec("wall_side", "wall", "sign",
                           "+1 if wall_bid_ratio > wall_ask_ratio, -1 if smaller, 0 if equal or "
                           "either is NaN"))
    return out


def _vacuum() -> list[FeatureSpec]:
    last = "at bar close (last second)"
    near = f"levels at most {NEAR_TICKS} ticks from mid"
    return [
        FeatureSpec("vacuum_bid_near_depth", "vacuum", "lots",
                    f"Σ b_k over bid {near} (mid - pb_k <= {NEAR_TICKS} tick) {last}"),
        FeatureSpec("vacuum_ask_near_depth", "vacuum", "lots",
                    f"Σ a_k over ask {near} (pa_k - mid <= {NEAR_TICKS} tick) {last}"),
        FeatureSpec("vacuum_bid_near_depth_ratio", "vacuum", "ratio",
                    "vacuum_bid_near_depth / typical, typical = exponential average of the same "
                    f"quantity over every 1-second row up to bar close (time constant {NEAR_EMA_S} s, "
                    "weight 1 - exp(-dt / 300 s) per row, seeded by the first two-sided row, rows "
                    "without a mid skipped); < 1 means thinner than usual",
                    NEAR_EMA_S),
        FeatureSpec("vacuum_ask_near_depth_ratio", "vacuum", "ratio",
                    "vacuum_ask_near_depth / typical, as vacuum_bid_near_depth_ratio", NEAR_EMA_S),
        FeatureSpec("vacuum_bid_pulled", "vacuum", "lots",
                    "Σ near_pulled_bid_size over the bar's seconds: lots cancelled minus lots added "
                    "on the bid at prices fewer than 4 ticks behind the best bid (after the record; "
                    "at or through the best counts); > 0 means liquidity was pulled"),
        FeatureSpec("vacuum_ask_pulled", "vacuum", "lots",
                    "Σ near_pulled_ask_size over the bar's seconds, as vacuum_bid_pulled"),
        FeatureSpec("vacuum_mid_velocity", "vacuum", "ticks/s",
                    "(mid_close - mid_open) / tick / n_seconds over the bar (bar mid OHLC)"),
    ]


FEATURES: Final[tuple[FeatureSpec, ...]] = tuple(_ladder() + _flow() + _shape() + _wall() + _vacuum())
"""All bar features, in column order."""

FEATURE_INDEX: Final[dict[str, int]] = {f.name: i for i, f in enumerate(FEATURES)}


def features_in(group: str) -> tuple[FeatureSpec, ...]:
    """The features of one group, in registry order."""
    return tuple(f for f in FEATURES if f.group == group)


def canonical_registry() -> str:
    """The registry serialised canonically (sorted keys, no whitespace, ASCII), version included."""
    body = {"version": REGISTRY_VERSION, "features": [asdict(f) for f in FEATURES]}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def registry_hash() -> str:
    """sha256 (hex) of ``canonical_registry()``."""
    return hashlib.sha256(canonical_registry().encode("ascii")).hexdigest()


__all__ = [
    "FEATURES",
    "FEATURE_INDEX",
    "GROUPS",
    "LEVELS",
    "NEAR_EMA_S",
    "NEAR_TICKS",
    "REGISTRY_VERSION",
    "FeatureSpec",
    "canonical_registry",
    "features_in",
    "registry_hash",
]
