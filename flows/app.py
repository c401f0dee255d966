"""Everything between a configuration and a runnable dataflow: inputs, plan, lake, source."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bytewax.dataflow import Dataflow

from connectors.blob_files import fetch_inputs, is_remote
from connectors.dbn.ended import EndedDbnSource
from connectors.dbn.source import DbnReplaySource, resolve_inputs, source_id_of
from connectors.delta.lake import Lake
from connectors.machine import cores_per_worker
from connectors.topic.input import is_topic_input
from flows.bronze_plan import BronzePlan
from flows.config import AppConfig
from flows.graph import Sinks, build_flow
from flows.heap import freeze_start_up
from flows.plan import ReplayPlan, plan_replay
from operators import halves
from operators.errors import ConfigError, SourceError

log = logging.getLogger("spymaster")


@dataclass(frozen=True, slots=True)
class PreparedRun:
    cfg: AppConfig
    lake: Lake
    plan: ReplayPlan
    flow: Dataflow
    sinks: Sinks
    bronze: BronzePlan | None = None
    """Set for a replay from Bronze: the slices it reads and those it leaves."""
    records_read: Callable[[], int] | None = None
    """Records the source has emitted in this process, when they do not land in Bronze (progress)."""


SAMPLE_DAYS = 6
"""Sessions in the built-in sample: the earlier ones train a model on first use (``flows.sample``),
which needs five (three to train on, one to validate, one to test); the last is the one the main
run replays and scores."""


def sample_inputs(sample_dir: Path) -> list[Path]:
    """The built-in sample, generated deterministically on first use."""
    files = sorted(sample_dir.glob("*.dbn.zst"))
    if files:
        return files
    import shutil
    import tempfile

    from replay.synth import write_sample

    log.info("generating the built-in sample in %s (first use)", sample_dir)
    sample_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sample-", dir=sample_dir.parent))
    write_sample(staging, days=SAMPLE_DAYS)
    try:  # atomic: another process (a second Bytewax process) may have won the race
        staging.rename(sample_dir)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(sample_dir.glob("*.dbn.zst"))


def local_inputs(cfg: AppConfig) -> list[str]:
    """The configured inputs, with files on Azure storage copied into the local cache first."""
    if not any(is_remote(spec) for spec in cfg.source.inputs):
        return list(cfg.source.inputs)
    options = cfg.source.storage_options or cfg.lake.storage_options
    return fetch_inputs(cfg.source.inputs, cfg.source.raw_cache, options)


def prepare(cfg: AppConfig) -> PreparedRun:
    """Resolve inputs, plan the replay, create the tables and wire the flow."""
    halves.use_cores(cores_per_worker(cfg.run.workers))  # a pod's CPU limit, not the node's cores
    if not cfg.run.run_id:
        cfg = replace(cfg, run=replace(cfg.run, run_id=uuid.uuid4().hex[:12]))
    if is_topic_input(cfg.source.inputs):
        return _prepare_topic(cfg)
    if cfg.source.bronze_lake is not None:
        return _prepare_bronze(cfg)
    try:
        inputs = resolve_inputs(local_inputs(cfg)) if cfg.source.inputs else sample_inputs(cfg.source.sample_dir)
    except SourceError as err:
        raise ConfigError(str(err)) from None
    lake = Lake(cfg.lake.root, dict(cfg.lake.storage_options))
    lake.ensure_all()
    plan = plan_replay(cfg, lake, inputs)
    paths = [f.path for f in plan.files]
    inner = DbnReplaySource(paths, batch_records=cfg.source.batch_records, speed=cfg.source.speed)
    finished = tuple(source_id_of(p) for p in plan.skipped)
    source = EndedDbnSource(inner, {f.source_id: f.schema for f in plan.files}, finished)
    sinks = Sinks.delta(cfg, lake)
    return _started(PreparedRun(cfg, lake, plan, build_flow(cfg, source, plan, sinks), sinks))


def _prepare_topic(cfg: AppConfig) -> PreparedRun:
    """A Kafka / Event Hubs input: same graph, no file plan (positions make reruns idempotent)."""
    from connectors.topic.dispatch import partition_source_ids, topic_source
    from flows.plan import plan_topic

    source = topic_source(cfg)  # fails fast, in one sentence, if the broker or topic is not there
    lake = Lake(cfg.lake.root, dict(cfg.lake.storage_options))
    lake.ensure_all()
    plan = plan_topic(lake, partition_source_ids(source), bounded=cfg.source.kafka_stop_at_end)
    sinks = Sinks.delta(cfg, lake)
    return _started(PreparedRun(cfg, lake, plan, build_flow(cfg, source, plan, sinks), sinks))


def _prepare_bronze(cfg: AppConfig) -> PreparedRun:
    """A replay of ``bronze.mbo`` and ``bronze.cmbp_1`` (``bronze://LAKE``): same graph, into this lake's
    Silver and Gold, planned per slice (``flows.bronze_plan``); nothing is written to Bronze."""
    from connectors.bronze.catalog import pinned_bronze
    from connectors.bronze.source import BronzeReplaySource
    from flows.bronze_plan import plan_bronze

    options = dict(cfg.lake.storage_options)
    try:
        table = pinned_bronze(Lake(cfg.source.bronze_lake or cfg.lake.root, options))
        lake = Lake(cfg.lake.root, options)
        lake.ensure_all()
        plan, bronze = plan_bronze(cfg, table, lake)
    except SourceError as err:
        raise ConfigError(str(err)) from None
    source = BronzeReplaySource(table, bronze.slices, bronze.instruments, done=bronze.done,
                                batch_records=cfg.source.batch_records, quotes=bronze.quotes)
    sinks = Sinks.delta(cfg, lake)
    flow = build_flow(cfg, source, plan, sinks, bronze_out=False)
    return _started(PreparedRun(cfg, lake, plan, flow, sinks, bronze, lambda: source.records_read))


def _started(run: PreparedRun) -> PreparedRun:
    """The flow is wired: what start-up built lives as long as the process (``flows.heap``)."""
    freeze_start_up()
    return run
