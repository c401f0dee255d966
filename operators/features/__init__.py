"""The versioned bar-feature registry (names, units, formulas) and its Markdown rendering."""

from operators.features.docs import render_markdown
from operators.features.registry import (
    FEATURE_INDEX,
    FEATURES,
    GROUPS,
    REGISTRY_VERSION,
    FeatureSpec,
    features_in,
    registry_hash,
)

__all__ = [
    "FEATURES",
    "FEATURE_INDEX",
    "GROUPS",
    "REGISTRY_VERSION",
    "FeatureSpec",
    "features_in",
    "registry_hash",
    "render_markdown",
]
