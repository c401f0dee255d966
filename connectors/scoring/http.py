"""Score over HTTP: one kept-alive client; the two wire contracts are adapters (``wire.py``).

- ``mlflow-http`` (``mlflow models serve``): ``POST {url}/invocations``.
- ``azureml`` (managed online endpoint, or ``azmlinfsrv`` with ``infra/azureml/score.py``):
  ``POST {scoring_uri}`` with ``Authorization: Bearer <key>`` when a key is configured and an
  optional ``azureml-model-deployment`` header.

Retries (5xx 502/503/504, 408, 429, timeouts, refused or dropped connections), backoff and the
circuit breaker are ``resilience.py``'s; 4xx and malformed answers are not retried.

One connection is kept open between batches (a new TCP/TLS handshake per batch would dominate the
latency budget). ``timeout_s`` bounds the connect and every read of one attempt. A reused
connection the server closed while idle is reopened once within the same attempt.

``model_version`` of the results is ``served_version`` from the config when given, otherwise the
version the registry's alias named when this scorer first scored (resolved once: an endpoint keeps
serving what it was deployed with even if the alias moves later); ``None`` when neither is known.
When the version comes from the registry and its ``registry_version`` tag is not this code's
``REGISTRY_VERSION``, every request is answered ``stale_model`` and nothing is sent (a version
without the tag, a configured ``served_version`` or an unknown one are sent as before).
Delivery: every request gets exactly one result; nothing here raises for a fault of the service.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from connectors.scoring.base import (
    CIRCUIT_OPEN,
    HTTP_ERROR,
    MALFORMED,
    MODEL_ERROR,
    NO_MODEL,
    OK,
    STALE_MODEL,
    TIMEOUT,
    UNREACHABLE,
    ScoreRequest,
    ScoreResult,
    failed,
    probability_row,
    stale_model,
    vector_problem,
)
from connectors.scoring.config import ScoringConfig
from connectors.scoring.resilience import Attempt, CircuitBreaker, Retrier
from connectors.scoring.wire import Adapter, azureml_adapter, mlflow_http_adapter
from operators.vectors import VECTOR_SIZE

if TYPE_CHECKING:
    from connectors.mlflow.tracking import ModelVersionRef

_RETRY_CODES = frozenset({408, 429, 502, 503, 504})
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _Connection:
    """A kept-alive HTTP(S) connection to one endpoint."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.https = parts.hostname or "", parts.port, parts.scheme == "https"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        fresh = self._conn is None
        try:
            return self._post_once(body, headers)
        except _STALE:
            self.close()
            if fresh:
                raise
            return self._post_once(body, headers)   # the server dropped the idle connection: one fresh try

    def _post_once(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = kind(self.host, self.port, timeout=self._timeout_s)
        try:
            self._conn.request("POST", self.path, body=body, headers=headers)
            response = self._conn.getresponse()
            payload = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, payload

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class HttpScorer:
    """A Scorer for an HTTP model server; see the module docstring for the contracts."""

    def __init__(self, cfg: ScoringConfig, adapter: Adapter, *, path: str | None = None,
                 version_resolver: Callable[[], ModelVersionRef | None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 seed: int = 0) -> None:
        self._cfg, self._adapter = cfg, adapter
        url = cfg.url or ""
        if path is not None and not urlsplit(url).path.rstrip("/").endswith(path):
            url = url.rstrip("/") + path
        self._conn = _Connection(url, cfg.timeout_s)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if cfg.key:
            self._headers["Authorization"] = f"Bearer {cfg.key}"
        if cfg.deployment and adapter.name == "azureml":
            self._headers["azureml-model-deployment"] = cfg.deployment
        breaker = CircuitBreaker(cfg.breaker_failures, cfg.breaker_reset_s, clock=clock)
        self._retrier = Retrier(retries=cfg.retries, backoff_s=cfg.backoff_s, breaker=breaker, seed=seed, sleep=sleep)
        self._resolve = version_resolver or _registry_version(cfg)
        self._version: str | None = cfg.served_version
        self._stale: str | None = None          # why the served version must not score, once resolved
        self._resolved = cfg.served_version is not None
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        return self._adapter.name

    @property
    def breaker_state(self) -> str:
        return self._retrier.breaker.state

    def score(self, batch: Sequence[ScoreRequest]) -> list[ScoreResult]:
        with self._lock:
            start = time.perf_counter_ns()
            self._resolve_once()
            results = [self._refusal(request) for request in batch]
            send = [i for i, r in enumerate(results) if r is None]
            if send:
                for i, result in zip(send, self._send([batch[i] for i in send]), strict=True):
                    results[i] = result
            elapsed = time.perf_counter_ns() - start
            return [replace(r, latency_ns=elapsed) for r in results if r is not None]

    def prepare(self, model_id: str) -> str | None:
        """The served version (asked of the registry once); the connection opens on first use."""
        with self._lock:
            self._resolve_once()
            return self._version

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _resolve_once(self) -> None:
        """Ask the registry which version the alias names, and whether it may score (lock held)."""
        if self._resolved:
            return
        ref, self._resolved = self._resolve(), True
        if ref is not None:
            self._version = ref.version
            self._stale = stale_model(self._cfg.model_id, ref.version, ref.registry_version)

    def _refusal(self, request: ScoreRequest) -> ScoreResult | None:
        """The result of a request that is not sent (wrong model, unusable vector), else None."""
        if request.model_id != self._cfg.model_id:
            return self._result(request, NO_MODEL, f"endpoint serves {self._cfg.model_id}, not {request.model_id}")
        if self._stale is not None:
            return self._result(request, STALE_MODEL, self._stale)
        if (problem := vector_problem(request, VECTOR_SIZE)) is not None:
            return self._result(request, MODEL_ERROR, f"bad input: {problem}")
        return None

    def _send(self, sent: list[ScoreRequest]) -> list[ScoreResult]:
        body = self._adapter.body([np.asarray(r.vector, dtype=np.float32).tolist() for r in sent])
        outcome = self._retrier.call(lambda: self._attempt(body, len(sent)))
        if outcome is None:
            return failed(sent, CIRCUIT_OPEN, f"circuit open after {self._cfg.breaker_failures} failed calls",
                          version=self._version, latency_ns=0, attempts=0)
        attempt, tries = outcome.attempt, outcome.attempts
        if attempt.status != OK:
            return [self._result(r, attempt.status, attempt.detail, attempts=tries) for r in sent]
        rows = [probability_row(row) for row in attempt.value or []]
        return [self._result(r, OK, "", probs, tries) if probs is not None
                else self._result(r, MALFORMED, f"row {k} of the answer is not 3 probabilities", attempts=tries)
                for k, (r, probs) in enumerate(zip(sent, rows, strict=True))]

    def _attempt(self, body: bytes, n: int) -> Attempt[list[Any]]:
        try:
            code, payload = self._conn.post(body, self._headers)
        except TimeoutError:
            return Attempt(None, TIMEOUT, f"no answer within {self._cfg.timeout_s} s", retry=True, healthy=False)
        except (http.client.RemoteDisconnected, http.client.IncompleteRead) as err:
            return Attempt(None, UNREACHABLE, f"connection closed early ({type(err).__name__})", retry=True,
                           healthy=False)
        except http.client.HTTPException as err:
            return Attempt(None, MALFORMED, f"unreadable HTTP answer ({type(err).__name__})", retry=False,
                           healthy=False)
        except OSError as err:
            return Attempt(None, UNREACHABLE, f"{type(err).__name__} from {self._conn.host}:{self._conn.port}",
                           retry=True, healthy=False)
        if code >= 400:
            snippet = payload[:160].decode("utf-8", "replace").replace("\n", " ")
            return Attempt(None, HTTP_ERROR, f"{code} {snippet}".strip(), retry=code in _RETRY_CODES,
                           healthy=code < 500 and code != 429)
        try:
            rows = self._adapter.rows(json.loads(payload))
        except ValueError:
            rows = None
        if not isinstance(rows, list) or len(rows) != n:
            got = f"{len(rows)} rows" if isinstance(rows, list) else "no list of rows"
            return Attempt(None, MALFORMED, f"{code} answer has {got} for {n} requests", retry=False, healthy=False)
        return Attempt(rows, OK, "", retry=False, healthy=True)

    def _result(self, request: ScoreRequest, status: str, detail: str,
                probs: tuple[float, float, float] | None = None, attempts: int = 0) -> ScoreResult:
        return ScoreResult(request.episode_id, status, probs, self._version, detail, 0, attempts)


def _registry_version(cfg: ScoringConfig) -> Callable[[], ModelVersionRef | None]:
    def resolve() -> ModelVersionRef | None:
        try:
            from connectors.mlflow.tracking import champion_version

            return champion_version(cfg.model_id, cfg.alias)
        except Exception:  # noqa: BLE001 - an unknown version is reported as None, never as a failure
            return None

    return resolve


def mlflow_http_scorer(cfg: ScoringConfig, **kwargs: Any) -> HttpScorer:
    return HttpScorer(cfg, mlflow_http_adapter(), path="/invocations", **kwargs)


def azureml_scorer(cfg: ScoringConfig, **kwargs: Any) -> HttpScorer:
    return HttpScorer(cfg, azureml_adapter(), **kwargs)
