"""The built-in sample as a story: its earlier sessions are replayed and a model is trained on them
on first use, so that the main run over its last session scores every episode with a registered
champion.

``python -m bytewax.run flows.main`` with no input configured calls :func:`prepare_history` before
it builds its graph. SPEC §1 makes that plain entry point, with no configuration, the way to see
the sample, so the entry point prepares it, not a Makefile step that only ``make sample`` would
run. The preparation runs the commands a user would type, each in a subprocess
(``python -m flows.cli replay | snapshot | train``):

- the history replay is ``spymaster replay`` as a user runs it (its plan, progress bar and
  summary), not a second dataflow wired and run inside the import of ``flows.main``;
- training leaves scikit-learn's and Hyperopt's objects, MLflow's runs and their threads behind,
  and what start-up leaves alive is frozen for the life of the flow (``flows.heap``): the main
  process should hold the flow and its scorer only;
- a failed step stops the story with the command's own message, and the story is the README's
  commands, so the two cannot drift apart.

Idempotent, and quick the second time: the history replay starts only when the plan
``spymaster replay`` would make has files left to read (finished files are skipped), and training
only when the registry has no version under the scoring alias (a registered champion is reused).
The history is replayed with scoring off: it is there to be trained on, and every score in the
lake then comes from the champion.

Only a single-process run of the built-in sample, with the local scorer, no date range and a local
lake tells the story; any other configuration replays the sample as configured.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from rich.console import Console

from connectors.delta.lake import Lake
from flows.app import sample_inputs
from flows.cluster import ProcessIdentity
from flows.config import AppConfig, DateRange
from flows.plan import plan_replay
from operators.errors import ConfigError
from operators.vectors.layout import model_id_for

log = logging.getLogger("spymaster.sample")

HISTORY_TRIALS = 3
"""Hyperopt evaluations for the sample's model: enough to show the search and register a real
model, few enough to take seconds (``spymaster train`` defaults to 20)."""
_MIN_HISTORY = 5
"""Sessions ``spymaster train`` needs: three to train on, one to validate, one to test."""
_MBO_FILE = re.compile(r"glbx-mdp3-(\d{8})\.mbo\.dbn\.zst$")


@dataclass(frozen=True, slots=True)
class Story:
    """What the built-in sample's first use prepares, and what the main run then replays."""

    sample_dir: Path
    history: DateRange
    """Sessions replayed and trained on before the main run."""
    scored: DateRange
    """The last session: the main run replays it and scores its episodes."""
    model_id: str


def is_built_in_sample(cfg: AppConfig) -> bool:
    """No input configured: the flow replays the built-in sample (topics and Bronze are inputs too)."""
    return not cfg.source.inputs


def prepare_history(cfg: AppConfig, me: ProcessIdentity, console: Console | None = None) -> AppConfig:
    """The configuration of the main run. For the built-in sample, its last session, once the
    earlier ones are in the lake and a champion is registered (both done here on first use)."""
    if not is_built_in_sample(cfg) or me.count > 1:
        return cfg
    story = story_of(cfg, sample_inputs(cfg.source.sample_dir))
    if story is None:
        return cfg
    console = console or Console(stderr=True)
    with _locked(story.sample_dir / ".story.lock"):  # a second `make sample` at once waits, then reuses
        _replay_history(cfg, story, console)
        _train_champion(cfg, story, console)
    return replace(cfg, source=replace(cfg.source, dates=story.scored))


def story_of(cfg: AppConfig, files: list[Path]) -> Story | None:
    """The story the sample in ``files`` can tell under ``cfg``, or None to replay it as configured."""
    if cfg.source.dates is not None or cfg.scoring.backend != "local":
        return None
    if "://" in cfg.lake.root:
        log.info("the built-in sample trains its model only into a local lake; replaying it into %s as configured",
                 cfg.lake.root)
        return None
    days = sample_days(files)
    if len(days) < _MIN_HISTORY + 1:
        log.warning("the sample in %s holds %d session(s), too few to train a model on (%d needed); delete it to have "
                    "it generated anew", cfg.source.sample_dir, len(days), _MIN_HISTORY + 1)
        return None
    return Story(cfg.source.sample_dir, DateRange(first=days[0], last=days[-2]),
                 DateRange(first=days[-1], last=days[-1]), model_id_for("ES"))


def sample_days(files: list[Path]) -> list[date]:
    """The sessions of the sample's MBO files (``replay.synth`` names them by trade date)."""
    found = (_MBO_FILE.search(p.name) for p in files)
    return sorted(datetime.strptime(m.group(1), "%Y%m%d").date() for m in found if m)


def _replay_history(cfg: AppConfig, story: Story, console: Console) -> None:
    history = replace(cfg, source=replace(cfg.source, dates=story.history), run=replace(cfg.run, overwrite=False),
                      scoring=replace(cfg.scoring, backend="off"))
    files = sample_inputs(story.sample_dir)
    if not plan_replay(history, Lake(cfg.lake.root, dict(cfg.lake.storage_options)), files).files:
        return
    span = f"{story.history.first}:{story.history.last}"
    _say(console, f"1/3 replaying the sample's first sessions ({span}) to learn from")
    _spymaster(console, ("replay", str(story.sample_dir), "--lake", cfg.lake.root, "--dates", span),
               {"SPYMASTER_SCORING_BACKEND": "off", "SPYMASTER_OVERWRITE": "0"})


def _train_champion(cfg: AppConfig, story: Story, console: Console) -> None:
    from connectors.mlflow.tracking import champion_version, local_store_missing, tracking_uri

    uri, alias = tracking_uri(), cfg.scoring.alias
    found = None if local_store_missing(uri) else champion_version(story.model_id, alias, uri)
    if found is not None:
        log.info("reusing %s version %s (%s) from %s", story.model_id, found.version, alias, uri)
        return
    _say(console, f"2/3 freezing the labelled episodes of {story.model_id} into a training snapshot")
    _spymaster(console, ("snapshot", "--lake", cfg.lake.root, "--model-id", story.model_id))
    _say(console, f"3/3 training {story.model_id} ({HISTORY_TRIALS} Hyperopt trials) and registering it as {alias}")
    _spymaster(console, ("train", "--lake", cfg.lake.root, "--model-id", story.model_id,
                         "--trials", str(HISTORY_TRIALS), "--alias", alias))


def _say(console: Console, headline: str) -> None:
    console.print(f"[bold cyan]built-in sample, first use[/bold cyan] {headline}", soft_wrap=True)


def _spymaster(console: Console, args: tuple[str, ...], env: Mapping[str, str] | None = None) -> None:
    """Run ``spymaster ARGS`` as a user would, its output on this terminal; one sentence if it fails."""
    command = "spymaster " + " ".join(args)
    console.print(f"  $ {command}", style="dim", soft_wrap=True)
    done = subprocess.run([sys.executable, "-m", "flows.cli", *args], env={**os.environ, **(env or {})}, check=False)
    if done.returncode != 0:
        msg = f"preparing the built-in sample stopped: `{command}` exited with status {done.returncode} (see above)"
        raise ConfigError(msg)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield
