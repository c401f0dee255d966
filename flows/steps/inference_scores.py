"""In-flow scoring: every episode is scored as its vector becomes known, into ``gold.inference_scores``.

Shape: ``EpisodeUpdate.started`` → ``SessionEpisodes`` keyed by ``model_id|stream`` →
``inference_scores`` (a ``StatefulLogic`` that groups episodes into event-time micro-batches,
``operators.microbatch``) → ``ScoredBatch`` → Delta rows.

- **Micro-batches.** A batch holds the episodes of one model whose vector times fall in the same
  ``batch_ms``-wide event-time window; it is scored as soon as its session's episodes are known
  complete past the window's end (``EpisodeUpdate.through_ns``, a watermark: with windows up to a
  second that is the very update that brought them), when an episode of a later window arrives,
  when ``batch_ms`` of wall-clock time has passed since it opened (``notify_at``: a live flow never
  waits longer than that), when its session ends and at end of input. ``batch_ms = 0`` scores each
  episode at once.
- **Reproducible to the bit.** The key is the model *and* the contract-session stream, so a
  scorer call never mixes sessions: the rows a model sees together depend only on the session's
  own input, not on how workers interleave (BLAS kernels round the same row differently in batches
  of different shapes, by ~1e-7). With ``batch_ms`` below the 1-second resolution of episode
  starts, a batch is exactly the episodes of one session that start in the same window, so replays
  and worker counts give identical probabilities.
- **Exactly once.** A score row's stream and position are the episode's ``gold.setup_vectors``
  ones (session stream, per-session vector counter). Within a key, batches are emitted in arrival
  order, so positions only grow and the Delta sink drops what a resumed run re-scores. A session's
  last batch carries its end mark, so a file is only *finished* once its scores are written.
- **The model.** An episode is scored by its own ``model_id`` (``gold.setup_vectors``: ``ES`` →
  ``ES_MODEL``): the local backend loads ``models:/{model_id}@{alias}``; an HTTP backend serves
  ``[scoring].model_id``, another family's episodes go to its own ``[scoring.endpoints]``
  entry, and a family with none is told so.
  ``connectors.scoring.make_scorer(cfg)`` is built lazily in the worker (one per
  configuration per process, never in a snapshot); the local backend follows the ``champion``
  alias (re-read every ``refresh_s``), so every row names the version that produced it. The
  retrieval memory of that same version (``load_memory_for``) gives the neighbours; it is
  reloaded whenever a batch comes back scored by another version. Without a registry
  (the default SQLite file does not exist) nothing imports MLflow: rows say ``no_model``.
- **Failures are rows.** Whatever the scorer says (``ok``, ``no_model``, ``timeout`` …) is the
  row's ``status``; an episode is never dropped because it could not be scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import bytewax.operators as op
import numpy as np
from bytewax.dataflow import Stream
from bytewax.operators import StatefulLogic
from typing_extensions import override

from connectors.delta.score_rows import ScoreRow, score_rows
from connectors.delta.sink import TableWrite
from connectors.scoring.base import ScoreRequest, ScoreResult
from connectors.scoring.config import ScoringConfig
from flows.config import InferenceConfig
from flows.items import Episode, EpisodeUpdate
from flows.plan import ReplayPlan, book_end_mark
from flows.scorer_pool import POOL, ScorerPool
from operators.chunks import InstrumentInfo
from operators.microbatch import EventTimeBatcher, MicroBatch
from operators.sessions import day_to_date
from operators.vectors import feature_hash, model_id_for

if TYPE_CHECKING:
    from operators.retrieval import Neighbours

Keyed = tuple[str, TableWrite]


@dataclass(frozen=True, slots=True)
class PendingScore:
    """One episode waiting for its score, with what its row needs besides the score."""

    position: int
    episode_id: str
    feature_hash: str
    level_type: str
    direction: str
    time_bucket: int
    vector_time: int
    vector: np.ndarray  # float32[144]


@dataclass(frozen=True, slots=True)
class SessionEpisodes:
    """The episodes of one session update that now have a vector; ``mark`` ends the session."""

    stream: str
    info: InstrumentInfo
    session_day: int
    episodes: tuple[PendingScore, ...]
    mark: str | None = None
    through_ns: int = 0
    """The session's episodes starting before this instant have all been sent (a watermark)."""


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """One closed micro-batch with its results (or, empty, a session's end mark on its own)."""

    stream: str
    info: InstrumentInfo
    session_day: int
    model_id: str
    backend: str
    close_ts: int
    rows: tuple[ScoreRow, ...]
    positions: tuple[int, ...]
    scored_at: datetime
    mark: str | None = None


@dataclass(frozen=True, slots=True)
class ScoringState:
    """What a recovery snapshot keeps: the open batch (small: at most one window of one session)."""

    stream: str
    info: InstrumentInfo
    session_day: int
    pending: tuple[PendingScore, ...]
    close_ts: int | None


class EpisodeRequests:
    """``EpisodeUpdate`` → keyed ``SessionEpisodes`` (nothing for updates without news)."""

    def __init__(self, plan: ReplayPlan) -> None:
        self._plan = plan

    def of_update(self, u: EpisodeUpdate) -> list[tuple[str, SessionEpisodes]]:
        if not u.started and not u.final:
            return []
        source_stream = self._plan.stream(u.source_id)
        stream = f"{u.key}@{source_stream}"
        episodes = tuple(_pending(u.positions[0] + i, e) for i, e in enumerate(u.started))
        mark = book_end_mark(source_stream, u.key) if u.final else None
        key = f"{model_id_for(u.info.underlier)}|{stream}"
        return [(key, SessionEpisodes(stream, u.info, u.session_day, episodes, mark, u.through_ns))]


def _pending(position: int, e: Episode) -> PendingScore:
    """A started episode (its vector is known, which is what "started" means) waiting for a score."""
    if e.vector is None:
        msg = f"episode {e.episode_id} was started without its vector"
        raise ValueError(msg)
    return PendingScore(position, e.episode_id, feature_hash(e.vector), e.level_type,
                        "UP" if int(e.row["direction"]) > 0 else "DOWN", int(e.bucket), int(e.row["start_ts"]),
                        np.asarray(e.vector, np.float32))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InferenceScoresLogic(StatefulLogic[SessionEpisodes, ScoredBatch, ScoringState]):
    """Keyed by ``model_id|session stream``: micro-batches by event time (see module docstring)."""

    def __init__(self, cfg: ScoringConfig, inference: InferenceConfig, resume: ScoringState | None, *,
                 pool: ScorerPool = POOL, now: Callable[[], datetime] = _utcnow) -> None:
        self._cfg, self._k, self._pool, self._now = cfg, inference.neighbours, pool, now
        self._window_s = inference.batch_ms / 1000
        window_ns = inference.batch_ms * 1_000_000
        self._arrived: dict[int, int] = {}  # position → perf_counter_ns when it reached this step
        self._stream: str | None = None
        self._info: InstrumentInfo | None = None
        self._day = 0
        if resume is None:
            self._batcher: EventTimeBatcher[PendingScore] = EventTimeBatcher(window_ns)
        else:
            self._stream, self._info, self._day = resume.stream, resume.info, resume.session_day
            self._batcher = EventTimeBatcher(window_ns, pending=resume.pending, close_ts=resume.close_ts,
                                             opened_at=self._now().timestamp())
            arrived = time.perf_counter_ns()
            self._arrived = {p.position: arrived for p in resume.pending}

    @override
    def on_item(self, value: SessionEpisodes) -> tuple[list[ScoredBatch], bool]:
        self._stream, self._info, self._day = value.stream, value.info, value.session_day
        arrived, now = time.perf_counter_ns(), self._now().timestamp()
        out: list[ScoredBatch] = []
        for episode in value.episodes:
            self._arrived[episode.position] = arrived
            out += [self._score(b) for b in self._batcher.add(episode.vector_time, episode, now)]
        out += [self._score(b) for b in self._batcher.advance(value.through_ns)]
        if value.mark is None:
            return out, StatefulLogic.RETAIN
        out += [self._score(b) for b in self._batcher.close()]
        if out:
            last = out.pop()
            out.append(_with_mark(last, value.mark))
        else:
            out.append(self._empty(value.mark))
        return out, StatefulLogic.DISCARD

    @override
    def on_notify(self) -> tuple[list[ScoredBatch], bool]:
        return [self._score(b) for b in self._batcher.expire(self._now().timestamp(), self._window_s)], \
            StatefulLogic.RETAIN

    @override
    def on_eof(self) -> tuple[list[ScoredBatch], bool]:
        return [self._score(b) for b in self._batcher.close()], StatefulLogic.RETAIN

    @override
    def notify_at(self) -> datetime | None:
        deadline = self._batcher.deadline(self._window_s)
        return None if deadline is None else datetime.fromtimestamp(deadline, UTC) + timedelta(microseconds=1)

    @override
    def snapshot(self) -> ScoringState:
        assert self._stream is not None and self._info is not None
        return ScoringState(self._stream, self._info, self._day, self._batcher.pending, self._batcher.close_ts)

    # ------------------------------------------------------------------ scoring

    @property
    def _model_id(self) -> str:
        """The episodes' model, as ``gold.setup_vectors`` names it (``ES`` → ``ES_MODEL``)."""
        assert self._info is not None
        return model_id_for(self._info.underlier)

    def _score(self, batch: MicroBatch[PendingScore]) -> ScoredBatch:
        episodes = batch.items
        requests = [ScoreRequest(e.episode_id, self._model_id, e.feature_hash, e.vector) for e in episodes]
        results = self._pool.score(self._cfg.for_model(self._model_id), requests)
        neighbours = self._neighbours(episodes, results)
        done = time.perf_counter_ns()
        rows = tuple(
            ScoreRow(e.episode_id, r.model_version, e.feature_hash, e.level_type, e.direction, e.time_bucket,
                     e.vector_time, r.probabilities if r.ok else None,
                     None if n is None or n.count == 0 else n.distribution,
                     None if n is None or n.count == 0 else n.weighted,
                     () if n is None else n.episode_ids, r.status, r.detail, r.attempts,
                     done - self._arrived.pop(e.position, done))
            for e, r, n in zip(episodes, results, neighbours, strict=True)
        )
        assert self._stream is not None and self._info is not None
        return ScoredBatch(self._stream, self._info, self._day, self._model_id, self._cfg.backend, batch.close_ts,
                           rows, tuple(e.position for e in episodes), self._now())

    def _neighbours(self, episodes: Sequence[PendingScore], results: Sequence[ScoreResult]) -> list[Neighbours | None]:
        """The similar historical episodes, from the memory of the version that scored each one."""
        out: list[Neighbours | None] = [None] * len(episodes)
        by_version: dict[str, list[int]] = {}
        for i, r in enumerate(results):
            if r.model_version is not None:
                by_version.setdefault(r.model_version, []).append(i)
        for version, where in sorted(by_version.items()):
            memory = self._pool.memory(self._model_id, version)
            if memory is None:
                continue
            found = memory.query(np.stack([episodes[i].vector for i in where]),
                                 [episodes[i].level_type for i in where], [episodes[i].direction for i in where],
                                 [episodes[i].time_bucket for i in where], k=self._k,
                                 exclude=[episodes[i].episode_id for i in where])  # never its own memory
            for i, n in zip(where, found, strict=True):
                out[i] = n
        return out

    def _empty(self, mark: str) -> ScoredBatch:
        assert self._stream is not None and self._info is not None
        return ScoredBatch(self._stream, self._info, self._day, self._model_id, self._cfg.backend, 0, (), (),
                           self._now(), mark)


def _with_mark(batch: ScoredBatch, mark: str) -> ScoredBatch:
    return replace(batch, mark=mark)


def score_writes(batch: ScoredBatch) -> list[Keyed]:
    """A scored batch → one keyed write of ``gold.inference_scores`` (positions: the episodes')."""
    table = score_rows(batch.rows, model_id=batch.model_id, backend=batch.backend, batch_close_ts=batch.close_ts,
                       info=batch.info, day=day_to_date(batch.session_day), scored_at=batch.scored_at)
    marks = (batch.mark,) if batch.mark else ()
    if table.num_rows == 0 and not marks:
        return []
    return [(batch.stream, TableWrite(batch.stream, table, np.array(batch.positions, np.int64), marks))]


def _new_logic(cfg: ScoringConfig, inference: InferenceConfig, resume: ScoringState | None) -> InferenceScoresLogic:
    return InferenceScoresLogic(cfg, inference, resume)


def _value(kv: tuple[str, ScoredBatch]) -> ScoredBatch:
    return kv[1]


def scored_batches(step_id: str, items: Stream[tuple[str, SessionEpisodes]], cfg: ScoringConfig,
                   inference: InferenceConfig) -> Stream[ScoredBatch]:
    """The stateful micro-batching and scoring step (exposed for tests that feed it directly)."""
    return op.map(f"{step_id}_values", op.stateful(step_id, items, partial(_new_logic, cfg, inference)), _value)


def score_episodes(found: Stream[EpisodeUpdate], plan: ReplayPlan, cfg: ScoringConfig,
                   inference: InferenceConfig) -> Stream[Keyed]:
    """Session updates → keyed ``gold.inference_scores`` writes (wired by ``flows.graph``).

    The graph is built once per process just before it runs, so this is where the configured
    model starts loading (``ScorerPool.warm``): a live flow is ready before its first setup.
    """
    POOL.warm_in_background(cfg)
    items = op.flat_map("score_requests", found, EpisodeRequests(plan).of_update)
    return op.flat_map("inference_score_rows", scored_batches("inference_scores", items, cfg, inference),
                       score_writes)
