"""Which scoring backend to use and how patient to be with it.

Environment (read by ``ScoringConfig.from_env``; ``flows/config.py`` may layer TOML under it):

- ``SPYMASTER_SCORING_BACKEND``: ``local`` (default) | ``mlflow-http`` | ``azureml`` | ``off``
- ``SPYMASTER_SCORING_MODEL_ID``, ``SPYMASTER_SCORING_ALIAS``, ``SPYMASTER_SCORING_SERVED_VERSION``
- ``SPYMASTER_SCORING_URL``: the model server's base URL (mlflow-http) or the full scoring URI
  (azureml); falls back to ``AZUREML_SCORING_URI``
- ``SPYMASTER_SCORING_KEY``: the endpoint key; falls back to ``AZUREML_API_KEY``; or from Key Vault
  with ``SPYMASTER_SCORING_KEY_VAULT=https://<vault>.vault.azure.net`` and
  ``SPYMASTER_SCORING_KEY_SECRET=<secret name>`` (managed identity / DefaultAzureCredential)
- ``SPYMASTER_SCORING_DEPLOYMENT``: pins an Azure ML deployment; falls back to ``AZUREML_MODEL_DEPLOYMENT``
- ``SPYMASTER_SCORING_{TIMEOUT_S,RETRIES,BACKOFF_S,BREAKER_FAILURES,BREAKER_RESET_S,REFRESH_S}``

One endpoint per model family (HTTP backends): ``[scoring.endpoints.<MODEL_ID>]`` in the TOML
file with ``url``, ``deployment`` and where its key is (``key_env``: an environment variable;
``key_secret``: a Key Vault secret in ``SPYMASTER_SCORING_KEY_VAULT``). An episode is sent to
its own model's endpoint; a model without one goes to ``url`` (which serves ``model_id``).

The key is a secret: it is kept out of ``repr``, logs and error messages (``masked()`` is the
loggable form).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from connectors.scoring.base import BACKENDS
from connectors.secrets import secret_env
from operators.errors import ConfigError

_PREFIX = "SPYMASTER_SCORING_"
_FALLBACKS = {"url": "AZUREML_SCORING_URI", "key": "AZUREML_API_KEY", "deployment": "AZUREML_MODEL_DEPLOYMENT"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where one model family is served over HTTP (``[scoring.endpoints.<MODEL_ID>]``)."""

    model_id: str
    url: str
    deployment: str | None = None
    key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_url(f"endpoint of {self.model_id}", self.url)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoringConfig:
    """One scoring backend. Durations in seconds; ``retries`` counts attempts after the first."""

    backend: str = "local"
    model_id: str = "ES_MODEL"
    alias: str = "champion"
    url: str | None = None
    key: str | None = field(default=None, repr=False)
    deployment: str | None = None
    served_version: str | None = None       # HTTP backends: the version the endpoint serves, if known
    timeout_s: float = 2.0
    retries: int = 2
    backoff_s: float = 0.05
    breaker_failures: int = 5
    breaker_reset_s: float = 5.0
    refresh_s: float = 1.0                  # local: the follower re-reads the alias this often (0: in line)
    endpoints: tuple[Endpoint, ...] = ()    # HTTP backends: other model families' own endpoints

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"scoring backend {self.backend!r} is unknown; use one of {', '.join(BACKENDS)}")
        if not self.model_id or not self.alias:
            raise ConfigError("scoring model_id and alias must not be empty")
        if self.backend in ("mlflow-http", "azureml"):
            _check_url(self.backend, self.url)
        for name in ("timeout_s",):
            if not getattr(self, name) > 0:
                raise ConfigError(f"scoring {name} must be positive, got {getattr(self, name)}")
        for name in ("retries", "backoff_s", "breaker_reset_s", "refresh_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"scoring {name} must be zero or positive, got {getattr(self, name)}")
        if self.breaker_failures < 1:
            raise ConfigError(f"scoring breaker_failures must be at least 1, got {self.breaker_failures}")

    @property
    def enabled(self) -> bool:
        return self.backend != "off"

    def for_model(self, model_id: str) -> ScoringConfig:
        """The configuration that scores ``model_id``'s episodes: its own endpoint when it has one
        (URL, deployment and key; the served version read from the registry), else this one."""
        endpoint = next((e for e in self.endpoints if e.model_id == model_id), None)
        if endpoint is None or self.backend not in ("mlflow-http", "azureml"):
            return self
        return replace(self, model_id=model_id, url=endpoint.url, deployment=endpoint.deployment, key=endpoint.key,
                       served_version=None, endpoints=())

    def masked(self) -> str:
        """The loggable form: every field, the key shown only as set or not."""
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "key")
        return f"ScoringConfig({shown}, key={'***' if self.key else None})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, base: ScoringConfig | None = None) -> ScoringConfig:
        """``base`` (or the defaults) overridden by the environment; the key may come from Key Vault."""
        env = secret_env(os.environ if environ is None else environ)  # SPYMASTER_SCORING_KEY from SPYMASTER_KEYVAULT
        start = base or cls()
        values: dict[str, Any] = {}  # each parsed to its field's type by _parse
        backend = env.get(_PREFIX + "BACKEND", "").strip() or start.backend
        for f in fields(cls):
            if f.name == "endpoints":  # only from the TOML file
                continue
            key_set = any(n in env for n in (_PREFIX + "KEY", "AZUREML_API_KEY"))
            if f.name == "key" and backend in KEYLESS and not key_set:
                continue  # the in-process model sends no request: an unset key is not asked of the vault
            raw = env.get(_PREFIX + f.name.upper(), "").strip() or env.get(_FALLBACKS.get(f.name, ""), "").strip()
            if raw:
                values[f.name] = _parse(f.name, raw, type(f.default))
        named_vault = any(env.get(_PREFIX + n, "").strip() for n in ("KEY_VAULT", "KEY_SECRET"))
        if "key" not in values and start.key is None and (backend not in KEYLESS or named_vault):
            key = _key_from_vault(env)
            if key is not None:
                values["key"] = key
        return replace(start, **values)


KEYLESS = frozenset({"local", "off"})
"""Backends that send no request, so need no key."""


def _key_from_vault(env: Mapping[str, str]) -> str | None:
    vault, secret = env.get(_PREFIX + "KEY_VAULT", "").strip(), env.get(_PREFIX + "KEY_SECRET", "").strip()
    if not (vault or secret):
        return None
    if not (vault and secret):
        raise ConfigError("set both SPYMASTER_SCORING_KEY_VAULT and SPYMASTER_SCORING_KEY_SECRET, or neither")
    from connectors.keyvault import fetch_secret

    return fetch_secret(vault, secret)


def _parse(name: str, raw: str, kind: type) -> object:
    try:
        return kind(raw) if kind in (int, float) else raw
    except ValueError:
        raise ConfigError(f"{_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def _check_url(backend: str, url: str | None) -> None:
    if not url:
        raise ConfigError(f"scoring backend {backend} needs a URL; set SPYMASTER_SCORING_URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"scoring URL {url!r} is not an http(s) URL with a host")
