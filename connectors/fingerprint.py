"""A short hash of a checkout's Python source: what keys things that must follow the code.

Two users: numba's cache directory (``connectors.numba_cache``, keyed by the packages that hold
kernels) and the benchmarks' cached simulated days (``flows.bench.runs``, keyed by the simulator).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def source_fingerprint(root: Path, packages: Iterable[str]) -> str:
    """16 hex digits over every ``*.py`` under ``root/<package>`` for each package, subpackages
    included: names and contents, so a moved file changes it as an edited one does."""
    digest = hashlib.sha256()
    for package in packages:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(source.relative_to(root).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
