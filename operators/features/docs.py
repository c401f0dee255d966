"""``docs/features.md`` as a string, rendered from the registry (pure: the CLI writes the file)."""

from __future__ import annotations

from operators.features.registry import (
    FEATURES,
    GROUPS,
    LEVELS,
    NEAR_EMA_S,
    NEAR_TICKS,
    REGISTRY_VERSION,
    features_in,
    registry_hash,
)

_GROUP_TEXT = {
    "ladder": "Depth at the 10 best non-empty levels per side, at the bar's close.",
    "flow": "What traded and what was added or cancelled during the bar (sums over its seconds).",
    "shape": "How the resting liquidity is distributed, at the bar's close.",
    "wall": "The largest resting level within 10 levels per side, at the bar's close.",
    "vacuum": "Thin or withdrawn liquidity near the mid, and how fast the mid moved.",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """The feature reference page (Markdown), generated from ``operators.features.registry``."""
    lines = [
        "# Bar features",
        "",
        "<!-- Generated from operators/features/registry.py by operators.features.docs.render_markdown();",
        "     do not edit by hand. -->",
        "",
        f"Registry version `{REGISTRY_VERSION}`, hash `{registry_hash()}`, {len(FEATURES)} features.",
        "",
        "Each feature is one `float64` column of `silver.bar_5s` (`operators.bars.BAR_DTYPE`), in",
        "this order, computed from the bar's 1-second book rows. State features use the bar's last",
        "second (the book at the bar's close instant); flow features sum over the bar's seconds.",
        f"`b_k`, `a_k` are the sizes (lots) of the k-th best non-empty bid / ask level (k = 1..{LEVELS}),",
        "`pb_k`, `pa_k` their prices, `B = Σ b_k`, `A = Σ a_k`, `mid = (pb_1 + pa_1) / 2`. A ratio with",
        f"a zero denominator, or anything that needs an empty side, is NaN. Near = within {NEAR_TICKS}",
        f"ticks; the typical near depth is an exponential average with a {NEAR_EMA_S} s time constant.",
        "",
    ]
    for group in GROUPS:
        feats = features_in(group)
        lines += [
            f"## {group} ({len(feats)})",
            "",
            _GROUP_TEXT[group],
            "",
            "| # | name | unit | formula | lookback (s) |",
            "|---|------|------|---------|--------------|",
        ]
        for f in feats:
            idx = FEATURES.index(f)
            look = "" if f.lookback_s is None else str(f.lookback_s)
            lines.append(f"| {idx} | `{f.name}` | {_cell(f.unit)} | {_cell(f.formula)} | {look} |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["render_markdown"]
