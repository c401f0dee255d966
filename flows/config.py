"""Configuration: defaults, then a TOML file, then environment variables, in that order.

This is the only module that reads the environment. Every value is checked once, here, and a
problem is one sentence naming the value and the fix.

TOML layout (every key optional)::

    [source]
    inputs = ["data/*.dbn.zst"]   # files, directories or globs
    batch_records = 65536
    speed = 10.0                  # real time x factor; omit for as fast as possible
    dates = "2025-11-03:2025-11-05"

    [lake]
    root = "./lake"               # local path or any URI delta-rs accepts
    flush_rows = 1000000
    sink_partitions = 4           # commit lanes per table (default 4; 1 for a topic input)

    [run]
    workers = 1
    overwrite = false

    [options]                     # option chains' gamma exposure (docs/options.md)
    rate = 0.04                   # continuously compounded, for discounting
    sign_convention = "dealer_long_calls_short_puts"   # or dealer_short | dealer_long
    min_years = 0.000114          # time-to-expiry floor (one hour)
    min_vol = 0.05                # the lowest sigma gamma uses
    heartbeat_s = 60              # a quiet chain's rows at least this often

    [scoring]                     # in-flow scoring (flows.steps.inference_scores);
                                  # keys of connectors.scoring.ScoringConfig
    backend = "local"             # local | mlflow-http | azureml | off
    model_id = "ES_MODEL"
    batch_ms = 100                # micro-batch width in event time; 0 scores each episode at once
    neighbours = 25               # similar historical episodes retrieved per score

Environment: SPYMASTER_CONFIG (TOML path), SPYMASTER_INPUT (comma-separated inputs),
SPYMASTER_LAKE, SPYMASTER_BATCH_RECORDS, SPYMASTER_WORKERS, SPYMASTER_SPEED, SPYMASTER_DATES,
SPYMASTER_OVERWRITE (1/true), SPYMASTER_SINK_PARTITIONS (commit lanes per table), SPYMASTER_COMMIT_EVERY_S
(commit at least this often; topics default to 1), SPYMASTER_SAMPLE
(where the built-in sample lives),
SPYMASTER_ANALYTICS (0 runs the replay spine only), SPYMASTER_SCORING_BATCH_MS,
SPYMASTER_SCORING_NEIGHBOURS and the SPYMASTER_SCORING_* variables of ``connectors.scoring.config``
(backend, model id, alias, URL, key, timeouts ...), SPYMASTER_OPTIONS_RATE, _SIGN_CONVENTION,
_MIN_YEARS, _MIN_VOL, _HEARTBEAT_S (the ``[options]`` keys).

Topic input: SPYMASTER_INPUT=kafka://HOST:PORT/TOPIC or eventhubs://NAMESPACE/HUB (with
EVENTHUBS_CONNECTION_STRING; ``?transport=amqp`` reads over AMQP, for the Basic tier and the
emulator, ``connectors.eventhubs_amqp``), SPYMASTER_KAFKA_STOP_AT_END=1 for bounded mode (stop at the end
offsets current at start) instead of tailing; TOML: ``[source] inputs = "kafka://…"`` and
``stop_at_end = true``. A tailed topic moves quiet contracts forward on the wall clock
(``connectors.topic.ticks``): SPYMASTER_TICK_S (seconds between ticks, default 1; 0 turns them
off), SPYMASTER_IDLE_TIMEOUT_S (wall seconds without a message after which a partition's event
time follows the wall clock, default 3), SPYMASTER_LATENESS_S (how far a producer may send records
out of ``ts_recv`` order across instruments, default 1); TOML: ``[source] tick_s``,
``idle_timeout_s``, ``lateness_s``. Files, Bronze and bounded topic runs never tick.

Bronze input: SPYMASTER_INPUT=bronze://LAKE replays ``bronze.mbo`` of LAKE (``bronze://`` alone:
the lake the run writes) through the graph into the Silver and Gold tables of SPYMASTER_LAKE
(``connectors.bronze``, ``flows.bronze_plan``); SPYMASTER_DATES limits the sessions.

Output topics (``connectors.kafka.outputs``): SPYMASTER_OUTPUT_BOOTSTRAP (HOST:PORT, or
``eventhubs``) and SPYMASTER_OUTPUT_TOPICS (``features_gold,inference_scores`` or TABLE=TOPIC
pairs); TOML: ``[outputs] bootstrap = "…"`` and ``topics = [...]``.

A Fabric Eventhouse (``connectors.kusto.config``): SPYMASTER_EVENTHOUSE (query URI),
SPYMASTER_EVENTHOUSE_INGEST, _DB, _TABLES, _AUTH, _FLUSH_S; TOML ``[eventhouse]``.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from connectors.delta.tables import ALL_TABLES
from connectors.kafka.outputs import OutputConfig
from connectors.kusto.config import EventhouseConfig
from connectors.scoring.config import Endpoint, ScoringConfig
from connectors.secrets import secret_env
from connectors.topic.ticks import TickConfig
from operators.approach import ApproachParams
from operators.calendar import CALENDARS, SessionWindows, TradingCalendar, calendar_of
from operators.errors import ConfigError
from operators.labels import LabelParams
from operators.options.chain import ChainGexConfig
from operators.options.gex import GexConfig

log = logging.getLogger("spymaster.config")

DEFAULT_SAMPLE_DIR = Path("sample")
DEFAULT_RAW_CACHE = Path.home() / ".cache" / "spymaster" / "raw"
DEFAULT_LAKE = "lake"


@dataclass(frozen=True, slots=True, kw_only=True)
class DateRange:
    """Inclusive range of session dates."""

    first: date
    last: date

    @staticmethod
    def parse(text: str) -> DateRange:
        try:
            a, _, b = text.partition(":")
            first = date.fromisoformat(a.strip())
            last = date.fromisoformat(b.strip()) if b.strip() else first
        except ValueError:
            msg = f"dates {text!r} are not YYYY-MM-DD:YYYY-MM-DD"
            raise ConfigError(msg) from None
        if last < first:
            msg = f"dates {text!r} end before they start"
            raise ConfigError(msg)
        return DateRange(first=first, last=last)

    def __contains__(self, d: date) -> bool:
        return self.first <= d <= self.last


BRONZE_SCHEME = "bronze://"
"""``SPYMASTER_INPUT=bronze://LAKE``: replay ``bronze.mbo`` of LAKE (``connectors.bronze``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    inputs: tuple[str, ...] = ()
    """Files, directories or globs. Empty means the built-in sample."""
    batch_records: int = 65_536
    speed: float | None = None
    """Replay pacing: real time × speed; None replays as fast as possible."""
    dates: DateRange | None = None
    sample_dir: Path = DEFAULT_SAMPLE_DIR
    kafka_stop_at_end: bool = False
    """Topic input only: stop at the end offsets current at start (bounded) instead of tailing."""
    eventhubs_connection: str = field(default="", repr=False)
    """EVENTHUBS_CONNECTION_STRING, for an ``eventhubs://`` input (a secret: never logged)."""
    ticks: TickConfig = field(default_factory=TickConfig)
    """Tailed topic only: wall-clock ticks that move quiet contracts forward (tick_s, idle_timeout_s, lateness_s)."""
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False)
    """``[source] storage_options``: the raw files' Azure account, when not the lake's (``connectors.blob_files``)."""
    raw_cache: Path = DEFAULT_RAW_CACHE
    """Where DBN files read from Azure storage are kept (SPYMASTER_RAW_CACHE)."""

    def __post_init__(self) -> None:
        if self.batch_records <= 0:
            msg = f"[source].batch_records must be positive, got {self.batch_records}"
            raise ConfigError(msg)
        if self.speed is not None and self.speed <= 0:
            msg = f"[source].speed must be positive (or omitted for maximum speed), got {self.speed}"
            raise ConfigError(msg)
        if any(str(i).startswith(BRONZE_SCHEME) for i in self.inputs) and len(self.inputs) > 1:
            msg = f"a {BRONZE_SCHEME}LAKE input must be the only input, got {len(self.inputs)} inputs"
            raise ConfigError(msg)
        if self.bronze_lake is not None and self.speed is not None:
            msg = f"[source].speed paces files and topics, not a {BRONZE_SCHEME} replay; leave it unset"
            raise ConfigError(msg)

    @property
    def bronze_lake(self) -> str | None:
        """The lake whose ``bronze.mbo`` is replayed (``bronze://LAKE``; ``""`` for ``bronze://``,
        the lake the run writes), or None when the input is files or a topic."""
        if len(self.inputs) == 1 and str(self.inputs[0]).startswith(BRONZE_SCHEME):
            return str(self.inputs[0])[len(BRONZE_SCHEME):]
        return None


def _is_topic(inputs: tuple[str, ...]) -> bool:
    return len(inputs) == 1 and str(inputs[0]).startswith(("kafka://", "eventhubs://"))


def _default_lanes(inputs: tuple[str, ...]) -> int:
    """Commit lanes per table: 4 for a replay (Parquet encoding of big batches runs in parallel
    lanes), 1 for a topic (live batches are small; every lane is one more Delta commit per table
    per epoch, on a 2-core machine the difference between keeping up and not)."""
    return 1 if _is_topic(inputs) else 4


TOPIC_COMMIT_EVERY_S = 2.0
"""How often a topic's rows are committed to Delta when nothing else asks.

Each busy table commits once per tick, and a commit has a fixed CPU cost however few its rows,
so on a live flow the clock sets most of the commit work, and that work competes with the
worker for a small machine's cores. A longer clock halves it at the price of rows becoming
durable later; readers that need low latency take the output topics, which do not wait for
commits. The runs behind the choice of 2 s: docs/benchmarks.md."""


def _default_commit_every(inputs: tuple[str, ...]) -> float | None:
    """A topic's rows are committed on a clock even when nothing asks (a tailing flow without
    recovery has no epoch snapshots); a replay commits at flush_rows, snapshots and close."""
    return TOPIC_COMMIT_EVERY_S if _is_topic(inputs) else None


RECOVERY_EPOCH_S = 2
"""The epoch (snapshot) interval of a flow with recovery: ``spymaster replay --recovery``, the
cluster launcher, ``spymaster bench --live`` and the StatefulSet's ``BYTEWAX_SNAPSHOT_INTERVAL``.
Bytewax's input polls a partition for a new epoch only once every output has finished the
previous one, snapshots and their recovery write included, so each epoch end pauses the input
(at short epochs, most of the worker's time); Delta commits do not wait for it
(``commit_every_s``), so a longer epoch costs only a longer re-read after a crash."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LakeConfig:
    root: str = DEFAULT_LAKE
    flush_rows: int = 1_000_000
    sink_partitions: int = 4
    storage_options: Mapping[str, str] = field(default_factory=dict)
    commit_every_s: float | None = None
    """Commit buffered rows at least this often (None: only at flush_rows, snapshots, close)."""

    def __post_init__(self) -> None:
        if self.flush_rows <= 0 or self.sink_partitions <= 0:
            msg = "[lake].flush_rows and [lake].sink_partitions must be positive"
            raise ConfigError(msg)
        if self.commit_every_s is not None and self.commit_every_s <= 0:
            msg = f"[lake].commit_every_s must be positive (or omitted), got {self.commit_every_s}"
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class BookConfig:
    depth: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= 10:
            msg = f"[book].depth must be between 1 and 10, got {self.depth}"
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticsConfig:
    """Session windows, approach and label thresholds (``[sessions]``, ``[approach]``, ``[labels]``)."""

    enabled: bool = True
    """False runs the replay spine only (Bronze, the 1-second book), e.g. to measure its cost."""
    windows: SessionWindows = field(default_factory=SessionWindows)
    approach: ApproachParams = field(default_factory=ApproachParams)
    labels: LabelParams = field(default_factory=LabelParams)
    calendars: tuple[TradingCalendar, ...] = tuple(CALENDARS.values())
    """Each venue's trading calendar with its configured half days (``[calendars.<name>]``)."""

    def calendar(self, venue: str) -> TradingCalendar:
        """The calendar an instrument of ``venue`` (``InstrumentInfo.venue``) follows."""
        return calendar_of(venue, {c.name: c for c in self.calendars})


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceConfig:
    """How the flow feeds the scorer (``[scoring]`` batch_ms and neighbours; see ``flows.steps.inference_scores``)."""

    batch_ms: int = 100
    """Micro-batch width in event time; 0 scores each episode at once."""
    neighbours: int = 25
    """Similar historical episodes retrieved for each score."""

    def __post_init__(self) -> None:
        if self.batch_ms < 0:
            msg = f"[scoring].batch_ms must be zero or positive, got {self.batch_ms}"
            raise ConfigError(msg)
        if self.neighbours < 1:
            msg = f"[scoring].neighbours must be at least 1, got {self.neighbours}"
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    workers: int = 1
    overwrite: bool = False
    run_id: str = ""

    def __post_init__(self) -> None:
        if self.workers <= 0:
            msg = f"[run].workers must be positive, got {self.workers}"
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    lake: LakeConfig = field(default_factory=LakeConfig)
    book: BookConfig = field(default_factory=BookConfig)
    run: RunConfig = field(default_factory=RunConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    """[outputs]: tables also published to Kafka topics (connectors.kafka.outputs)."""
    eventhouse: EventhouseConfig = field(default_factory=EventhouseConfig)
    options: ChainGexConfig = field(default_factory=ChainGexConfig)
    """``[options]``: the option chains' gamma exposure (``operators.options``)."""
    """[eventhouse]: features and scores also ingested into a Fabric Eventhouse (connectors.kusto)."""


def load_config(env: Mapping[str, str] | None = None, toml_path: Path | None = None) -> AppConfig:
    """Merge defaults, the TOML file (``toml_path`` or ``SPYMASTER_CONFIG``) and the environment."""
    env = secret_env(os.environ if env is None else env)  # unset secrets from SPYMASTER_KEYVAULT
    path = toml_path or (Path(env["SPYMASTER_CONFIG"]) if env.get("SPYMASTER_CONFIG") else None)
    doc = _read_toml(path) if path else {}
    src, lake, book, run = (doc.get(k, {}) for k in ("source", "lake", "book", "run"))
    analytics = _analytics(doc.get("sessions", {}), doc.get("approach", {}), doc.get("labels", {}))
    analytics = replace(analytics, calendars=_calendars(doc.get("calendars", {})))
    enabled = _bool(env.get("SPYMASTER_ANALYTICS"), doc.get("analytics", {}).get("enabled", True))
    analytics = replace(analytics, enabled=enabled)
    cfg = AppConfig(
        source=SourceConfig(
            inputs=_inputs(env.get("SPYMASTER_INPUT"), src.get("inputs")),
            batch_records=_int("SPYMASTER_BATCH_RECORDS", env, src.get("batch_records", 65_536)),
            speed=_float_or_none(env.get("SPYMASTER_SPEED"), src.get("speed")),
            dates=_dates(env.get("SPYMASTER_DATES") or src.get("dates")),
            sample_dir=Path(env.get("SPYMASTER_SAMPLE") or src.get("sample_dir") or DEFAULT_SAMPLE_DIR),
            kafka_stop_at_end=_bool(env.get("SPYMASTER_KAFKA_STOP_AT_END"), src.get("stop_at_end", False)),
            eventhubs_connection=str(env.get("EVENTHUBS_CONNECTION_STRING") or ""),
            ticks=_ticks(src, env),
            storage_options=dict(src.get("storage_options", {})),
            raw_cache=Path(env.get("SPYMASTER_RAW_CACHE") or src.get("raw_cache") or DEFAULT_RAW_CACHE),
        ),
        lake=LakeConfig(
            root=str(env.get("SPYMASTER_LAKE") or lake.get("root") or DEFAULT_LAKE),
            flush_rows=int(lake.get("flush_rows", 1_000_000)),
            sink_partitions=_int("SPYMASTER_SINK_PARTITIONS", env, lake.get(
                "sink_partitions", _default_lanes(_inputs(env.get("SPYMASTER_INPUT"), src.get("inputs"))))),
            storage_options=dict(lake.get("storage_options", {})),
            commit_every_s=_float_or_none(env.get("SPYMASTER_COMMIT_EVERY_S"), lake.get(
                "commit_every_s", _default_commit_every(_inputs(env.get("SPYMASTER_INPUT"), src.get("inputs")))),
                "commit_every_s"),
        ),
        book=BookConfig(depth=int(book.get("depth", 10))),
        run=RunConfig(
            workers=_int("SPYMASTER_WORKERS", env, run.get("workers", 1)),
            overwrite=_bool(env.get("SPYMASTER_OVERWRITE"), run.get("overwrite", False)),
            run_id=str(env.get("SPYMASTER_RUN_ID") or run.get("run_id", "")),
        ),
        analytics=analytics,
        scoring=_scoring(doc.get("scoring", {}), env),
        outputs=OutputConfig.from_settings(doc.get("outputs", {}), env, {t.name for t in ALL_TABLES}),
        eventhouse=EventhouseConfig.from_settings(doc.get("eventhouse", {}), env, on_topic=_is_topic(
            _inputs(env.get("SPYMASTER_INPUT"), src.get("inputs")))),
        options=_options(doc.get("options", {}), env),
        inference=InferenceConfig(
            batch_ms=_int("SPYMASTER_SCORING_BATCH_MS", env, doc.get("scoring", {}).get("batch_ms", 100)),
            neighbours=_int("SPYMASTER_SCORING_NEIGHBOURS", env, doc.get("scoring", {}).get("neighbours", 25)),
        ),
    )
    log.debug("effective configuration: %s", describe(cfg))  # long; the log's INFO lines say what happens
    return cfg


def describe(cfg: AppConfig) -> str:
    """One line for the log, with storage secrets masked."""
    masked = {k: "***" for k in cfg.lake.storage_options}
    return f"{replace(cfg, lake=replace(cfg.lake, storage_options=masked))}"


def _scoring(section: dict[str, Any], env: Mapping[str, str]) -> ScoringConfig:
    """``[scoring]`` under the SPYMASTER_SCORING_* environment; the key never comes from a file."""
    known = set(ScoringConfig.__dataclass_fields__) - {"key", "endpoints"}
    values = {k: v for k, v in section.items() if k not in ("batch_ms", "neighbours", "endpoints")}
    if "key" in values:
        msg = "[scoring].key is a secret and is not read from files; set SPYMASTER_SCORING_KEY or Key Vault"
        raise ConfigError(msg)
    unknown = sorted(set(values) - known)
    if unknown:
        msg = f"unknown key [scoring].{unknown[0]}; known: {', '.join(sorted(known | {'batch_ms', 'neighbours'}))}"
        raise ConfigError(msg)
    # TOML values enter as the lowest-priority environment, so a backend chosen in the file may take
    # its URL from the environment (the config is only checked once, complete)
    from_file = {f"SPYMASTER_SCORING_{k.upper()}": str(v) for k, v in values.items()}
    cfg = ScoringConfig.from_env({**from_file, **{k: v for k, v in env.items() if v}})
    return replace(cfg, endpoints=_endpoints(section.get("endpoints", {}), env)) if "endpoints" in section else cfg


def _endpoints(section: dict[str, Any], env: Mapping[str, str]) -> tuple[Endpoint, ...]:
    """``[scoring.endpoints.<MODEL_ID>]``: url, deployment, and key_env or key_secret (never the key)."""
    out = []
    for model_id, values in sorted(section.items()):
        where = f"[scoring.endpoints.{model_id}]"
        if not isinstance(values, dict):
            msg = f"{where} must be a table with url, deployment, key_env or key_secret"
            raise ConfigError(msg)
        unknown = sorted(set(values) - {"url", "deployment", "key_env", "key_secret"})
        if unknown:
            hint = "; keys are secrets and are not read from files" if "key" in unknown else ""
            msg = f"unknown key {where}.{unknown[0]}; known: deployment, key_env, key_secret, url{hint}"
            raise ConfigError(msg)
        out.append(Endpoint(model_id=model_id, url=str(values.get("url", "")),
                            deployment=str(values["deployment"]) if "deployment" in values else None,
                            key=_endpoint_key(where, values, env)))
    return tuple(out)


def _endpoint_key(where: str, values: dict[str, Any], env: Mapping[str, str]) -> str | None:
    if "key_env" in values:
        name = str(values["key_env"])
        if not env.get(name):
            msg = f"{where}.key_env names {name}, which is not set in the environment"
            raise ConfigError(msg)
        return env[name]
    if "key_secret" in values:
        vault = (env.get("SPYMASTER_SCORING_KEY_VAULT", "") or env.get("SPYMASTER_KEYVAULT", "")).strip()
        if not vault:
            msg = (f"{where}.key_secret needs SPYMASTER_KEYVAULT or SPYMASTER_SCORING_KEY_VAULT "
                   "(https://<vault>.vault.azure.net)")
            raise ConfigError(msg)
        from connectors.keyvault import fetch_secret

        return fetch_secret(vault, str(values["key_secret"]))
    return None


def _analytics(sessions: dict[str, Any], approach: dict[str, Any], labels: dict[str, Any]) -> AnalyticsConfig:
    """``[sessions]`` takes windows as "HH:MM-HH:MM" strings (pm, rth, opening_range, setup) and
    ``buckets``; ``[approach]`` and ``[labels]`` take the fields of their parameter classes."""
    from datetime import time

    def window(name: str) -> dict[str, tuple[time, time]]:
        if name not in sessions:
            return {}
        try:
            a, b = str(sessions[name]).split("-")
            return {name: (time.fromisoformat(a.strip()), time.fromisoformat(b.strip()))}
        except ValueError:
            msg = f"[sessions].{name} = {sessions[name]!r} is not HH:MM-HH:MM"
            raise ConfigError(msg) from None

    for section, values in (("approach", approach), ("labels", labels)):
        if "tick" in values:
            msg = (f"[{section}].tick is not a setting: each instrument's tick is its definition's "
                   "min_price_increment; remove it")
            raise ConfigError(msg)
    windows: dict[str, Any] = {}
    for name in ("pm", "rth", "opening_range", "setup"):
        windows |= window(name)
    if "buckets" in sessions:
        windows["buckets"] = int(sessions["buckets"])
    try:
        return AnalyticsConfig(windows=SessionWindows(**windows), approach=ApproachParams(**approach),
                               labels=LabelParams(**labels))
    except TypeError as err:
        msg = f"unknown key in [sessions], [approach] or [labels]: {err}"
        raise ConfigError(msg) from None


def _calendars(section: dict[str, Any]) -> tuple[TradingCalendar, ...]:
    """``[calendars.cme_globex]`` / ``[calendars.us_equities]``: ``half_days`` (ISO dates whose
    regular session closes early) and ``early_close`` ("HH:MM" New York time)."""
    from datetime import time

    unknown = sorted(set(section) - set(CALENDARS))
    if unknown:
        msg = f"unknown calendar [calendars.{unknown[0]}]; known: {', '.join(sorted(CALENDARS))}"
        raise ConfigError(msg)
    out = []
    for name, base in CALENDARS.items():
        values = section.get(name, {})
        extra = sorted(set(values) - {"half_days", "early_close"})
        if extra:
            msg = f"unknown key [calendars.{name}].{extra[0]}; known: early_close, half_days"
            raise ConfigError(msg)
        try:
            days = [date.fromisoformat(str(d)) for d in values.get("half_days", ())]
            close = time.fromisoformat(str(values["early_close"])) if "early_close" in values else None
        except ValueError as err:
            msg = f"[calendars.{name}]: {err}; half_days are YYYY-MM-DD dates and early_close is HH:MM"
            raise ConfigError(msg) from None
        out.append(base.with_half_days(days, close) if values else base)
    return tuple(out)


def _options(section: dict[str, Any], env: Mapping[str, str]) -> ChainGexConfig:
    """``[options] rate, sign_convention, min_years, min_vol, heartbeat_s`` under SPYMASTER_OPTIONS_*."""
    gex = GexConfig()
    try:
        rate, min_years, min_vol = (float(env.get(f"SPYMASTER_OPTIONS_{k.upper()}") or section.get(k, getattr(gex, k)))
                                    for k in ("rate", "min_years", "min_vol"))
        heartbeat = _int("SPYMASTER_OPTIONS_HEARTBEAT_S", env, section.get("heartbeat_s", ChainGexConfig().heartbeat_s))
        convention = str(env.get("SPYMASTER_OPTIONS_SIGN_CONVENTION") or section.get("sign_convention",
                                                                                     gex.sign_convention))
        return ChainGexConfig(gex=replace(gex, rate=rate, min_years=min_years, min_vol=min_vol,
                                          sign_convention=convention),  # type: ignore[arg-type]  # checked there
                              heartbeat_s=heartbeat)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[options] / SPYMASTER_OPTIONS_*: {err}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        msg = f"config file {path} does not exist; fix SPYMASTER_CONFIG or create it"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as err:
        msg = f"config file {path} is not valid TOML: {err}"
        raise ConfigError(msg) from None


def _inputs(env_value: str | None, toml_value: Any) -> tuple[str, ...]:
    if env_value:
        return tuple(p.strip() for p in env_value.split(",") if p.strip())
    if toml_value is None:
        return ()
    if isinstance(toml_value, str):
        return (toml_value,)
    return tuple(str(p) for p in toml_value)


def _int(name: str, env: Mapping[str, str], default: Any) -> int:
    raw = env.get(name)
    try:
        return int(raw) if raw else int(default)
    except ValueError:
        msg = f"{name}={raw!r} is not an integer"
        raise ConfigError(msg) from None


def _ticks(src: dict[str, Any], env: Mapping[str, str]) -> TickConfig:
    """``[source] tick_s, idle_timeout_s, lateness_s`` under SPYMASTER_TICK_S, _IDLE_TIMEOUT_S, _LATENESS_S."""
    defaults = TickConfig()
    return TickConfig(**{key: _seconds(f"SPYMASTER_{key.upper()}", key, env, src, getattr(defaults, key))
                         for key in ("tick_s", "idle_timeout_s", "lateness_s")})


def _seconds(name: str, key: str, env: Mapping[str, str], section: dict[str, Any], default: float) -> float:
    raw = env.get(name) or section.get(key, default)
    try:
        return float(raw)
    except (TypeError, ValueError):
        msg = f"{name} / [source].{key} = {raw!r} is not a number of seconds"
        raise ConfigError(msg) from None


def _float_or_none(env_value: str | None, toml_value: Any, name: str = "speed") -> float | None:
    raw = env_value if env_value else toml_value
    if raw in (None, "", "max"):
        return None
    try:
        return float(raw)
    except ValueError:
        msg = f"{name} {raw!r} is not a number (or 'max')" if name == "speed" else f"{name} {raw!r} is not a number"
        raise ConfigError(msg) from None


def _bool(env_value: str | None, default: Any) -> bool:
    if env_value is None or env_value == "":
        return bool(default)
    return env_value.strip().lower() in {"1", "true", "yes", "on"}


def _dates(text: str | None) -> DateRange | None:
    return DateRange.parse(text) if text else None
