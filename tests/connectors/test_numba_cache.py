"""Numba's cache directory follows the kernels' source: a changed callee is never run stale."""

from __future__ import annotations

import os
from pathlib import Path

import numba
import pytest

from connectors.fingerprint import source_fingerprint
from connectors.numba_cache import KEEP, KERNEL_PACKAGES, use_source_keyed_cache


@pytest.fixture(autouse=True)
def _own_cache_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calls below point this process's numba and environment elsewhere: undone after each test."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", vars(numba.config)["CACHE_DIR"])


def _tree(root: Path) -> Path:
    for package in ("operators", "replay"):
        (root / package / "options").mkdir(parents=True)
        (root / package / "options" / "pricing.py").write_text("def f():\n    return 1\n")
    return root


def test_any_change_to_a_kernel_package_moves_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    first = use_source_keyed_cache(root)
    assert first is not None and first.parent == root / ".numba-cache"
    assert os.environ["NUMBA_CACHE_DIR"] == vars(numba.config)["CACHE_DIR"] == str(first)  # children inherit it
    monkeypatch.delenv("NUMBA_CACHE_DIR")  # a new process of the same checkout
    assert use_source_keyed_cache(root) == first  # the same source, the same cache
    (root / "replay" / "options" / "pricing.py").write_text("def f():\n    return 2\n")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    second = use_source_keyed_cache(root)
    assert second is not None and second != first and second.name == source_fingerprint(root, KERNEL_PACKAGES)
    (root / "README.md").write_text("not a kernel")  # outside the kernel packages: no change
    assert source_fingerprint(root, KERNEL_PACKAGES) == second.name


def test_old_caches_are_pruned_and_an_explicit_directory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    for k in range(KEEP + 3):
        (root / ".numba-cache" / f"old{k}").mkdir(parents=True)
        os.utime(root / ".numba-cache" / f"old{k}", (1_000 + k, 1_000 + k))
    here = use_source_keyed_cache(root)
    assert here is not None
    left = sorted(d.name for d in (root / ".numba-cache").iterdir())
    assert left == sorted([here.name, *(f"old{k}" for k in range(3, KEEP + 3))])  # the newest KEEP others
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert use_source_keyed_cache(root) is None and os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")
