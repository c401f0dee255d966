"""ScoringConfig validation, environment names, the secret never shown, and the Key Vault REST read."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from connectors.keyvault import fetch_secret, vault_scope
from connectors.scoring import ScoringConfig, make_scorer
from operators.errors import ConfigError

SECRET = "s3cret-endpoint-key-0123"


def test_defaults_match_the_contract() -> None:
    cfg = ScoringConfig()
    assert (cfg.backend, cfg.model_id, cfg.alias, cfg.timeout_s, cfg.retries, cfg.backoff_s,
            cfg.breaker_failures, cfg.breaker_reset_s, cfg.refresh_s) == (
        "local", "ES_MODEL", "champion", 2.0, 2, 0.05, 5, 5.0, 1.0)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"backend": "grpc"}, "unknown"),
    ({"backend": "azureml"}, "needs a URL"),
    ({"backend": "mlflow-http", "url": "ftp://host/x"}, r"not an http\(s\) URL"),
    ({"timeout_s": 0}, "timeout_s must be positive"),
    ({"retries": -1}, "retries must be zero or positive"),
    ({"breaker_failures": 0}, "breaker_failures must be at least 1"),
    ({"model_id": ""}, "must not be empty"),
])
def test_bad_values_are_one_sentence_config_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        ScoringConfig(**kwargs)


def test_key_never_shows_in_repr_masked_or_errors() -> None:
    cfg = ScoringConfig(backend="azureml", url="https://e.westeurope.inference.ml.azure.com/score", key=SECRET)
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    assert SECRET not in cfg.masked() and "key=***" in cfg.masked()
    with pytest.raises(ConfigError) as err:
        ScoringConfig(backend="azureml", url="nope", key=SECRET)
    assert SECRET not in str(err.value)


def test_from_env_reads_our_names_then_azureml_fallbacks() -> None:
    cfg = ScoringConfig.from_env({
        "SPYMASTER_SCORING_BACKEND": "azureml", "AZUREML_SCORING_URI": "https://a.inference.ml.azure.com/score",
        "AZUREML_API_KEY": SECRET, "AZUREML_MODEL_DEPLOYMENT": "blue", "SPYMASTER_SCORING_RETRIES": "4",
        "SPYMASTER_SCORING_TIMEOUT_S": "0.5", "SPYMASTER_SCORING_SERVED_VERSION": "3"})
    assert (cfg.url, cfg.key, cfg.deployment, cfg.retries, cfg.timeout_s, cfg.served_version) == (
        "https://a.inference.ml.azure.com/score", SECRET, "blue", 4, 0.5, "3")
    ours = ScoringConfig.from_env({"SPYMASTER_SCORING_BACKEND": "mlflow-http", "SPYMASTER_SCORING_URL": "http://h:1",
                                   "AZUREML_SCORING_URI": "https://other/score"})
    assert ours.url == "http://h:1" and ours.key is None
    assert ScoringConfig.from_env({}) == ScoringConfig()
    with pytest.raises(ConfigError, match="SPYMASTER_SCORING_RETRIES"):
        ScoringConfig.from_env({"SPYMASTER_SCORING_RETRIES": "many"})
    with pytest.raises(ConfigError, match="both"):
        ScoringConfig.from_env({"SPYMASTER_SCORING_KEY_VAULT": "https://v.vault.azure.net"})


def test_off_has_no_scorer() -> None:
    with pytest.raises(ConfigError, match="enabled"):
        make_scorer(ScoringConfig(backend="off"))


class _Vault(BaseHTTPRequestHandler):
    """A stand-in for Key Vault's REST endpoint: one secret, readable with the right bearer token."""

    seen: list[tuple[str, str]] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        _Vault.seen.append((self.path, self.headers.get("Authorization", "")))
        ok = self.path == "/secrets/scoring-key?api-version=7.4" and self.headers["Authorization"] == "Bearer tok-1"
        body = json.dumps({"value": SECRET, "id": "x"} if ok else {"error": {"code": "Forbidden"}}).encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(name="vault")
def fixture_vault() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Vault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Vault.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, scope: str) -> SimpleNamespace:
        self.scopes.append(scope)
        return SimpleNamespace(token="tok-1", expires_on=0)


def test_key_vault_secret_is_read_with_a_bearer_token(vault: str) -> None:
    credential = _Credential()
    assert fetch_secret(vault, "scoring-key", credential=credential) == SECRET
    assert credential.scopes == ["https://vault.azure.net/.default"]
    assert _Vault.seen == [("/secrets/scoring-key?api-version=7.4", "Bearer tok-1")]
    with pytest.raises(ConfigError, match="403") as err:
        fetch_secret(vault, "other", credential=credential)
    assert SECRET not in str(err.value)
    assert vault_scope("https://kv1.vault.azure.cn") == "https://vault.azure.cn/.default"
    with pytest.raises(ConfigError, match="must look like"):
        fetch_secret("http://kv1.vault.azure.net", "x", credential=credential)
