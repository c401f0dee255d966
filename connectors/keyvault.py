"""Read one secret from Azure Key Vault over its REST API with a managed-identity token.

``azure-keyvault-secrets`` is not a dependency: one GET is all we need.
``GET {vault}/secrets/{name}?api-version=7.4`` with ``Authorization: Bearer <token>`` for the
scope ``https://vault.azure.net/.default`` (the vault host without its first label, so sovereign
clouds work too). The credential defaults to ``azure.identity.DefaultAzureCredential`` (workload
identity on AKS, managed identity on a VM, ``az login`` on a laptop). Errors never carry the secret.
Plain ``http://`` is accepted only for a loopback host (tests).

Tested against a local stand-in of that REST endpoint (and of App Service's managed-identity token
endpoint, for ``DefaultAzureCredential``), never against a real vault (no Azure access here).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from operators.errors import ConfigError

API_VERSION = "7.4"


def vault_scope(vault_url: str) -> str:
    """The token scope of a vault: ``https://myvault.vault.azure.net`` → ``https://vault.azure.net/.default``."""
    host = urlsplit(vault_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "https://vault.azure.net/.default"
    return f"https://{host.split('.', 1)[-1]}/.default"


def fetch_secret(vault_url: str, name: str, *, credential: Any = None, timeout_s: float = 10.0) -> str:
    """The current value of secret ``name``; ConfigError (without the value) when it cannot be read."""
    value = fetch_secret_or_none(vault_url, name, credential=credential, timeout_s=timeout_s)
    if value is None:
        raise ConfigError(f"Key Vault answered 404 for secret {name!r}; check the name and the identity's "
                          "'get' permission")
    return value


def fetch_secret_or_none(vault_url: str, name: str, *, credential: Any = None, timeout_s: float = 10.0) -> str | None:
    """``fetch_secret``, or None when the vault holds no secret of that name (404)."""
    parts = urlsplit(vault_url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ConfigError(f"Key Vault URL {vault_url!r} must look like https://<vault>.vault.azure.net")
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        token = credential.get_token(vault_scope(vault_url)).token
    except Exception as err:  # noqa: BLE001 - any credential failure is a configuration problem
        raise ConfigError(f"no Azure credential could get a Key Vault token ({type(err).__name__})") from None
    url = f"{vault_url.rstrip('/')}/secrets/{quote(name, safe='')}?api-version={API_VERSION}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - scheme checked above
            body = response.read()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise ConfigError(f"Key Vault answered {err.code} for secret {name!r}; check the name and the identity's "
                          "'get' permission") from None
    except OSError as err:
        raise ConfigError(f"Key Vault {parts.hostname} is unreachable ({type(err).__name__})") from None
    try:
        value = json.loads(body)["value"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"Key Vault's answer for secret {name!r} has no 'value'") from None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Key Vault secret {name!r} is empty")
    return value
