"""A multi-day sample exercises every level type, direction, time bucket and label."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from connectors.delta.tables import GOLD_LABELS, GOLD_TRAINING_VIEW, SILVER_LEVEL_APPROACH
from operators.vectors import VECTOR_SIZE


def test_five_days_cover_every_level_direction_bucket_and_label(tmp_path: Path, replay) -> None:
    from replay.synth import write_sample

    write_sample(tmp_path / "sample", days=5, seed=7, events_per_day=100_000)
    lake = replay([tmp_path / "sample"], tmp_path / "lake")

    episodes = lake.read(SILVER_LEVEL_APPROACH).to_pylist()
    assert set(Counter(e["level_type"] for e in episodes)) == {"PDH", "PDL", "PMH", "PML", "ORH", "ORL"}
    assert set(Counter(e["direction"] for e in episodes)) == {"UP", "DOWN"}
    assert set(Counter(e["time_bucket"] for e in episodes)) == {0, 1, 2, 3, 4}
    assert set(Counter(r["outcome"] for r in lake.read(GOLD_LABELS).to_pylist())) == {"BREAK", "REJECT", "CHOP"}
    training = lake.read(GOLD_TRAINING_VIEW)
    assert training.num_rows == len(episodes)
    assert {len(v) for v in training["feature_vector"].to_pylist()} == {VECTOR_SIZE}
