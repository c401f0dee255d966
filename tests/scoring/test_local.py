"""The in-process backend against a real registered model in a real (SQLite) MLflow registry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from connectors.scoring import ScoringConfig, make_scorer
from operators.learning.frame import vectors_matrix
from operators.vectors import VECTOR_NAMES
from tests.scoring.checks import one_each, probs, statuses
from tests.scoring.conftest import (
    MODEL_ID,
    OLD_REGISTRY,
    TAGGED_ID,
    ScoringEnv,
    TaggedVersions,
    requests,
    stale_detail,
)


def _pyfunc_probs(tracking_uri: str, version: str, vectors: np.ndarray, model_id: str = MODEL_ID) -> np.ndarray:
    """What ``mlflow.pyfunc`` itself answers (schema enforced): the reference for every backend."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{model_id}/{version}")
    return np.asarray(model.predict(vectors_matrix(vectors)), dtype=np.float64)


def test_local_scores_with_the_champion_like_pyfunc(scoring_env: ScoringEnv) -> None:
    batch = requests(12)
    scorer = make_scorer(ScoringConfig(backend="local"))
    results = scorer.score(batch)
    one_each(batch, results)
    assert statuses(results) == ["ok"] * 12
    assert {r.model_version for r in results} == {scoring_env.version}
    assert {r.attempts for r in results} == {1}
    expected = _pyfunc_probs(scoring_env.tracking_uri, scoring_env.version, np.stack([q.vector for q in batch]))
    np.testing.assert_allclose(probs(results), expected, rtol=1e-12, atol=1e-15)
    assert len(set(map(tuple, probs(results).round(6)))) == 12      # the rows really differ
    single = scorer.score(batch[3:4])                                # batch size does not change the numbers
    np.testing.assert_allclose(probs(single), expected[3:4], rtol=1e-12, atol=1e-15)
    scorer.close()


def test_local_says_no_model_per_request_and_model_error_for_bad_input(scoring_env: ScoringEnv) -> None:
    good = requests(3)
    nan = replace(good[1], episode_id="nan", vector=np.full_like(good[1].vector, np.nan))
    short = replace(good[2], episode_id="short", vector=good[2].vector[:10])
    other = requests(2, model_id="NQ_MODEL", prefix="nq")
    batch = [good[0], other[0], nan, short, other[1], good[2]]
    results = make_scorer(ScoringConfig(backend="local")).score(batch)
    one_each(batch, results)
    assert statuses(results) == ["ok", "no_model", "model_error", "model_error", "no_model", "ok"]
    assert "no version of NQ_MODEL has alias 'champion'" in results[1].detail and results[1].attempts == 0
    assert results[2].detail.startswith("predict raised ValueError") and results[2].model_version == scoring_env.version
    assert "shape (10,)" in results[3].detail and results[3].attempts == 0


def test_local_follows_the_alias_after_refresh(scoring_env: ScoringEnv) -> None:
    """The alias ``challenger`` appears, then moves to a new version: a scorer that re-reads it in
    line does so at most every ``refresh_s`` (injected clock) and scores with the version it names."""
    from mlflow import MlflowClient

    from tests.learning.models import register_tiny_model

    now = [0.0]
    cfg = ScoringConfig(backend="local", alias="challenger", refresh_s=5.0)
    scorer = make_scorer(cfg, clock=lambda: now[0], follow=False)
    batch = requests(4, seed=11)
    assert statuses(scorer.score(batch)) == ["no_model"] * 4
    client = MlflowClient(tracking_uri=scoring_env.tracking_uri, registry_uri=scoring_env.tracking_uri)
    client.set_registered_model_alias(MODEL_ID, "challenger", scoring_env.version)
    now[0] = 4.9
    assert statuses(scorer.score(batch)) == ["no_model"] * 4          # not re-read yet
    now[0] = 5.0
    first = scorer.score(batch)
    assert {r.model_version for r in first} == {scoring_env.version} and statuses(first) == ["ok"] * 4
    new = register_tiny_model(scoring_env.tracking_uri, MODEL_ID, seed=5, alias="challenger")
    assert new != scoring_env.version
    now[0] = 9.0
    assert {r.model_version for r in scorer.score(batch)} == {scoring_env.version}
    now[0] = 10.0
    moved = scorer.score(batch)
    one_each(batch, moved)
    assert {r.model_version for r in moved} == {new} and statuses(moved) == ["ok"] * 4
    vectors = np.stack([q.vector for q in batch])
    np.testing.assert_allclose(probs(moved), _pyfunc_probs(scoring_env.tracking_uri, new, vectors), rtol=1e-12,
                               atol=1e-15)
    assert not np.allclose(probs(moved), probs(first))
    client.delete_registered_model_alias(MODEL_ID, "challenger")
    now[0] = 15.0
    assert statuses(scorer.score(batch)) == ["no_model"] * 4          # alias gone: nothing is champion


def test_local_follows_the_alias_on_its_own_thread_and_never_reads_the_registry_while_scoring(
        scoring_env: ScoringEnv) -> None:
    """The default: after the first sight of a model id, the alias is re-read (and a new version
    loaded) by the follower thread, so a score never waits for the registry; the move to a new
    version still shows within a few refreshes, with that version's numbers."""
    import threading
    import time

    from mlflow import MlflowClient

    from connectors.mlflow.tracking import ModelVersionRef
    from connectors.scoring.local import load_predictor, resolve_alias
    from tests.learning.models import register_tiny_model

    where: list[str] = []

    def resolver(model_id: str, alias: str) -> ModelVersionRef | None:
        where.append(threading.current_thread().name)
        return resolve_alias(model_id, alias)

    def loader(model_id: str, version: str):
        where.append(threading.current_thread().name)
        return load_predictor(model_id, version)

    client = MlflowClient(tracking_uri=scoring_env.tracking_uri, registry_uri=scoring_env.tracking_uri)
    client.set_registered_model_alias(MODEL_ID, "follower", scoring_env.version)
    scorer = make_scorer(ScoringConfig(backend="local", alias="follower", refresh_s=0.2), resolver=resolver,
                         loader=loader)
    try:
        batch = requests(4, seed=12)
        first = scorer.score(batch)
        assert {r.model_version for r in first} == {scoring_env.version} and statuses(first) == ["ok"] * 4
        assert set(where) == {threading.current_thread().name}       # the first sight loads in line
        where.clear()
        new = register_tiny_model(scoring_env.tracking_uri, MODEL_ID, seed=6, alias="follower")
        deadline = time.monotonic() + 30
        moved = scorer.score(batch)
        while {r.model_version for r in moved} != {new} and time.monotonic() < deadline:
            time.sleep(0.05)
            moved = scorer.score(batch)
        assert {r.model_version for r in moved} == {new} and statuses(moved) == ["ok"] * 4
        vectors = np.stack([q.vector for q in batch])
        np.testing.assert_allclose(probs(moved), _pyfunc_probs(scoring_env.tracking_uri, new, vectors), rtol=1e-12,
                                   atol=1e-15)
        assert where and set(where) == {"alias-follower"}, where     # never on the scoring thread
    finally:
        scorer.close()
        client.delete_registered_model_alias(MODEL_ID, "follower")


def test_local_scores_a_named_column_model_through_pyfunc(scoring_env: ScoringEnv) -> None:
    """A version logged before the tensor contract (fitted on 144 named columns, named signature)
    takes the pyfunc fallback with a frame of ``VECTOR_NAMES``; the registered tiny model (tensor
    signature) takes the direct path. Both answer what ``pyfunc.predict`` answers."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from connectors.mlflow.registry import pip_requirements, trusted_types
    from connectors.mlflow.tracking import use_experiment
    from connectors.scoring.local import vector_tensor_type
    from operators.learning.models import make_pipeline
    from tests.learning.models import tiny_training_set

    rows = tiny_training_set(9)
    frame = pd.DataFrame(rows.vectors.astype(np.float64), columns=list(VECTOR_NAMES))
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, 0).fit(frame, rows.outcomes)
    use_experiment("OLD_MODEL-tests", scoring_env.tracking_uri)
    with mlflow.start_run(run_name="named-columns"):
        info = mlflow.sklearn.log_model(pipeline, name="model", registered_model_name="OLD_MODEL",
                                        signature=infer_signature(frame[:2], pipeline.predict_proba(frame[:2])),
                                        pyfunc_predict_fn="predict_proba", serialization_format="skops",
                                        skops_trusted_types=trusted_types(pipeline),
                                        pip_requirements=pip_requirements())
    MlflowClient().set_registered_model_alias("OLD_MODEL", "champion", str(info.registered_model_version))
    old = mlflow.pyfunc.load_model("models:/OLD_MODEL@champion")
    new = mlflow.pyfunc.load_model(f"models:/{MODEL_ID}/{scoring_env.version}")
    batch = requests(5, model_id="OLD_MODEL")
    results = make_scorer(ScoringConfig(backend="local", model_id="OLD_MODEL")).score(batch)
    vectors = np.stack([q.vector for q in batch]).astype(np.float64)

    assert vector_tensor_type(old.metadata.get_input_schema()) is None
    assert vector_tensor_type(new.metadata.get_input_schema()) == np.dtype("float64")
    assert statuses(results) == ["ok"] * 5
    want = np.asarray(old.predict(pd.DataFrame(vectors, columns=list(VECTOR_NAMES))), dtype=np.float64)
    np.testing.assert_allclose(probs(results), want, rtol=1e-12, atol=1e-15)


def test_local_answers_stale_model_for_a_champion_of_an_older_feature_registry(scoring_env: ScoringEnv,
                                                                              tagged: TaggedVersions) -> None:
    """``ES_TAGGED``'s champion was trained on registry 1.0.0: its requests get ``stale_model`` and no
    numbers; ``ES_MODEL``'s champion (this code's registry) in the same batch scores as usual."""
    from connectors.mlflow.tracking import champion_version
    from connectors.scoring.local import LocalScorer
    from operators.features.registry import REGISTRY_VERSION
    from tests.typed import present

    old, current = requests(3, model_id=TAGGED_ID, prefix="old"), requests(2)
    batch = [old[0], current[0], old[1], old[2], current[1]]
    scorer = LocalScorer(ScoringConfig(backend="local", model_id=TAGGED_ID))
    results = scorer.score(batch)

    assert REGISTRY_VERSION != OLD_REGISTRY
    assert [present(champion_version(m)).registry_version for m in (TAGGED_ID, MODEL_ID)] == [
        OLD_REGISTRY, REGISTRY_VERSION]
    one_each(batch, results)
    assert statuses(results) == ["stale_model", "ok", "stale_model", "stale_model", "ok"]
    stale = [results[i] for i in (0, 2, 3)]
    assert [(r.probabilities, r.model_version, r.attempts) for r in stale] == [(None, tagged.stale, 0)] * 3
    assert {r.detail for r in stale} == {stale_detail(TAGGED_ID, tagged.stale)}
    assert f"registry {OLD_REGISTRY}, this code builds {REGISTRY_VERSION}" in stale[0].detail
    assert {results[1].model_version, results[4].model_version} == {scoring_env.version}
    assert scorer.prepare(TAGGED_ID) is None and scorer.version(TAGGED_ID) is None      # never loaded
    scorer.close()


def test_local_scores_a_version_without_the_registry_tag(scoring_env: ScoringEnv, tagged: TaggedVersions) -> None:
    from connectors.mlflow.tracking import champion_version

    batch = requests(6, model_id=TAGGED_ID)
    scorer = make_scorer(ScoringConfig(backend="local", model_id=TAGGED_ID, alias="by_hand"))
    results = scorer.score(batch)

    ref = champion_version(TAGGED_ID, "by_hand")
    assert ref is not None and ref.registry_version is None
    one_each(batch, results)
    assert statuses(results) == ["ok"] * 6 and {r.model_version for r in results} == {tagged.by_hand}
    expected = _pyfunc_probs(scoring_env.tracking_uri, tagged.by_hand, np.stack([q.vector for q in batch]), TAGGED_ID)
    np.testing.assert_allclose(probs(results), expected, rtol=1e-12, atol=1e-15)
    scorer.close()


def test_local_follows_the_alias_onto_a_stale_version_and_off_it(scoring_env: ScoringEnv,
                                                                 tagged: TaggedVersions) -> None:
    """The alias moves from the untagged version to the old-registry one and back: the scorer stops
    scoring at the refresh that sees the move, never loads the stale version, and scores again after."""
    from mlflow import MlflowClient

    from connectors.scoring.local import load_predictor

    loads: list[str] = []

    def loader(model_id: str, version: str):
        loads.append(version)
        return load_predictor(model_id, version)

    client = MlflowClient(tracking_uri=scoring_env.tracking_uri, registry_uri=scoring_env.tracking_uri)
    client.set_registered_model_alias(TAGGED_ID, "moving", tagged.by_hand)
    now = [0.0]
    scorer = make_scorer(ScoringConfig(backend="local", model_id=TAGGED_ID, alias="moving", refresh_s=5.0),
                         clock=lambda: now[0], follow=False, loader=loader)
    batch = requests(3, model_id=TAGGED_ID)
    try:
        first = scorer.score(batch)
        client.set_registered_model_alias(TAGGED_ID, "moving", tagged.stale)
        now[0] = 5.0
        stale = scorer.score(batch)
        now[0] = 10.0
        still = scorer.score(batch)
        client.set_registered_model_alias(TAGGED_ID, "moving", tagged.by_hand)
        now[0] = 15.0
        back = scorer.score(batch)
    finally:
        scorer.close()
        client.delete_registered_model_alias(TAGGED_ID, "moving")

    assert statuses(first) == statuses(back) == ["ok"] * 3
    np.testing.assert_array_equal(probs(back), probs(first))
    assert [(r.status, r.model_version, r.probabilities) for r in stale + still] == [
        ("stale_model", tagged.stale, None)] * 6
    assert stale[0].detail == stale_detail(TAGGED_ID, tagged.stale)
    assert loads == [tagged.by_hand, tagged.by_hand]                  # the stale version is never loaded
