from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "dbn-official"


@pytest.fixture
def dbn_path() -> Callable[[str], Path]:
    """Path of an official Databento test file (see tests/data/dbn-official/metadata.json)."""

    def _path(name: str) -> Path:
        path = OFFICIAL / name
        assert path.is_file(), f"missing official test file {name}"
        return path

    return _path
