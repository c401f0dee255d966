"""One resolver for every secret: the environment first, then Key Vault with the managed identity.

The vault and the identity endpoint are stand-ins of their REST protocols (``tests.services.keyvault``);
``DefaultAzureCredential`` finds the identity the way it does on App Service (IDENTITY_ENDPOINT and
IDENTITY_HEADER), so the credential is the real one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.databento_live import api_key
from connectors.scoring import ScoringConfig
from connectors.secrets import SECRETS, SecretEnv
from flows.config import load_config
from operators.errors import ConfigError
from tests.services.keyvault import IDENTITY_HEADER, TOKEN, Vault, keyvault

EVENTHUBS = "Endpoint=sb://spy-ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ=="
DATABENTO = "db-TEST-KEY"
SCORING = "endpoint-key-of-es-model"


@pytest.fixture(name="vault")
def fixture_vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[Vault]:
    with keyvault({"eventhubs-connection-string": EVENTHUBS, "databento-api-key": DATABENTO,
                   "es-endpoint-key": SCORING}) as vault:
        monkeypatch.setenv("IDENTITY_ENDPOINT", vault.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
        for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
            monkeypatch.delenv(name, raising=False)
        yield vault


def test_unset_secrets_are_read_once_from_the_vault_with_the_managed_identity(vault: Vault) -> None:
    env = SecretEnv({"SPYMASTER_KEYVAULT": vault.url, "SPYMASTER_KEYVAULT_SPYMASTER_SCORING_KEY": "es-endpoint-key"})
    assert env.get("EVENTHUBS_CONNECTION_STRING") == EVENTHUBS
    assert api_key(env) == DATABENTO
    assert env.get("SPYMASTER_SCORING_KEY") == SCORING  # under the name the deployment chose
    assert env.get("AZURE_CLIENT_SECRET") is None  # the vault holds none: unset, as without a vault
    assert env.get("SPYMASTER_LAKE") is None  # not a secret: never asked of the vault
    assert env.get("EVENTHUBS_CONNECTION_STRING") == EVENTHUBS  # read once per process
    assert [path for path, _ in vault.requests] == [
        "/secrets/eventhubs-connection-string?api-version=7.4", "/secrets/databento-api-key?api-version=7.4",
        "/secrets/es-endpoint-key?api-version=7.4", "/secrets/eventhouse-client-secret?api-version=7.4"]
    assert {auth for _, auth in vault.requests} == {f"Bearer {TOKEN}"} and vault.tokens >= 1
    shown = repr(env)
    assert all(secret not in shown for secret in (EVENTHUBS, DATABENTO, SCORING)) and "3 secrets" in shown
    assert set(SECRETS) == {"DATABENTO_API_KEY", "EVENTHUBS_CONNECTION_STRING", "AZURE_CLIENT_SECRET",
                            "SPYMASTER_SCORING_KEY"}


def test_a_variable_that_is_set_wins_and_the_vault_is_not_asked(vault: Vault) -> None:
    env = SecretEnv({"SPYMASTER_KEYVAULT": vault.url, "DATABENTO_API_KEY": "db-from-the-environment"})
    assert api_key(env) == "db-from-the-environment"
    assert "EVENTHUBS_CONNECTION_STRING" not in env  # asking whether it is set never reaches the vault
    assert vault.requests == []


def test_the_application_config_and_the_scorer_read_their_secrets_through_the_resolver(vault: Vault) -> None:
    cfg = load_config({"SPYMASTER_KEYVAULT": vault.url, "SPYMASTER_INPUT": "eventhubs://spy-ns/mbo_raw"})
    assert cfg.source.eventhubs_connection == EVENTHUBS
    assert EVENTHUBS not in repr(cfg) and "SharedAccessKey" not in repr(cfg)
    endpoint = {"SPYMASTER_SCORING_BACKEND": "azureml", "SPYMASTER_SCORING_URL": "https://es.westeurope.inference.ml"
                ".azure.com/score", "SPYMASTER_KEYVAULT": vault.url}
    scoring = ScoringConfig.from_env({**endpoint, "SPYMASTER_KEYVAULT_SPYMASTER_SCORING_KEY": "es-endpoint-key"})
    assert scoring.key == SCORING and SCORING not in scoring.masked()
    asked = len(vault.requests)
    assert ScoringConfig.from_env({"SPYMASTER_KEYVAULT": vault.url}).key is None  # the in-process model: no key
    assert len(vault.requests) == asked  # ... and the vault was not asked for one


def test_a_vault_that_refuses_or_is_unreachable_is_one_sentence_without_the_secret(
        vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    class WrongToken:
        def get_token(self, *_scopes: str) -> object:
            from azure.core.credentials import AccessToken

            return AccessToken("not-the-identity", 0)

    env = SecretEnv({"SPYMASTER_KEYVAULT": vault.url}, credential=WrongToken())
    with pytest.raises(ConfigError, match="Key Vault answered 403 for secret 'eventhubs-connection-string'") as err:
        env.get("EVENTHUBS_CONNECTION_STRING")
    assert EVENTHUBS not in str(err.value)
    gone = SecretEnv({"SPYMASTER_KEYVAULT": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="unreachable"):
        gone.get("DATABENTO_API_KEY")
    with pytest.raises(ConfigError, match="must look like"):
        SecretEnv({"SPYMASTER_KEYVAULT": "http://kv1.vault.azure.net"}).get("DATABENTO_API_KEY")


def test_a_missing_secret_is_one_sentence_naming_it_and_where_it_was_looked_for(
        vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.kafka.eventhubs import parse_connection_string

    env = SecretEnv({"SPYMASTER_KEYVAULT": vault.url, "SPYMASTER_KEYVAULT_DATABENTO_API_KEY": "live-key"})
    with pytest.raises(ConfigError) as err:
        api_key(env)  # the vault holds no secret live-key
    assert str(err.value) == (f"the Databento API key is missing (looked for in the environment (DATABENTO_API_KEY) "
                              f"and in Key Vault {vault.url} (secret 'live-key')); it starts with 'db-'")
    with pytest.raises(ConfigError) as err:
        api_key({})
    assert "or set SPYMASTER_KEYVAULT to read secret 'databento-api-key' from Key Vault" in str(err.value)
    monkeypatch.setenv("SPYMASTER_KEYVAULT", vault.url)
    with pytest.raises(ConfigError, match=r"Key Vault .* \(secret 'eventhubs-connection-string'\)") as err:
        parse_connection_string("")
    assert "\n" not in str(err.value)
