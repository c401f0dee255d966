"""mlflow-http against a real ``mlflow models serve``, azureml against a real ``azmlinfsrv`` running
``infra/azureml/score.py``: on the same vectors they answer what ``local`` answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from connectors.scoring import ScoringConfig, make_scorer
from connectors.scoring.wire import azureml_adapter, mlflow_http_adapter
from operators.vectors import VECTOR_NAMES, VECTOR_SIZE
from tests.scoring.checks import one_each, probs, statuses
from tests.scoring.conftest import ScoringEnv, requests
from tests.services.fault_proxy import FaultProxy
from tests.typed import one


@pytest.fixture(name="local_probs")
def fixture_local_probs(scoring_env: ScoringEnv) -> np.ndarray:
    results = make_scorer(ScoringConfig(backend="local")).score(requests(16))
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
