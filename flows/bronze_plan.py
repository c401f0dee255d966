"""What a replay from Bronze will read: the (session, contract) slices of ``bronze.mbo`` and the
(session, source) slices of ``bronze.cmbp_1`` in the date range, less those already done, each under its
generation; and what ``--overwrite`` deletes.

The decisions are the file replay's (``flows.plan``), made per slice instead of per file. A slice
is *finished* when the target lake's manifest says so and every table it feeds carries its
completion marks; it is skipped unless ``--overwrite``, which deletes its Silver and Gold rows and
dead letters and replays it under the next generation. One case only a Bronze replay meets:
replayed into the lake it reads, a slice's books were already written by its original source
(the file or topic whose manifest row names them). They are left alone unless ``--overwrite``,
so a rerun never duplicates them; with it their rows are deleted and recomputed from Bronze.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from deltalake import DeltaTable

from connectors.bronze.catalog import (
    QUOTES,
    SOURCE_PREFIX,
    BronzeSlice,
    BronzeTable,
    bronze_slices,
    instruments_for,
    pinned_quotes,
    quote_slices,
)
from connectors.dbn.chains import ChainFacts, ChainSource, facts_of, stored_open_interest
from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_CMBP_1, BRONZE_MANIFEST, BRONZE_MBO
from flows.config import AppConfig
from flows.plan import (  # the file replay's decisions, made here per slice
    PlannedFile,
    ReplayPlan,
    delete_sources,
    is_finished,
    record_starts,
    stored_calibrations,
    stored_summaries_outside,
)
from operators.chunks import InstrumentInfo

SCHEMA = BRONZE_MBO.name
"""The manifest ``schema`` of a Bronze slice: the table it was read from (``bronze.mbo``, or
``bronze.cmbp_1`` for a slice of quotes: ``schema_of``)."""


def schema_of(part: BronzeSlice) -> str:
    return BRONZE_CMBP_1.name if part.schema == QUOTES else SCHEMA


@dataclass(frozen=True, slots=True)
class BronzePlan:
    """The slices a Bronze replay reads, the instruments they carry, and those it leaves."""

    table: BronzeTable
    slices: tuple[BronzeSlice, ...]
    instruments: dict[str, dict[int, InstrumentInfo]] = field(default_factory=dict)
    finished: tuple[str, ...] = ()
    """Slices an earlier Bronze replay into this lake finished."""
    original: tuple[str, ...] = ()
    """Slices whose books this lake already holds from their original source (its own Bronze)."""
    overwritten: tuple[str, ...] = ()
    quotes: BronzeTable | None = None
    """``bronze.cmbp_1`` of the read lake, when it has one: OPRA's chains are rebuilt from it."""

    @property
    def done(self) -> tuple[str, ...]:
        return (*self.finished, *self.original)


@dataclass(frozen=True, slots=True)
class _Decision:
    replay: bool
    generation: int = 0
    reason: str = ""
    """Why a slice is left: ``finished`` or ``original``; or ``overwritten`` for one replayed anew."""


def plan_bronze(cfg: AppConfig, table: BronzeTable, lake: Lake) -> tuple[ReplayPlan, BronzePlan]:
    """Decide which slices of ``table`` to replay into ``lake``, under which generation; with
    ``--overwrite``, delete the rows they replace first."""
    dates = cfg.source.dates
    first, last = (dates.first, dates.last) if dates else (None, None)
    candidates = bronze_slices(table, first, last)
    quotes = pinned_quotes(table.lake)
    if quotes is not None:
        candidates += quote_slices(quotes, first, last)
    manifest = lake.read(BRONZE_MANIFEST, ["source", "generation", "status", "book_keys"]).to_pylist()
    claimed = _claimed_keys(manifest)
    instruments = instruments_for(table.lake, candidates)
    opened: dict[str, DeltaTable | None] = {}  # end marks are only read while deciding: one opening per table
    pending: list[BronzeSlice] = []
    generations: dict[str, int] = {}
    left: dict[str, list[str]] = {"finished": [], "original": [], "overwritten": []}
    by_source: dict[str, list[dict]] = {}
    for row in manifest:
        by_source.setdefault(row["source"], []).append(row)
    replaced: list[tuple[BronzeSlice, int, tuple[str, ...]]] = []
    for part in candidates:
        keys = part.fed_keys(instruments[part.source_id])
        decision = _decide(cfg, lake, part, keys, by_source.get(part.source_id, []), claimed, opened)
        if decision.reason:
            left[decision.reason].append(part.source_id)
        if decision.reason == "overwritten":  # the books its earlier rows name, and those it feeds
            named = {k for r in by_source.get(part.source_id, []) for k in (r["book_keys"] or [])}
            replaced.append((part, decision.generation, (*keys, *sorted(named))))
        if decision.replay:
            pending.append(part)
            generations[part.source_id] = decision.generation
    if replaced:  # their rows, whoever wrote them (an earlier Bronze replay, or their original source here)
        keys_replaced = sorted({k for _, _, keys in replaced for k in keys})
        delete_sources(lake, [p.source_id for p, _, _ in replaced], SCHEMA, keys_replaced)  # dead letters alike
        for read in (t for t in (table, quotes) if t is not None):
            starts = [(p.source_id, generation) for p, generation, _ in replaced if schema_of(p) == read.spec.name]
            if starts:
                record_starts(lake, starts, read.path, read.spec.name, cfg.run.run_id, size_bytes=0)
    mine = {p.source_id: instruments[p.source_id] for p in pending}
    bronze = BronzePlan(table, tuple(pending), mine, tuple(left["finished"]), tuple(left["original"]),
                        tuple(left["overwritten"]), quotes)
    plan = _replay_plan(lake, bronze, generations)
    return replace(plan, chains=bronze_chain_facts(table.lake, pending, instruments)), bronze


def _decide(cfg: AppConfig, lake: Lake, part: BronzeSlice, keys: tuple[str, ...], rows: list[dict],
            claimed: frozenset[str], opened: dict[str, DeltaTable | None]) -> _Decision:
    """Replay the slice or leave it; one to overwrite is deleted (with the others) by the caller."""
    sid = part.source_id
    generation = max((r["generation"] for r in rows), default=0)
    finished = is_finished(lake, sid, schema_of(part), generation, rows, cfg.analytics.enabled,
                         cfg.analytics.enabled and cfg.scoring.backend != "off", opened)
    original = not rows and not claimed.isdisjoint(keys)
    if not cfg.run.overwrite:
        if finished or original:
            return _Decision(False, generation, "finished" if finished else "original")
        return _Decision(True, generation)
    if not rows and not original:
        return _Decision(True, generation)
    return _Decision(True, generation + 1 if rows else 0, "overwritten")


def _claimed_keys(manifest: list[dict]) -> frozenset[str]:
    """Books written by sources other than Bronze slices: those in the latest generation's
    complete manifest row of each file or topic partition."""
    latest: dict[str, dict] = {}
    for r in manifest:
        if r["source"].startswith(SOURCE_PREFIX) or r["status"] != "complete":
            continue
        if r["source"] not in latest or r["generation"] > latest[r["source"]]["generation"]:
            latest[r["source"]] = r
    return frozenset(k for r in latest.values() for k in (r["book_keys"] or []))


def _replay_plan(lake: Lake, bronze: BronzePlan, generations: dict[str, int]) -> ReplayPlan:
    """The graph's plan: a slice is planned like a file of one session (MBO, or ``cmbp-1``). Stored
    summaries (the priors of replayed sessions) are every one in the lake but those being replayed,
    per contract: a run may replay one contract of a day and skip another."""
    read = {"mbo": bronze.table} | ({QUOTES: bronze.quotes} if bronze.quotes is not None else {})
    files = tuple(PlannedFile(Path(read[s.schema].uri), s.source_id, s.schema, generations[s.source_id],
                              (s.session_date,)) for s in bronze.slices)
    replayed = {(iid, s.session_date) for s in bronze.slices if s.schema == "mbo" for iid in s.instrument_ids}
    stored = {iid: {d: summary for d, summary in by_date.items() if (iid, d) not in replayed}
              for iid, by_date in stored_summaries_outside(lake, frozenset()).items()}
    return ReplayPlan(files=files, generations=generations, stored_summaries=stored,
                      calibrations=stored_calibrations(lake))


def bronze_chain_facts(lake: Lake, pending: list[BronzeSlice],
                       instruments: dict[str, dict[int, InstrumentInfo]]) -> ChainFacts:
    """The chains a Bronze replay builds: one per underlier and session with an option slice in
    the run, fed by exactly those slices (``ChainFacts.feeds``); open interest from the read lake's
    ``bronze.statistics``; the underlyings' names and venues from their definitions."""
    slices = [ChainSource(p.source_id, instruments[p.source_id], (p.session_day,), frozenset(p.instrument_ids))
              for p in pending]
    return facts_of(slices, lambda: stored_open_interest(lake), instruments.values())
