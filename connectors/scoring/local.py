"""Score in-process with the registered MLflow model ``models:/{model_id}@{alias}``.

A model id is resolved and loaded when it is first scored (``ScorerPool.warm`` does it for the
configured one when the flow starts). After that a follower thread re-reads the alias every
``refresh_s`` seconds; when it names another version, the follower loads that version and the
scorer uses it from the next batch on, so a running flow follows the champion without restarting.
The registry read (a query through MLflow's SQLAlchemy store) and any load happen on the follower,
never on the worker that scores: on a live flow, where setups come minutes apart, an in-line
re-read landed on almost every score. ``refresh_s = 0`` re-reads in line before every batch (a
new version is used from the very next batch), and ``follow=False`` re-reads in line at most
every ``refresh_s`` of an injected clock, for tests that step time. The alias is resolved to a
version first and the model loaded by version, both from the registry the scorer was made for,
so ``model_version`` always names the model that produced the numbers.

Speed: for the sklearn flavour whose signature is the vector tensor ``(-1, 144)`` with no feature
names fitted (checked once at load; what ``register_pipeline`` logs) we call the pyfunc's
underlying model (``get_raw_model()``) with its logged ``predict_fn`` on the array cast to the
tensor's type: the numbers ``pyfunc.predict`` gives, without its per-call schema pass. Any other
model goes through ``pyfunc.predict``: with the cast array for a tensor signature, with a frame of
``VECTOR_NAMES`` columns for a named-column one (versions registered before the tensor contract).

Statuses: ``no_model`` when the alias names nothing (or the registry cannot say and nothing is
loaded yet), ``model_error`` when loading or predicting raises, ``stale_model`` when the version
the alias names carries a ``registry_version`` tag other than this code's ``REGISTRY_VERSION``
(read with the alias, checked once per version; that version is not loaded, and a version without
the tag scores as any other). A registry that is briefly unreachable keeps the loaded version in use.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.scoring.base import (
    MODEL_ERROR,
    NO_MODEL,
    OK,
    STALE_MODEL,
    ScoreRequest,
    ScoreResult,
    probability_row,
    stale_model,
    vector_problem,
)
from connectors.scoring.config import ScoringConfig
from operators.vectors import VECTOR_NAMES, VECTOR_SIZE

if TYPE_CHECKING:
    from connectors.mlflow.tracking import ModelVersionRef

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(slots=True)
class _Slot:
    """What one model id currently scores with (mutable: the only state of the scorer)."""

    version: str | None
    predict: Predict | None
    checked_at: float
    problem: str = ""
    status: str = NO_MODEL


def resolve_alias(model_id: str, alias: str, uri: str | None = None) -> ModelVersionRef | None:
    """The version the alias names in the registry at ``uri`` (default: the configured one), with its
    ``registry_version`` tag, or ``None``."""
    from connectors.mlflow.tracking import champion_version

    return champion_version(model_id, alias, uri)


def load_predictor(model_id: str, version: str, uri: str | None = None) -> Predict:
    """Load ``models:/{model_id}/{version}`` with ``mlflow.pyfunc`` and return an array → (n, 3) function."""
    import mlflow.artifacts
    import mlflow.pyfunc

    from connectors.mlflow.tracking import quiet_downloads, tracking_uri

    # Through the registry at ``uri`` explicitly, never MLflow's process-wide URIs: a follower thread
    # loads here while the flow's (or a test's) main thread may be using another registry.
    uri = uri or tracking_uri()
    quiet_downloads()
    with tempfile.TemporaryDirectory(prefix="spymaster-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}/{version}", dst_path=tmp,
                                                    tracking_uri=uri, registry_uri=uri)
        model = mlflow.pyfunc.load_model(local)  # the sklearn flavour is read whole: the files can go
    predict = _predictor(model)
    try:  # a fresh model's first call is slow (lazy imports, caches): pay it now, not on a setup's score
        predict(np.zeros((1, VECTOR_SIZE), np.float32))
    except Exception:  # noqa: BLE001, S110 - a model that cannot score zeros says so on real rows
        pass
    return predict


def vector_tensor_type(schema: Any) -> np.dtype | None:
    """The element type when ``schema`` is exactly one tensor of shape (-1, 144), else ``None``."""
    if schema is None or not schema.is_tensor_spec() or len(schema.inputs) != 1:
        return None
    spec = schema.inputs[0]
    return spec.type if tuple(spec.shape) == (-1, VECTOR_SIZE) else None


def _predictor(model: Any) -> Predict:
    meta = model.metadata
    schema = meta.get_input_schema()
    dtype = vector_tensor_type(schema)
    if dtype is not None:
        if "sklearn" in meta.flavors:
            raw = model.get_raw_model()
            if getattr(raw, "feature_names_in_", None) is None:
                method = getattr(raw, meta.flavors["python_function"].get("predict_fn", "predict"))
                return lambda x: method(x.astype(dtype, copy=False))    # float32 → float64 is exact
        return lambda x: np.asarray(model.predict(x.astype(dtype, copy=False)))

    def through_pyfunc(x: np.ndarray) -> np.ndarray:
        import pandas as pd

        return np.asarray(model.predict(pd.DataFrame(x, columns=list(VECTOR_NAMES))))

    return through_pyfunc


class LocalScorer:
    """The in-process Scorer; one loaded model per model id seen in the requests."""

    backend = "local"

    def __init__(self, cfg: ScoringConfig, *, clock: Callable[[], float] = time.monotonic,
                 resolver: Callable[[str, str], ModelVersionRef | None] | None = None,
                 loader: Callable[[str, str], Predict] | None = None, follow: bool = True,
                 registry: str | None = None) -> None:
        from connectors.mlflow.tracking import tracking_uri

        # the registry this scorer was made for (``ScorerPool`` keys scorers by it; default
        # ``tracking_uri()``): the alias is read through a client of its own (the follower must not
        # re-point MLflow's process-wide URIs every second), and a version is loaded from that same
        # registry
        registry = registry or tracking_uri()
        self._resolve = resolver or partial(resolve_alias, uri=registry)
        self._load = loader or partial(load_predictor, uri=registry)
        self._cfg, self._clock = cfg, clock
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._follow = follow and cfg.refresh_s > 0
        self._follower: threading.Thread | None = None
        self._closed = threading.Event()

    def version(self, model_id: str | None = None) -> str | None:
        """The version currently used for ``model_id`` (the config's by default), if any."""
        slot = self._slots.get(model_id or self._cfg.model_id)
        return slot.version if slot is not None and slot.predict is not None else None

    def score(self, batch: Sequence[ScoreRequest]) -> list[ScoreResult]:
        with self._lock:
            start = time.perf_counter_ns()
            groups: dict[str, list[int]] = {}
            for i, request in enumerate(batch):
                groups.setdefault(request.model_id, []).append(i)
            found: list[ScoreResult | None] = [None] * len(batch)
            for model_id, where in groups.items():
                slot = self._current(model_id)
                for i, result in zip(where, self._score_group(slot, [batch[i] for i in where]), strict=True):
                    found[i] = result
            elapsed = time.perf_counter_ns() - start
            return [replace(r, latency_ns=elapsed) for r in found if r is not None]

    def prepare(self, model_id: str) -> str | None:
        """Resolve the alias and load that version now; the version loaded (None if none could be)."""
        with self._lock:
            slot = self._current(model_id)
            return slot.version if slot.predict is not None else None

    def close(self) -> None:
        self._closed.set()
        if self._follower is not None:
            self._follower.join(timeout=30)  # a load in progress finishes first
        with self._lock:
            self._slots.clear()

    def _score_group(self, slot: _Slot, requests: list[ScoreRequest]) -> list[ScoreResult]:
        def result(k: int, status: str, probs: tuple[float, float, float] | None = None, detail: str = "",
                   attempts: int = 1) -> ScoreResult:
            return ScoreResult(requests[k].episode_id, status, probs, slot.version, detail, 0, attempts)

        if slot.predict is None:
            return [result(k, slot.status, detail=slot.problem, attempts=0) for k in range(len(requests))]
        rows: list[ScoreResult | None] = [None] * len(requests)
        for k, request in enumerate(requests):
            if (problem := vector_problem(request, VECTOR_SIZE)) is not None:
                rows[k] = result(k, MODEL_ERROR, detail=f"bad input: {problem}", attempts=0)
        good = [k for k, r in enumerate(rows) if r is None]
        if good:
            for k, row in zip(good, self._predict(slot, [requests[k].vector for k in good]), strict=True):
                rows[k] = result(k, MODEL_ERROR, detail=row) if isinstance(row, str) else result(k, OK, row)
        return [r for r in rows if r is not None]

    @staticmethod
    def _predict(slot: _Slot, vectors: list[np.ndarray]) -> list[tuple[float, float, float] | str]:
        """Probabilities per vector, or a string saying why there are none."""
        assert slot.predict is not None
        try:
            out = np.asarray(slot.predict(np.stack([np.asarray(v, dtype=np.float32) for v in vectors])),
                             dtype=np.float64)
        except Exception as err:  # noqa: BLE001 - a model fault is a status, never a crash of the flow
            if len(vectors) > 1:             # find the rows at fault; the others still get their scores
                return [row for v in vectors for row in LocalScorer._predict(slot, [v])]
            return [f"predict raised {type(err).__name__}: {err}"[:300]]
        if out.shape != (len(vectors), 3):
            return [f"model returned shape {out.shape}, expected ({len(vectors)}, 3)"] * len(vectors)
        rows = [probability_row(row) for row in out.tolist()]
        return [r if r is not None else "model output is not 3 probabilities" for r in rows]

    def _current(self, model_id: str) -> _Slot:
        """The slot to score ``model_id`` with (the lock is held); only a first sight, or an in-line
        refresh when not following, reads the registry here."""
        now = self._clock()
        slot = self._slots.get(model_id)
        if slot is None or (not self._follow and now - slot.checked_at >= self._cfg.refresh_s):
            slot = self._slots[model_id] = self._refresh(model_id, slot, now)
            if self._follow and self._follower is None:
                self._follower = threading.Thread(target=self._follow_aliases, name="alias-follower", daemon=True)
                self._follower.start()
        return slot

    def _follow_aliases(self) -> None:
        """The follower thread: every ``refresh_s``, re-read each model id's alias (and load the
        version it names) outside the lock, then swap the slot in, unless ``close`` came meanwhile."""
        while not self._closed.wait(self._cfg.refresh_s):
            with self._lock:
                slots = dict(self._slots)
            for model_id, slot in slots.items():
                fresh = self._refresh(model_id, slot, self._clock())
                with self._lock:
                    if self._closed.is_set():
                        return
                    if self._slots.get(model_id) is slot:
                        self._slots[model_id] = fresh

    def _refresh(self, model_id: str, slot: _Slot | None, now: float) -> _Slot:
        loaded = slot if slot is not None and slot.predict is not None else None
        known = loaded or (slot if slot is not None and slot.status == STALE_MODEL else None)
        try:
            ref = self._resolve(model_id, self._cfg.alias)
        except Exception as err:  # noqa: BLE001 - registry briefly away: keep what we have
            if known is not None:
                known.checked_at = now
                return known
            return _Slot(None, None, now, f"registry unreachable ({type(err).__name__})")
        if ref is None:
            return _Slot(None, None, now, f"no version of {model_id} has alias {self._cfg.alias!r}")
        version = ref.version
        if known is not None and known.version == version:     # each version is checked and loaded once
            known.checked_at = now
            return known
        if (stale := stale_model(model_id, version, ref.registry_version)) is not None:
            return _Slot(version, None, now, stale, STALE_MODEL)
        try:
            predict = self._load(model_id, version)
        except Exception as err:  # noqa: BLE001
            if loaded is not None:             # keep scoring with the old version; try again next refresh
                loaded.checked_at = now
                return loaded
            detail = f"loading {model_id} version {version} failed: {type(err).__name__}: {err}"[:300]
            return _Slot(version, None, now, detail, MODEL_ERROR)
        return _Slot(version, predict, now, "", OK)
