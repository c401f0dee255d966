"""Key Vault's secrets REST endpoint and App Service's managed-identity token endpoint, on 127.0.0.1.

Two real protocols, one server: ``GET /msi/token?api-version=2019-08-01&resource=R`` with the
``X-IDENTITY-HEADER`` answers a token (what ``DefaultAzureCredential`` asks when
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set, as on App Service and in Azure ML), and
``GET /secrets/NAME?api-version=7.4`` with that token as a bearer answers the secret's ``value``
(404 for a name the vault does not hold, 403 for a wrong token).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "tok-managed-identity"
IDENTITY_HEADER = "identity-header-1"


@dataclass
class Vault:
    url: str
    identity_endpoint: str
    secrets: dict[str, str]
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(path, Authorization) of each secret read, in order."""
    tokens: int = 0


@contextmanager
def keyvault(secrets: dict[str, str]) -> Iterator[Vault]:
    state: Vault

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def _answer(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path == "/msi/token":
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self._answer(401, {"error": "bad identity header"})
                    return
                state.tokens += 1
                self._answer(200, {"access_token": TOKEN, "expires_on": str(int(time.time()) + 3600),
                                   "resource": query.get("resource", [""])[0], "token_type": "Bearer"})
                return
            state.requests.append((self.path, self.headers.get("Authorization", "")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._answer(403, {"error": {"code": "Forbidden"}})
                return
            name = parts.path.removeprefix("/secrets/")
            known = parts.path.startswith("/secrets/") and name in state.secrets
            if not known or query.get("api-version") != ["7.4"]:
                self._answer(404, {"error": {"code": "SecretNotFound"}})
                return
            self._answer(200, {"value": state.secrets[name], "id": f"{state.url}/secrets/{name}/1"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    state = Vault(base, f"{base}/msi/token", dict(secrets))
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="keyvault-stand-in")
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
