"""FAISS memory: exact neighbours and distributions on tiny vectors, partitions, scopes, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from operators.retrieval import Memory, VectorScaling, build_memory, fit_scaling

B, R, C = 0, 1, 2


def identity(d: int) -> VectorScaling:
    """No centring or scaling, so distances are plain Euclidean ones that a test can compute by hand."""
    one = np.ones(d)
    return VectorScaling(np.zeros(d), one, one, np.zeros(d, np.int16), ("all",), np.ones(1), 0)


def tiny_memory(**kw: Any) -> Memory:
    """Four episodes in ORH/UP/0, one in ORH/UP/1, one in PDL/DOWN/0 (2-d vectors)."""
    vectors = np.array([[0, 0], [1, 0], [0, 2], [3, 0], [0, 0.1], [0, 0]], np.float32)
    return build_memory(vectors, np.array([B, R, C, R, C, B], np.int8), ("e0", "e1", "e2", "e3", "o4", "d5"),
                        ["ORH"] * 5 + ["PDL"], ["UP"] * 5 + ["DOWN"], [0, 0, 0, 0, 1, 0], identity(2), **kw)


def test_nearest_neighbours_distances_and_both_distributions() -> None:
    got = tiny_memory().query(np.array([[0.4, 0.0]]), "ORH", "UP", 0, k=2, min_rows=0)[0]
    assert got.episode_ids == ("e0", "e1")
    assert got.distances.tolist() == pytest.approx([0.4, 0.6])
    assert got.outcomes.tolist() == [B, R]
    assert got.distribution.tolist() == [0.5, 0.5, 0.0]
    w0, w1 = 1 / (0.4 + 1e-6), 1 / (0.6 + 1e-6)
    assert got.weighted.tolist() == pytest.approx([w0 / (w0 + w1), w1 / (w0 + w1), 0.0])
    assert got.count == 2 and got.scope == "partition"


def test_k_larger_than_the_partition_returns_every_row_nearest_first() -> None:
    got = tiny_memory().query(np.array([[0.0, 0.0]]), "ORH", "UP", 0, k=25, min_rows=0)[0]
    assert got.episode_ids == ("e0", "e1", "e2", "e3")
    assert got.distances.tolist() == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert got.distribution.tolist() == [0.25, 0.5, 0.25]
    assert got.weighted[B] > 0.999                     # the exact duplicate dominates


def test_partitions_keep_episodes_apart_and_a_missing_partition_answers_nothing() -> None:
    memory = tiny_memory()
    assert sorted(memory.partitions) == [("ORH", "UP", 0), ("ORH", "UP", 1), ("PDL", "DOWN", 0)]
    other_bucket = memory.query(np.array([[0.0, 0.0]]), "ORH", "UP", 1, k=5, min_rows=0)[0]
    assert other_bucket.episode_ids == ("o4",)
    none = memory.query(np.array([[0.0, 0.0]]), "PMH", "UP", 0, k=5, min_rows=0)[0]
    assert none.count == 0 and none.scope == "none" and none.episode_ids == ()
    assert np.isnan(none.distribution).all() and np.isnan(none.weighted).all()


def test_small_partitions_widen_to_level_and_direction_then_direction() -> None:
    memory = tiny_memory()
    q = np.array([[0.0, 0.0]])
    wide = memory.query(q, "ORH", "UP", 1, k=2, min_rows=5)[0]        # bucket 1 has 1 row, ORH/UP has 5
    assert wide.scope == "level_direction"
    assert wide.episode_ids == ("e0", "o4")
    widest = memory.query(q, "PMH", "UP", 0, k=2, min_rows=5)[0]      # no PMH at all: every UP episode
    assert widest.scope == "direction" and widest.episode_ids == ("e0", "o4")
    down = memory.query(q, "PDL", "DOWN", 0, k=2)[0]                  # default floor 4k = 8 > all DOWN rows
    assert down.scope == "direction" and down.episode_ids == ("d5",)
    assert memory.scope_rows(("ORH", "UP", 1)) == {"partition": 1, "level_direction": 5, "direction": 5}


def test_one_batch_answers_each_row_in_its_own_partition_in_input_order() -> None:
    got = tiny_memory().query(np.array([[0.0, 0.0], [0.0, 0.0], [0.9, 0.0]]), ["PDL", "ORH", "ORH"],
                              ["DOWN", "UP", "UP"], [0, 1, 0], k=1, min_rows=0)
    assert [g.episode_ids for g in got] == [("d5",), ("o4",), ("e1",)]


def test_exclude_leaves_out_the_query_episode_only() -> None:
    memory = tiny_memory()
    q = np.array([[0.0, 0.0], [0.0, 0.0]])
    got = memory.query(q, "ORH", "UP", 0, k=2, exclude=["e0", None], min_rows=0)
    assert got[0].episode_ids == ("e1", "e2")
    assert got[1].episode_ids == ("e0", "e1")
    alone = memory.query(q[:1], "PDL", "DOWN", 0, k=3, exclude=["d5"], min_rows=0)[0]
    assert alone.count == 0 and np.isnan(alone.distribution).all()


def test_build_refuses_duplicate_ids_bad_codes_and_ragged_inputs() -> None:
    v = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="unique"):
        build_memory(v, np.array([0, 1]), ("a", "a"), ["ORH"] * 2, ["UP"] * 2, [0, 0], identity(2))
    with pytest.raises(ValueError, match="0..2"):
        build_memory(v, np.array([0, 3]), ("a", "b"), ["ORH"] * 2, ["UP"] * 2, [0, 0], identity(2))
    with pytest.raises(ValueError, match="length"):
        build_memory(v, np.array([0]), ("a", "b"), ["ORH"] * 2, ["UP"] * 2, [0, 0], identity(2))
    with pytest.raises(ValueError, match="k must"):
        tiny_memory().query(v, "ORH", "UP", 0, k=0)


def random_rows(n: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = rng.integers(0, 3, n).astype(np.int8)
    ids = tuple(f"ep{i:04d}" for i in range(n))
    return x, y, ids, ["ORL"] * n, ["DOWN" if i % 3 else "UP" for i in range(n)], [i % 2 for i in range(n)]


def test_the_memory_does_not_depend_on_row_order_or_batching() -> None:
    x, y, ids, lt, d, b = random_rows(300, 1)
    s = fit_scaling(x, groups=np.zeros(8, np.int16), group_names=("all",))
    first = build_memory(x, y, ids, lt, d, b, s)
    p = np.random.default_rng(2).permutation(300)
    shuffled = build_memory(x[p], y[p], tuple(ids[i] for i in p), [lt[i] for i in p], [d[i] for i in p],
                            [b[i] for i in p], s)
    q = x[:40] + 0.05
    batch = first.query(q, lt[:40], d[:40], b[:40], k=7)
    again = shuffled.query(q, lt[:40], d[:40], b[:40], k=7)
    single = [first.query(q[i:i + 1], lt[i], d[i], b[i], k=7)[0] for i in range(40)]
    for one, two, three in zip(batch, again, single, strict=True):
        assert one.episode_ids == two.episode_ids == three.episode_ids
        assert one.distances.tobytes() == two.distances.tobytes() == three.distances.tobytes()
        assert one.weighted.tobytes() == two.weighted.tobytes() == three.weighted.tobytes()


def test_large_partitions_use_hnsw_and_find_the_exact_neighbours_here() -> None:
    x, y, ids, lt, d, b = random_rows(300, 3)
    s = fit_scaling(x, groups=np.zeros(8, np.int16), group_names=("all",))
    flat = build_memory(x, y, ids, lt, d, b, s)
    hnsw = build_memory(x, y, ids, lt, d, b, s, exact_max=40)
    assert {p.kind for p in flat.partitions.values()} == {"flat"}
    assert {p.kind for p in hnsw.partitions.values()} == {"hnsw"}
    q = np.random.default_rng(4).normal(size=(30, 8)).astype(np.float32)
    a = flat.query(q, "ORL", "DOWN", 1, k=10, min_rows=0)
    h = hnsw.query(q, "ORL", "DOWN", 1, k=10, min_rows=0)
    assert [n.episode_ids for n in a] == [n.episode_ids for n in h]
    assert np.allclose(np.stack([n.distances for n in a]), np.stack([n.distances for n in h]), rtol=1e-5)
    rebuilt = build_memory(x, y, ids, lt, d, b, s, exact_max=40).query(q, "ORL", "DOWN", 1, k=10, min_rows=0)
    assert [n.distances.tobytes() for n in rebuilt] == [n.distances.tobytes() for n in h]


def test_scaling_from_other_rows_changes_the_neighbours() -> None:
    groups, names = np.array([0, 1], np.int16), ("a", "b")
    train = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 10.0], [1.0, 10.0]], np.float32)
    stored = np.array([[1.0, 0.0], [0.0, 4.0]], np.float32)
    args = (np.array([B, R], np.int8), ("x", "y"), ["ORH"] * 2, ["UP"] * 2, [0, 0])
    q = np.array([[0.0, 0.0]], np.float32)
    honest = build_memory(stored, *args, fit_scaling(train, groups=groups, group_names=names))
    # Fitting on rows that include a much wider first element (e.g. later sessions) shrinks it:
    leaky_rows = np.vstack([train, [[40.0, 5.0], [-40.0, 5.0]]]).astype(np.float32)
    leaky = build_memory(stored, *args, fit_scaling(leaky_rows, groups=groups, group_names=names))
    assert honest.query(q, "ORH", "UP", 0, k=1)[0].episode_ids == ("y",)
    assert leaky.query(q, "ORH", "UP", 0, k=1)[0].episode_ids == ("x",)


def test_a_pooled_scope_answers_exactly_like_its_partitions_searched_one_by_one() -> None:
    from operators.retrieval.partition import nearest, pooled

    x, y, ids, lt, d, b = random_rows(300, 6)
    memory = build_memory(x, y, ids, lt, d, b, fit_scaling(x, groups=np.zeros(8, np.int16), group_names=("all",)))
    parts = [p for key, p in sorted(memory.partitions.items()) if key[1] == "DOWN"]
    assert len(parts) == 2
    merged = pooled(parts, ("*", "DOWN", -1))
    assert len(merged) == 1 and merged[0].rows == sum(p.rows for p in parts)
    for q in memory.scaling.apply(x[:25] + 0.3):
        one = nearest(merged, q[None, :], 12, skip=ids[1])
        many = nearest(parts, q[None, :], 12, skip=ids[1])
        assert one[0].tolist() == many[0].tolist()
        assert one[1].tobytes() == many[1].tobytes() and one[2].tobytes() == many[2].tobytes()
