"""Every secret Spymaster reads, from the environment or from Azure Key Vault, through one resolver.

The secrets are environment variables (``SECRETS``): the Databento API key, the Event Hubs
connection string, the Eventhouse application's client secret and the scoring endpoint's key.
Set, a variable wins. Unset, and with ``SPYMASTER_KEYVAULT=https://<vault>.vault.azure.net``, it
is read from that vault on first use — secret ``SECRETS[name]`` (``eventhubs-connection-string``
...), or the name in ``SPYMASTER_KEYVAULT_<VARIABLE>`` — with ``DefaultAzureCredential`` (the pod's
workload identity on AKS, a managed identity, ``az login`` on a laptop). A secret the vault does
not hold is simply unset, so the command that needs it says which variable it lacks; a vault that
refuses or cannot be reached is one ``ConfigError`` sentence.

``SecretEnv`` is the environment seen this way: code reads ``env.get("EVENTHUBS_CONNECTION_STRING")``
as before, and ``repr`` shows the vault and how many values were fetched, never a value. Values are
fetched once per process (a restart reads a rotated secret).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Final

from connectors.keyvault import fetch_secret_or_none

SECRETS: Final[dict[str, str]] = {
    "DATABENTO_API_KEY": "databento-api-key",
    "EVENTHUBS_CONNECTION_STRING": "eventhubs-connection-string",
    "AZURE_CLIENT_SECRET": "eventhouse-client-secret",
    "SPYMASTER_SCORING_KEY": "scoring-key",
}
"""Secret environment variables and their default names in the vault."""
VAULT_VARIABLE: Final = "SPYMASTER_KEYVAULT"
NAME_PREFIX: Final = "SPYMASTER_KEYVAULT_"


class SecretEnv(Mapping[str, str]):
    """``env`` with its unset secrets read from the Key Vault in ``SPYMASTER_KEYVAULT`` (if any)."""

    def __init__(self, env: Mapping[str, str], *, credential: Any = None) -> None:
        self._env = env
        self._vault = str(env.get(VAULT_VARIABLE, "") or "").strip()
        self._credential = credential
        self._fetched: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str:
        if key in self._env:
            return self._env[key]
        if key not in SECRETS or not self._vault:
            raise KeyError(key)
        if key not in self._fetched:
            name, credential = self.secret_name(key), self._get_credential()
            self._fetched[key] = fetch_secret_or_none(self._vault, name, credential=credential)
        value = self._fetched[key]
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is set in the environment (asking never reaches the vault)."""
        return key in self._env

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)

    def __repr__(self) -> str:
        got = sum(v is not None for v in self._fetched.values())
        return f"SecretEnv({len(self._env)} variables, vault={self._vault or None!r}, {got} secrets read from it)"

    def secret_name(self, variable: str) -> str:
        """The vault's name for a secret variable: ``SPYMASTER_KEYVAULT_<VARIABLE>``, else the default."""
        return str(self._env.get(NAME_PREFIX + variable, "") or "").strip() or SECRETS[variable]

    def _get_credential(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential


def secret_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` through the resolver (itself when it already is one)."""
    return env if isinstance(env, SecretEnv) else SecretEnv(env)


def where_looked(variable: str, env: Mapping[str, str] | None = None) -> str:
    """Where a missing secret was looked for, for the sentence that says it is missing."""
    source = os.environ if env is None else env
    vault = str(source.get(VAULT_VARIABLE, "") or "").strip()
    name = str(source.get(NAME_PREFIX + variable, "") or "").strip() or SECRETS.get(variable, variable.lower())
    if vault:
        return f"looked for in the environment ({variable}) and in Key Vault {vault} (secret {name!r})"
    return (f"looked for in the environment ({variable}) only; or set {VAULT_VARIABLE} to read secret {name!r} "
            "from Key Vault")
