"""``[eventhouse]``: where the flow's features and scores go in a Fabric Eventhouse, and how it signs in.

TOML, overridden by the environment::

    [eventhouse]
    uri = "https://<id>.z<n>.kusto.fabric.microsoft.com"   # SPYMASTER_EVENTHOUSE (the query URI)
    ingest_uri = ""                   # SPYMASTER_EVENTHOUSE_INGEST (derived: ingest-<host>)
    database = "Spymaster"            # SPYMASTER_EVENTHOUSE_DB
    tables = ["Features", "Scores", "Levels", "Outcomes", "Radar", "Gex"]   # SPYMASTER_EVENTHOUSE_TABLES
    auth = "default"                  # SPYMASTER_EVENTHOUSE_AUTH: default | app | none
    flush_s = 1.0                     # SPYMASTER_EVENTHOUSE_FLUSH_S (default 1 s on a topic, 30 s on replay)
    format = "parquet"                # or "multijson" (both with stored mappings; never CSV)

``app`` reads AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (put there from Key Vault by
the deployment); the secret is never read from the TOML file and never logged. ``none`` is for
the local Eventhouse (``flows.services.eventhouse``) and is refused for any host but loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from connectors.kusto.tables import BY_NAME
from operators.errors import ConfigError

Auth = Literal["default", "app", "none"]
Format = Literal["parquet", "multijson"]
AUTH_MODES: tuple[Auth, ...] = ("default", "app", "none")
TOPIC_FLUSH_S = 1.0
REPLAY_FLUSH_S = 30.0
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Kusto's streaming-ingestion limit per request (the managed client queues anything larger)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventhouseConfig:
    uri: str = ""
    ingest_uri: str = ""
    database: str = "Spymaster"
    tables: tuple[str, ...] = tuple(BY_NAME)
    auth: Auth = "default"
    flush_s: float = REPLAY_FLUSH_S
    max_request_bytes: int = MAX_REQUEST_BYTES
    format: Format = "parquet"
    client_id: str = ""
    tenant_id: str = ""
    client_secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.uri:
            return
        scheme = urlsplit(self.uri).scheme
        if scheme not in ("http", "https"):
            msg = f"SPYMASTER_EVENTHOUSE must be an http(s) URI, got {self.uri!r}"
            raise ConfigError(msg)
        unknown = [t for t in self.tables if t not in BY_NAME]
        if unknown:
            msg = f"unknown Eventhouse table(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}"
            raise ConfigError(msg)
        if self.auth not in AUTH_MODES:
            msg = f"SPYMASTER_EVENTHOUSE_AUTH must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}"
            raise ConfigError(msg)
        if self.auth == "none" and not is_loopback(self.uri):
            msg = (f"SPYMASTER_EVENTHOUSE_AUTH=none is only for a local Eventhouse on loopback, not {self.uri}; "
                   "use default (managed identity, workload identity, az login) or app")
            raise ConfigError(msg)
        if self.auth == "app" and not (self.client_id and self.tenant_id and self.client_secret):
            from connectors.secrets import where_looked

            named = (("AZURE_CLIENT_ID", self.client_id), ("AZURE_TENANT_ID", self.tenant_id))
            lacking = [name for name, value in named if not value]
            if not self.client_secret:
                lacking.append(f"the client secret, {where_looked('AZURE_CLIENT_SECRET')}")
            msg = ("SPYMASTER_EVENTHOUSE_AUTH=app needs AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET; "
                   f"missing: {'; '.join(lacking)}")
            raise ConfigError(msg)
        if self.format not in ("parquet", "multijson"):
            msg = f"[eventhouse] format must be parquet or multijson, got {self.format!r}"
            raise ConfigError(msg)
        if self.flush_s <= 0 or self.max_request_bytes <= 0:
            msg = f"[eventhouse] flush_s and max_request_bytes must be positive, got {self.flush_s}, " \
                  f"{self.max_request_bytes}"
            raise ConfigError(msg)

    @property
    def enabled(self) -> bool:
        return bool(self.uri) and bool(self.tables)

    @property
    def ingest(self) -> str:
        """The ingest (data management) URI: given, or ``ingest-`` + the query host (not for loopback)."""
        if self.ingest_uri:
            return self.ingest_uri
        parts = urlsplit(self.uri)
        if is_loopback(self.uri) or not parts.hostname or parts.hostname.startswith("ingest-"):
            return self.uri
        return urlunsplit(parts._replace(netloc="ingest-" + parts.netloc))

    @staticmethod
    def from_settings(section: Mapping[str, Any], env: Mapping[str, str], *, on_topic: bool) -> EventhouseConfig:
        raw_tables = env.get("SPYMASTER_EVENTHOUSE_TABLES") or section.get("tables") or tuple(BY_NAME)
        tables = tuple(t.strip() for t in (raw_tables.split(",") if isinstance(raw_tables, str) else raw_tables)
                       if str(t).strip())
        flush = env.get("SPYMASTER_EVENTHOUSE_FLUSH_S") or section.get("flush_s")
        auth = str(env.get("SPYMASTER_EVENTHOUSE_AUTH") or section.get("auth") or "default")
        if "client_secret" in section:
            msg = "[eventhouse].client_secret is a secret and is not read from files; set AZURE_CLIENT_SECRET"
            raise ConfigError(msg)
        return EventhouseConfig(
            uri=str(env.get("SPYMASTER_EVENTHOUSE") or section.get("uri") or "").rstrip("/"),
            ingest_uri=str(env.get("SPYMASTER_EVENTHOUSE_INGEST") or section.get("ingest_uri") or "").rstrip("/"),
            database=str(env.get("SPYMASTER_EVENTHOUSE_DB") or section.get("database") or "Spymaster"),
            tables=tables,
            auth=auth,  # type: ignore[arg-type]
            flush_s=float(flush) if flush else (TOPIC_FLUSH_S if on_topic else REPLAY_FLUSH_S),
            max_request_bytes=int(section.get("max_request_bytes", MAX_REQUEST_BYTES)),
            format=str(section.get("format", "parquet")),  # type: ignore[arg-type]
            client_id=str(env.get("AZURE_CLIENT_ID") or section.get("client_id") or ""),
            tenant_id=str(env.get("AZURE_TENANT_ID") or section.get("tenant_id") or ""),
            client_secret=str(env.get("AZURE_CLIENT_SECRET") or "") if auth == "app" else "",  # only app needs it
        )


def is_loopback(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
