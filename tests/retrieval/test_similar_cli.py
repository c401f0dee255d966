"""``spymaster similar`` end to end: a real lake, a real MLflow registry, the printed neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from connectors.delta.lake import Lake
from flows.cli import main
from flows.jobs.similar import find_similar
from operators.learning.classes import CLASSES
from tests.retrieval.lake_rows import Rows, split_by_session, training_rows
from tests.retrieval.registry import Registry, register_memory

pytestmark = pytest.mark.integration


@pytest.fixture(name="registered", scope="module")
def fixture_registered(multi_day_lake: Lake, registry: Registry) -> tuple[Rows, str]:
    """ES_MODEL@champion carries a memory of the 7 earliest sessions."""
    train, _ = split_by_session(training_rows(multi_day_lake), 7)
    return train, register_memory(registry.uri, registry.artifacts, "ES_MODEL", train.memory())


@pytest.fixture(autouse=True)
def _tracking(tracking_env: Registry) -> None:
    """Every test here reads the retrieval tests' registry."""


def test_similar_prints_the_neighbours_and_both_distributions(
        multi_day_lake: Lake, registered: tuple[Rows, str], capsys: pytest.CaptureFixture[str]) -> None:
    train, version = registered
    episode = str(train.ids[5])
    expected = train.memory().query(train.vectors[5:6], train.level_type[5], train.direction[5],
                                    train.time_bucket[5], k=5, exclude=[episode])[0]
    assert main(["similar", "--episode", episode, "-k", "5", "--lake", multi_day_lake.root]) == 0
    out = capsys.readouterr().out
    assert f"model ES_MODEL version {version}" in out
    words = {"partition": "bucket", "level_direction": "episodes of every time bucket",
             "direction": "episodes of every level type and time bucket"}[expected.scope]
    assert "5 nearest of " in out and words in out
    lines = [line for line in out.splitlines() if any(f" {e} " in line for e in expected.episode_ids)]
    assert len(lines) == 5
    for line, eid, dist, code in zip(lines, expected.episode_ids, expected.distances, expected.outcomes, strict=True):
        assert eid in line and f"{float(dist):.3f}" in line and CLASSES[int(code)] in line
    assert f" {episode} " not in "\n".join(lines)                  # left out of its own neighbours
    shares = " ".join(f"{s:.1%}" for s in expected.distribution)
    assert shares.split()[0] in out and "distance-weighted" in out


def test_include_self_puts_the_episode_first_at_distance_zero(
        multi_day_lake: Lake, registered: tuple[Rows, str]) -> None:
    train, version = registered
    answer = find_similar(multi_day_lake, str(train.ids[9]), version=version, k=3, include_self=True)
    assert answer.neighbours.episode_ids[0] == str(train.ids[9])
    assert answer.neighbours.distances[0] == 0.0
    assert answer.query.outcome == CLASSES[int(train.outcomes[9])]
    assert answer.rows()[0][2] == str(train.sessions[9])          # session date read back from the lake
    assert np.isclose(answer.neighbours.distribution.sum(), 1.0)


def test_unknown_episode_and_missing_model_are_one_sentence_errors(
        multi_day_lake: Lake, registered: tuple[Rows, str], capsys: pytest.CaptureFixture[str]) -> None:
    train, _ = registered
    assert main(["similar", "--episode", "no-such-episode", "--lake", multi_day_lake.root]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"spymaster similar: episode 'no-such-episode' is not in gold.setup_vectors of the lake at "
                   f"{multi_day_lake.root}")
    assert main(["similar", "--episode", str(train.ids[0]), "--model-id", "NOPE_MODEL", "--lake",
                 multi_day_lake.root]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spymaster similar: no model NOPE_MODEL with alias 'champion' is registered at sqlite:///")
    assert len(err.splitlines()) == 1


def test_a_quote_in_the_episode_id_is_a_literal_not_sql(multi_day_lake: Lake) -> None:
    from operators.errors import ConfigError

    with pytest.raises(ConfigError, match="is not in gold.setup_vectors"):
        find_similar(multi_day_lake, "x' or '1'='1", version="1")
