"""Saving and loading a memory: bit-identical answers, clear errors, and loading from a model version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from connectors.models.memory_store import load_memory, load_memory_for, save_memory
from operators.errors import ConfigError, SinkError, SourceError
from operators.retrieval import Memory, Neighbours, build_memory, fit_scaling
from operators.vectors import VECTOR_SIZE
from tests.retrieval.registry import Registry, register_memory

LEVELS = ("PDH", "PDL", "PMH", "PML", "ORH", "ORL")


def sample_memory(n: int = 400, seed: int = 5, exact_max: int = 60) -> tuple[Memory, np.ndarray, list, list, list]:
    """144-wide vectors over every level type, both directions, two buckets; the big partitions use HNSW."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, VECTOR_SIZE)).astype(np.float32)
    x[:, -12:] = 0.0                                              # options block: constant, inactive
    lt = [LEVELS[i % 6] if i < n // 2 else "ORH" for i in range(n)]
    d = ["UP" if i % 2 else "DOWN" for i in range(n)]
    b = [i % 2 if i < n // 2 else 0 for i in range(n)]
    memory = build_memory(x, rng.integers(0, 3, n).astype(np.int8), tuple(f"id-{i:05d}" for i in range(n)), lt, d, b,
                          fit_scaling(x[: n // 2]), exact_max=exact_max)
    return memory, x, lt, d, b


def answers(memory: Memory, x: np.ndarray, lt: list, d: list, b: list) -> list[Neighbours]:
    own = [f"id-{i:05d}" for i in range(0, len(x), 7)]
    return memory.query(x[::7] + 0.01, lt[::7], d[::7], b[::7], k=9, exclude=own)


def same(a: list[Neighbours], b: list[Neighbours]) -> bool:
    fields = ("distances", "outcomes", "distribution", "weighted")
    return all(p.episode_ids == q.episode_ids and p.scope == q.scope
               and all(getattr(p, f).tobytes() == getattr(q, f).tobytes() for f in fields)
               for p, q in zip(a, b, strict=True))


def test_round_trip_gives_bit_identical_answers(tmp_path: Path) -> None:
    memory, x, lt, d, b = sample_memory()
    assert {p.kind for p in memory.partitions.values()} == {"flat", "hnsw"}
    save_memory(memory, tmp_path / "m")
    loaded = load_memory(tmp_path / "m")
    assert sorted(loaded.partitions) == sorted(memory.partitions)
    assert {k: p.kind for k, p in loaded.partitions.items()} == {k: p.kind for k, p in memory.partitions.items()}
    for name in ("mean", "std", "scale", "groups", "group_weights"):
        assert getattr(loaded.scaling, name).tobytes() == getattr(memory.scaling, name).tobytes()
    assert loaded.scaling.rows == memory.scaling.rows == 200
    assert same(answers(memory, x, lt, d, b), answers(loaded, x, lt, d, b))
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and len(manifest["partitions"]) == len(memory.partitions)


def test_saving_into_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "stale.txt").write_text("x")
    with pytest.raises(SinkError, match="not an empty directory"):
        save_memory(sample_memory(60)[0], tmp_path / "m")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: (p / "manifest.json").unlink(), "has no manifest.json"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "p000.faiss").write_bytes(b"\0" * 64), "p000.faiss does not match its checksum"),
        (lambda p: (p / "arrays.npz").unlink(), "arrays.npz is missing"),
        (lambda p: (p / "manifest.json").write_text((p / "manifest.json").read_text().replace(
            '"format_version": 1', '"format_version": 9')), "format version 9"),
        (lambda p: (p / "manifest.json").write_text(
            (p / "manifest.json").read_text().replace('"partitions"', '"parts"')), "manifest or arrays are incomplete"),
    ],
)
def test_missing_or_corrupt_directories_fail_with_one_sentence(tmp_path: Path, damage, message: str) -> None:
    target = tmp_path / "m"
    if message != "does not exist":
        save_memory(sample_memory(60)[0], target)
    damage(target)
    with pytest.raises(SourceError, match=message):
        load_memory(target)


@pytest.mark.integration
def test_memory_of_a_registered_version_loads_from_its_run(tracking_env: Registry) -> None:
    memory, x, lt, d, b = sample_memory()
    version = register_memory(tracking_env.uri, tracking_env.artifacts, "RETRIEVAL_A", memory)
    loaded = load_memory_for("RETRIEVAL_A", version)
    assert same(answers(memory, x, lt, d, b), answers(loaded, x, lt, d, b))


@pytest.mark.integration
def test_unknown_versions_and_versions_without_memory_are_clear_errors(tracking_env: Registry) -> None:
    bare = register_memory(tracking_env.uri, tracking_env.artifacts, "RETRIEVAL_B", None)
    with pytest.raises(SourceError, match=f"version {bare} has no retrieval memory"):
        load_memory_for("RETRIEVAL_B", bare)
    with pytest.raises(ConfigError, match="has no version 99"):
        load_memory_for("RETRIEVAL_B", "99")
    with pytest.raises(ConfigError, match="NO_SUCH_MODEL has no version 1"):
        load_memory_for("NO_SUCH_MODEL", "1")
