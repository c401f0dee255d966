"""Run the flow as P local Bytewax processes of N workers each, planned once.

A Bytewax cluster is P ``python -m bytewax.run flows.main -w N -i k -a host:port;...`` processes.
Each process imports ``flows.main`` and so prepares its own copy of the dataflow, including the
replay *plan* (files to skip, generations to start). The plan must be one decision, not P racing
ones, so the launcher decides it first, in this process: it resolves the inputs, creates the
tables, and performs ``--overwrite`` (delete the old rows, open the next generation). The children
then run with overwrite off and the launcher's run id, and each re-derives the same plan by
*reading* the lake. Reading is race-free because no process writes a row before the cluster has
formed, and the cluster forms only once every process has finished preparing and connected.

The plain entry point keeps that guarantee on its own: several processes started by hand (or by
Kubernetes) refuse ``overwrite`` (see ``refuse_racing_overwrite``); plan the overwrite once with
``spymaster replay --overwrite --plan-only`` and start the processes afterwards.

Recovery: one directory shared by the local processes holds ``P × N`` partitions (Bytewax's
layout for one machine: any worker may open any partition, and only one uses each).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.compute as pc

from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ
from connectors.recovery import prepare_store
from flows.app import PreparedRun
from flows.config import RECOVERY_EPOCH_S, AppConfig
from flows.runner import Progress
from operators.errors import ConfigError, SpymasterError

log = logging.getLogger("spymaster.cluster")

ROOT = Path(__file__).resolve().parents[1]
_STOP_GRACE_S = 10.0


class ClusterError(SpymasterError):
    """A process of the local cluster failed; the message names it and its last error line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    processes: int
    workers: int = 1
    recovery: Path | None = None
    snapshot_seconds: int = RECOVERY_EPOCH_S
    """Epoch (and snapshot) interval of every process when recovery is on."""

    def __post_init__(self) -> None:
        if self.processes <= 0 or self.workers <= 0:
            msg = f"--processes and --workers must be positive, got {self.processes} and {self.workers}"
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Which process of how many this is, as ``python -m bytewax.run`` will decide it."""

    index: int
    count: int


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def process_command(index: int, spec: ClusterSpec, addresses: Sequence[str]) -> list[str]:
    """The plain Bytewax command line of process ``index``."""
    cmd = [sys.executable, "-m", "bytewax.run", "flows.main", "-w", str(spec.workers)]
    if len(addresses) > 1:
        cmd += ["-i", str(index), "-a", ";".join(addresses)]
    if spec.recovery is not None:
        cmd += ["-r", str(spec.recovery), "-s", str(spec.snapshot_seconds), "-b", "0"]
    return cmd


def child_env(cfg: AppConfig, base: Mapping[str, str]) -> dict[str, str]:
    """The configuration as SPYMASTER_* variables; TOML-only settings come with SPYMASTER_CONFIG."""
    env = dict(base)
    src = cfg.source
    if src.inputs:  # else keep the caller's SPYMASTER_INPUT (the sample, or a topic)
        env["SPYMASTER_INPUT"] = ",".join(src.inputs)
    env["SPYMASTER_SAMPLE"] = str(src.sample_dir)
    env["SPYMASTER_LAKE"] = cfg.lake.root
    env["SPYMASTER_BATCH_RECORDS"] = str(src.batch_records)
    env["SPYMASTER_SPEED"] = "max" if src.speed is None else repr(src.speed)
    env["SPYMASTER_DATES"] = f"{src.dates.first}:{src.dates.last}" if src.dates else ""
    env["SPYMASTER_RUN_ID"] = cfg.run.run_id
    env["SPYMASTER_OVERWRITE"] = "0"  # the launcher performed it; see the module docstring
    env["SPYMASTER_ANALYTICS"] = "1" if cfg.analytics.enabled else "0"
    env["SPYMASTER_WORKERS"] = str(cfg.run.workers)
    if getattr(src, "kafka_stop_at_end", False):
        env["SPYMASTER_KAFKA_STOP_AT_END"] = "1"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def plan_once(cfg: AppConfig) -> PreparedRun:
    """Decide the plan in this process (overwrite included), under one run id for every process."""
    import uuid

    from flows.app import prepare

    if not cfg.run.run_id:
        cfg = replace(cfg, run=replace(cfg.run, run_id=uuid.uuid4().hex[:12]))
    return prepare(cfg)


def lake_progress(run: PreparedRun) -> Callable[[], Progress]:
    """Progress of processes we cannot look into: rows and manifest rows added to the lake (for a
    replay from Bronze, which adds no Bronze rows, the records of the partitions it finished)."""
    def counts() -> tuple[int, int]:
        lake = run.lake
        if run.bronze is not None:
            done = lake.read(BRONZE_MANIFEST, ["records", "status"]).filter(pc.equal(pc.field("status"), "complete"))
            return int(pc.sum(done["records"]).as_py() or 0), lake.count(BRONZE_MANIFEST)
        return lake.count(BRONZE_MBO) + lake.count(BRONZE_MBO_DLQ), lake.count(BRONZE_MANIFEST)

    base = counts()

    def now() -> Progress:
        rows, files = counts()
        return Progress(rows - base[0], files - base[1])

    return now


def run_cluster(run: PreparedRun, spec: ClusterSpec, *, on_tick: Callable[[Progress], None] | None = None,
                logs: Path | None = None, env: Mapping[str, str] | None = None) -> None:
    """Start ``spec.processes`` Bytewax processes on loopback for a planned run; wait for all.

    ``run`` comes from ``plan_once``. A failing process stops the others and raises
    ``ClusterError`` naming it; Ctrl-C stops every process (SIGINT, then SIGKILL after a grace
    period) and re-raises.
    """
    if spec.recovery is not None:
        prepare_store(spec.recovery, spec.processes * spec.workers)  # once, before any process starts
    addresses = [f"127.0.0.1:{p}" for p in free_ports(spec.processes)]
    log_dir = logs or Path(tempfile.mkdtemp(prefix="spymaster-cluster-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    environment = child_env(run.cfg, os.environ if env is None else env)
    progress = lake_progress(run) if on_tick is not None else None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for k in range(spec.processes):
            with (log_dir / f"process-{k}.log").open("wb") as out:
                procs.append(subprocess.Popen(  # noqa: S603
                    process_command(k, spec, addresses), cwd=ROOT, env=environment, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True))
        _wait_all(procs, log_dir, (lambda: on_tick(progress())) if on_tick and progress else None)
    except BaseException:
        stop_processes(procs)
        raise
    if on_tick is not None and progress is not None:
        on_tick(progress())


def _wait_all(procs: list[subprocess.Popen[bytes]], log_dir: Path, on_tick: Callable[[], None] | None) -> None:
    next_tick = time.monotonic() + 1.0
    while True:
        codes = [p.poll() for p in procs]
        failed = [k for k, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            k = failed[0]
            msg = (f"process {k} of {len(procs)} exited with code {codes[k]}: "
                   f"{_last_error(log_dir / f'process-{k}.log')} (logs in {log_dir})")
            raise ClusterError(msg)
        if all(c == 0 for c in codes):
            return
        if on_tick is not None and time.monotonic() >= next_tick:
            on_tick()
            next_tick = time.monotonic() + 1.0
        time.sleep(0.1)


def stop_processes(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGINT each live process by PID, then SIGKILL whatever is left after the grace period."""
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGINT)
    deadline = time.monotonic() + _STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def _last_error(path: Path) -> str:
    """The last meaningful line of a process log (a Python exception's one-line summary)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Exception" in line:
            return line[-400:]
    return lines[-1][-400:] if lines else "no output"


def this_process(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ProcessIdentity:
    """This process's index and the cluster size, read the way ``bytewax.run`` reads them:
    ``-i/-a`` (or ``BYTEWAX_PROCESS_ID``/``BYTEWAX_ADDRESSES``), else the StatefulSet convention
    (``BYTEWAX_POD_NAME`` minus ``BYTEWAX_STATEFULSET_NAME-``, addresses from
    ``BYTEWAX_HOSTFILE_PATH``). Bytewax's own variables, not Spymaster configuration."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-i", "--process-id", type=int, default=None)
    parser.add_argument("-a", "--addresses", default=None)
    args, _ = parser.parse_known_args(list(argv))
    index = args.process_id if args.process_id is not None else _int_or_none(env.get("BYTEWAX_PROCESS_ID"))
    if index is None and "BYTEWAX_POD_NAME" in env and "BYTEWAX_STATEFULSET_NAME" in env:
        index = int(env["BYTEWAX_POD_NAME"].replace(env["BYTEWAX_STATEFULSET_NAME"] + "-", ""))
    addresses = args.addresses or env.get("BYTEWAX_ADDRESSES")
    if index is not None and not addresses and env.get("BYTEWAX_HOSTFILE_PATH"):
        try:
            addresses = ";".join(ln.strip() for ln in Path(env["BYTEWAX_HOSTFILE_PATH"]).read_text().splitlines()
                                 if ln.strip())
        except OSError:
            addresses = None
    count = len([a for a in (addresses or "").split(";") if a.strip()]) or 1
    return ProcessIdentity(index or 0, count)


def recovery_directory(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The recovery directory ``bytewax.run`` was given (``-r`` or ``BYTEWAX_RECOVERY_DIRECTORY``)."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-r", "--recovery-directory", default=None)
    args, _ = parser.parse_known_args(list(argv))
    directory = args.recovery_directory or env.get("BYTEWAX_RECOVERY_DIRECTORY")
    return Path(directory) if directory else None


def refuse_racing_overwrite(cfg: AppConfig, me: ProcessIdentity) -> None:
    """Several processes each performing ``overwrite`` would delete each other's fresh rows."""
    if cfg.run.overwrite and me.count > 1:
        msg = (f"overwrite with {me.count} Bytewax processes would be performed by each of them; run "
               "`spymaster replay --overwrite --plan-only` once, then start the processes without overwrite "
               "(or use `spymaster replay --processes N --overwrite`, which plans once)")
        raise ConfigError(msg)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
