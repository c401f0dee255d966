"""One endpoint per model family: ``[scoring.endpoints.<MODEL_ID>]`` sends each family's
episodes to its own URL and deployment with its own key, and keeps keys out of files and logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.scoring import ScoringConfig
from connectors.scoring.config import Endpoint
from flows.config import load_config
from flows.scorer_pool import ScorerPool
from operators.errors import ConfigError
from tests.scoring.checks import one_each, statuses
from tests.scoring.conftest import ScoringEnv, requests
from tests.services.fault_proxy import FaultProxy


def _load(tmp_path: Path, text: str, env: dict[str, str]):
    path = tmp_path / "spymaster.toml"
    path.write_text(text)
    return load_config(env, path).scoring


ENDPOINTS = """[scoring]
backend = "azureml"
url = "https://es.westeurope.inference.ml.azure.com/score"
[scoring.endpoints.TSLA_MODEL]
url = "https://tsla.westeurope.inference.ml.azure.com/score"
deployment = "green"
key_env = "TSLA_SCORING_KEY"
"""


def test_a_familys_endpoint_is_read_with_its_key_from_the_environment_and_never_shown(tmp_path: Path) -> None:
    cfg = _load(tmp_path, ENDPOINTS, {"TSLA_SCORING_KEY": "tsla-secret", "SPYMASTER_SCORING_KEY": "es-secret"})

    tsla, es = cfg.for_model("TSLA_MODEL"), cfg.for_model("ES_MODEL")

    assert (tsla.model_id, tsla.url, tsla.deployment, tsla.key) == (
        "TSLA_MODEL", "https://tsla.westeurope.inference.ml.azure.com/score", "green", "tsla-secret")
    assert es is cfg and (es.url, es.key) == ("https://es.westeurope.inference.ml.azure.com/score", "es-secret")
    assert "tsla-secret" not in repr(cfg) + cfg.masked() and "es-secret" not in repr(cfg) + cfg.masked()


@pytest.mark.parametrize(("text", "env", "message"), [
    (ENDPOINTS, {}, r"\[scoring.endpoints.TSLA_MODEL\].key_env names TSLA_SCORING_KEY, which is not set"),
    (ENDPOINTS.replace('key_env = "TSLA_SCORING_KEY"', 'key = "x"'), {},
     r"unknown key \[scoring.endpoints.TSLA_MODEL\].key; .*keys are secrets and are not read from files"),
    (ENDPOINTS.replace('key_env = "TSLA_SCORING_KEY"', 'key_secret = "tsla"'), {},
     r"key_secret needs SPYMASTER_KEYVAULT or SPYMASTER_SCORING_KEY_VAULT"),
    (ENDPOINTS.replace("https://tsla", "ftp://tsla"), {"TSLA_SCORING_KEY": "k"}, r"is not an http\(s\) URL"),
])
def test_an_endpoint_that_cannot_work_is_refused_in_one_sentence(tmp_path: Path, text: str, env: dict[str, str],
                                                                  message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text, env)


@pytest.fixture(name="proxies")
def fixture_proxies(scoring_env: ScoringEnv) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """Two endpoints in front of the same served model, each counting what reaches it."""
    es, tsla = FaultProxy(scoring_env.azureml.base_url), FaultProxy(scoring_env.azureml.base_url)
    yield es, tsla
    es.close()
    tsla.close()


def test_each_family_is_sent_to_its_own_endpoint_with_its_own_key(proxies: tuple[FaultProxy, FaultProxy]) -> None:
    es, tsla = proxies
    cfg = ScoringConfig(backend="azureml", url=f"{es.base_url}/score", key="es-key", deployment="blue",
                        served_version="1",
                        endpoints=(Endpoint(model_id="TSLA_MODEL", url=f"{tsla.base_url}/score", deployment="green",
                                            key="tsla-key"),))
    pool = ScorerPool()
    try:
        es_batch, tsla_batch = requests(3), requests(2, model_id="TSLA_MODEL", prefix="tsla")
        es_results = pool.score(cfg.for_model("ES_MODEL"), es_batch)
        tsla_results = pool.score(cfg.for_model("TSLA_MODEL"), tsla_batch)
        nq_results = pool.score(cfg.for_model("NQ_MODEL"), requests(1, model_id="NQ_MODEL", prefix="nq"))
    finally:
        pool.close()

    one_each(es_batch, es_results)
    one_each(tsla_batch, tsla_results)
    assert statuses(es_results) == ["ok"] * 3 and statuses(tsla_results) == ["ok"] * 2
    assert (es.requests, tsla.requests) == (1, 1)
    sent = [{k.lower(): v for k, v in p.headers[0].items()} for p in (es, tsla)]
    assert [(h["authorization"], h["azureml-model-deployment"]) for h in sent] == [
        ("Bearer es-key", "blue"), ("Bearer tsla-key", "green")]
    assert statuses(nq_results) == ["no_model"]  # a family with no endpoint of its own is told so
    assert nq_results[0].detail == "endpoint serves ES_MODEL, not NQ_MODEL"
