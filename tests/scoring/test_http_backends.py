"""mlflow-http against a real ``mlflow models serve``, azureml against a real ``azmlinfsrv`` running
``infra/azureml/score.py``: on the same vectors they answer what ``local`` answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from connectors.scoring import ScoringConfig, make_scorer
from connectors.scoring.wire import azureml_adapter, mlflow_http_adapter
from operators.vectors import VECTOR_NAMES, VECTOR_SIZE
from tests.scoring.checks import one_each, probs, statuses
from tests.scoring.conftest import TAGGED_ID, ScoringEnv, TaggedVersions, requests, stale_detail
from tests.services.fault_proxy import FaultProxy
from tests.typed import one


@pytest.fixture(name="local_probs")
def fixture_local_probs(scoring_env: ScoringEnv) -> np.ndarray:
    scorer = make_scorer(ScoringConfig(backend="local"))
    results = scorer.score(requests(16))
    scorer.close()                                  # its alias follower would outlive the test
    assert statuses(results) == ["ok"] * 16
    return probs(results)


def test_wire_bodies_carry_the_vector_as_one_feature_vector_cell() -> None:
    vectors = np.stack([q.vector for q in requests(3)])
    data = vectors.tolist()
    mlflow_body = json.loads(mlflow_http_adapter().body(data))
    azureml_body = json.loads(azureml_adapter().body(data))

    assert list(mlflow_body) == ["dataframe_split"] and list(azureml_body) == ["input_data"]
    assert mlflow_body["dataframe_split"]["columns"] == azureml_body["input_data"]["columns"] == ["feature_vector"]
    assert azureml_body["input_data"]["index"] == [0, 1, 2]
    for split in (mlflow_body["dataframe_split"], azureml_body["input_data"]):
        assert [len(row) for row in split["data"]] == [1, 1, 1]               # one cell per row: the vector
        sent = np.array([row[0] for row in split["data"]], dtype=np.float64)
        np.testing.assert_array_equal(sent, vectors.astype(np.float64))      # float32 → float64, exactly


def test_mlflow_http_gives_the_local_probabilities(scoring_env: ScoringEnv, local_probs: np.ndarray) -> None:
    batch = requests(16)
    scorer = make_scorer(ScoringConfig(backend="mlflow-http", url=scoring_env.mlflow.base_url))
    results = scorer.score(batch)
    one_each(batch, results)
    assert statuses(results) == ["ok"] * 16 and {r.attempts for r in results} == {1}
    assert {r.model_version for r in results} == {scoring_env.version}      # resolved from the registry alias
    np.testing.assert_allclose(probs(results), local_probs, rtol=1e-12, atol=1e-15)
    again = scorer.score(batch[5:6])                                         # kept-alive connection reused
    np.testing.assert_allclose(probs(again), local_probs[5:6], rtol=1e-12, atol=1e-15)
    scorer.close()


def test_azureml_gives_the_local_probabilities(scoring_env: ScoringEnv, local_probs: np.ndarray) -> None:
    batch = requests(16)
    cfg = ScoringConfig(backend="azureml", url=f"{scoring_env.azureml.base_url}/score", served_version="7")
    results = make_scorer(cfg).score(batch)
    one_each(batch, results)
    assert statuses(results) == ["ok"] * 16
    assert {r.model_version for r in results} == {"7"}                       # served_version wins when given
    np.testing.assert_allclose(probs(results), local_probs, rtol=1e-12, atol=1e-15)


def _post(url: str, body: object) -> tuple[int, object]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1 test server
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_azureml_script_also_reads_named_columns_and_bare_lists(scoring_env: ScoringEnv,
                                                                local_probs: np.ndarray) -> None:
    """The 144-column split (any column order; names from the MLmodel file) and a bare list of
    vectors give the numbers of the one-column form; anything else is a 400 that says why."""
    url = f"{scoring_env.azureml.base_url}/score"
    vectors = np.stack([q.vector for q in requests(16)]).astype(np.float64)
    order = np.random.default_rng(1).permutation(VECTOR_SIZE)
    named = {"columns": [VECTOR_NAMES[i] for i in order], "index": list(range(16)), "data": vectors[:, order].tolist()}
    wrong = {"columns": ["vector"], "data": [[v] for v in vectors.tolist()]}
    short = {"columns": ["feature_vector"], "data": [[v[:10]] for v in vectors.tolist()]}

    for body in ({"input_data": named}, {"input_data": vectors.tolist()}):
        code, answer = _post(url, body)
        assert code == 200
        np.testing.assert_allclose(np.asarray(answer), local_probs, rtol=1e-12, atol=1e-15)
    code, answer = _post(url, {"input_data": wrong})
    message = one(dict, answer)["message"]
    assert code == 400 and "'columns' must be ['feature_vector'] or the model's 144 feature names" in message
    code, answer = _post(url, {"input_data": short})
    assert code == 400 and "one vector of 144 values, got shape (16, 10)" in one(dict, answer)["message"]


@pytest.fixture(name="azureml_proxy")
def fixture_azureml_proxy(scoring_env: ScoringEnv) -> Iterator[FaultProxy]:
    proxy = FaultProxy(scoring_env.azureml.base_url)
    yield proxy
    proxy.close()


def test_azureml_sends_key_and_deployment_and_refuses_other_models(azureml_proxy: FaultProxy) -> None:
    cfg = ScoringConfig(backend="azureml", url=f"{azureml_proxy.base_url}/score", key="k-123", deployment="blue",
                        served_version="1")
    scorer = make_scorer(cfg)
    batch = requests(2) + requests(1, model_id="NQ_MODEL", prefix="nq")
    results = scorer.score(batch)
    one_each(batch, results)
    assert statuses(results) == ["ok", "ok", "no_model"]
    assert results[2].detail == "endpoint serves ES_MODEL, not NQ_MODEL" and results[2].attempts == 0
    assert azureml_proxy.requests == 1
    headers = {k.lower(): v for k, v in azureml_proxy.headers[0].items()}
    assert headers["authorization"] == "Bearer k-123"
    assert headers["azureml-model-deployment"] == "blue"
    assert headers["content-type"] == "application/json"
    assert statuses(scorer.score(requests(1, model_id="NQ_MODEL"))) == ["no_model"]
    assert azureml_proxy.requests == 1                                       # nothing to send, nothing sent


def test_azureml_script_answers_400_for_a_body_it_cannot_read(scoring_env: ScoringEnv) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{scoring_env.azureml.base_url}/score", data=b'{"dataframe_split": {}}',
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert err.value.code == 400
    assert "input_data" in err.value.read().decode()


def test_a_model_that_raises_on_the_server_is_an_http_error(scoring_env: ScoringEnv) -> None:
    """NaN reaches the model (JSON carries it), which raises: azmlinfsrv answers 500, not retried."""
    from dataclasses import replace

    batch = requests(2)
    batch[1] = replace(batch[1], vector=np.full_like(batch[1].vector, np.nan))
    cfg = ScoringConfig(backend="azureml", url=f"{scoring_env.azureml.base_url}/score", served_version="1")
    results = make_scorer(cfg).score(batch)
    one_each(batch, results)
    assert statuses(results) == ["http_error"] * 2 and {r.attempts for r in results} == {1}
    assert results[0].detail.startswith("500 ")


def _server_url(env: ScoringEnv, backend: str) -> str:
    return env.mlflow.base_url if backend == "mlflow-http" else env.azureml.base_url


@pytest.mark.parametrize("backend", ["mlflow-http", "azureml"])
def test_http_answers_stale_model_and_sends_nothing_for_an_older_registry_champion(
        scoring_env: ScoringEnv, tagged: TaggedVersions, backend: str) -> None:
    """The alias resolves to a version trained on registry 1.0.0: every request is ``stale_model``,
    the server is never asked (the proxy counts what reaches it)."""
    proxy = FaultProxy(_server_url(scoring_env, backend))
    url = proxy.base_url if backend == "mlflow-http" else f"{proxy.base_url}/score"
    scorer = make_scorer(ScoringConfig(backend=backend, url=url, model_id=TAGGED_ID))
    batch = requests(4, model_id=TAGGED_ID)
    try:
        version = scorer.prepare(TAGGED_ID)
        results = scorer.score(batch)
    finally:
        scorer.close()
        proxy.close()

    one_each(batch, results)
    assert version == tagged.stale
    assert statuses(results) == ["stale_model"] * 4
    assert {(r.probabilities, r.model_version, r.attempts) for r in results} == {(None, tagged.stale, 0)}
    assert {r.detail for r in results} == {stale_detail(TAGGED_ID, tagged.stale)}
    assert proxy.requests == 0


@pytest.mark.parametrize("backend", ["mlflow-http", "azureml"])
def test_http_scores_when_the_served_version_has_no_registry_tag_is_configured_or_unknown(
        scoring_env: ScoringEnv, tagged: TaggedVersions, local_probs: np.ndarray, backend: str) -> None:
    """Sent as before: a version registered without the tag; any request when ``served_version`` is
    configured (the registry is not asked, though its champion is stale); and when the alias names
    nothing (version unknown). The servers serve ``ES_MODEL``'s files, so the numbers are ``local``'s."""
    url = _server_url(scoring_env, backend) + ("" if backend == "mlflow-http" else "/score")
    cfg = ScoringConfig(backend=backend, url=url, model_id=TAGGED_ID)
    scorers = {"by_hand": make_scorer(replace(cfg, alias="by_hand")),
               "configured": make_scorer(replace(cfg, served_version="9")),
               "unknown": make_scorer(replace(cfg, alias="nowhere"))}
    batch = requests(16, model_id=TAGGED_ID)
    try:
        results = {name: scorer.score(batch) for name, scorer in scorers.items()}
    finally:
        for scorer in scorers.values():
            scorer.close()

    for name, want_version in (("by_hand", tagged.by_hand), ("configured", "9"), ("unknown", None)):
        one_each(batch, results[name])
        assert statuses(results[name]) == ["ok"] * 16, name
        assert {r.model_version for r in results[name]} == {want_version}
        np.testing.assert_allclose(probs(results[name]), local_probs, rtol=1e-12, atol=1e-15)
