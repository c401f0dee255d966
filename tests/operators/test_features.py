"""The feature registry: well-formed, hashed, and documented in docs/features.md."""

from __future__ import annotations

import re
from pathlib import Path

from operators.features import FEATURES, GROUPS, REGISTRY_VERSION, registry_hash, render_markdown
from operators.features.registry import canonical_registry, features_in

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def test_registry_is_well_formed() -> None:
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    assert {f.group for f in FEATURES} == set(GROUPS)
    for f in FEATURES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", f.name)
        assert f.name.startswith(f.group + "_")
        assert f.unit and f.formula
        assert f.lookback_s is None or f.lookback_s > 0
    # groups are contiguous, in GROUPS order
    assert [f.group for f in FEATURES] == [g for g in GROUPS for _ in features_in(g)]


def test_registry_hash_is_sha256_of_canonical_form() -> None:
    import hashlib

    assert registry_hash() == hashlib.sha256(canonical_registry().encode()).hexdigest()
    assert REGISTRY_VERSION in canonical_registry()
    assert len(registry_hash()) == 64


def test_docs_are_generated_from_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/features.md is stale: regenerate it from operators.features.render_markdown()"
    )
    for f in FEATURES:
        assert f"`{f.name}`" in render_markdown()
