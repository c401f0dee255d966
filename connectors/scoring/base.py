"""The scoring contract every backend honours: requests in, exactly one result per request out.

A scorer never raises for a fault of the service it talks to (timeout, refused connection, 5xx,
garbage answer, a model that raises): the fault becomes the ``status`` of each affected result, so
an episode and its features are never lost because a model could not be asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import numpy as np

from operators.features.registry import REGISTRY_VERSION

OK: Final = "ok"
NO_MODEL: Final = "no_model"                    # nothing registered / alias missing / endpoint serves another model
TIMEOUT: Final = "timeout"
HTTP_ERROR: Final = "http_error"                # 4xx/5xx; ``detail`` starts with the code
MALFORMED: Final = "malformed_response"         # an answer we could not read as probabilities
UNREACHABLE: Final = "unreachable"              # connection refused / reset / closed early
CIRCUIT_OPEN: Final = "circuit_open"            # breaker open: not attempted
MODEL_ERROR: Final = "model_error"              # the in-process model raised
STALE_MODEL: Final = "stale_model"              # the version was trained on another feature registry: not asked
STATUSES: Final = (OK, NO_MODEL, TIMEOUT, HTTP_ERROR, MALFORMED, UNREACHABLE, CIRCUIT_OPEN, MODEL_ERROR, STALE_MODEL)
BACKENDS: Final = ("local", "mlflow-http", "azureml", "off")


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """One episode to score: its 144-value setup vector (float32) and the model meant to score it."""

    episode_id: str
    model_id: str
    feature_hash: str
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The outcome for one request. ``probabilities`` is (P(BREAK), P(REJECT), P(CHOP)) when ``ok``.

    ``latency_ns`` is wall-clock time of the whole ``score()`` call that produced this result,
    retries included; ``attempts`` is how many times the service was asked (0 when not asked).
    """

    episode_id: str
    status: str
    probabilities: tuple[float, float, float] | None
    model_version: str | None
    detail: str
    latency_ns: int
    attempts: int

    @property
    def ok(self) -> bool:
        return self.status == OK


@runtime_checkable
class Scorer(Protocol):
    """What the flow calls. ``score`` returns one result per request, in order, and never raises
    for service faults; ``close`` releases connections and models."""

    @property
    def backend(self) -> str: ...

    def score(self, batch: Sequence[ScoreRequest]) -> list[ScoreResult]: ...

    def prepare(self, model_id: str) -> str | None:
        """Do now what the first ``score`` would otherwise pay for (load the model, learn the
        served version); the version that will score ``model_id``, if known. Never raises."""
        ...

    def close(self) -> None: ...


def failed(batch: Sequence[ScoreRequest], status: str, detail: str, *, version: str | None,
           latency_ns: int, attempts: int) -> list[ScoreResult]:
    """The same failure for every request of a batch."""
    return [ScoreResult(r.episode_id, status, None, version, detail, latency_ns, attempts) for r in batch]


def stale_model(model_id: str, version: str, registry_version: str | None) -> str | None:
    """Why ``version`` must not score this code's vectors (its ``registry_version`` tag names another
    feature registry), or ``None`` when it may: same registry, or no tag (a version registered by hand)."""
    if registry_version is None or registry_version == REGISTRY_VERSION:
        return None
    return (f"{model_id} version {version} was trained on feature registry {registry_version}, this code builds "
            f"{REGISTRY_VERSION}: train on a snapshot built by this code: spymaster snapshot --model-id {model_id} "
            f"&& spymaster train --model-id {model_id}")


def probability_row(row: object) -> tuple[float, float, float] | None:
    """Three finite probabilities in [0, 1] summing to ~1, or ``None`` when ``row`` is anything else."""
    if not isinstance(row, (list, tuple)) or len(row) != 3:
        return None
    if not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in row):
        return None
    probs = tuple(float(p) for p in row)
    if not all(0.0 <= p <= 1.0 for p in probs) or abs(sum(probs) - 1.0) > 1e-4:
        return None
    return probs  # type: ignore[return-value]


def vector_problem(request: ScoreRequest, size: int) -> str | None:
    """Why a request's vector cannot be sent to a model, or ``None`` when it is fine."""
    vector: object = request.vector  # as sent: a caller's array may be anything
    if not isinstance(vector, np.ndarray) or vector.ndim != 1 or vector.shape[0] != size:
        shape = getattr(vector, "shape", type(vector).__name__)
        return f"vector of episode {request.episode_id} has shape {shape}, expected ({size},)"
    return None
