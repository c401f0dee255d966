"""How many cores this process may keep busy: its CPU affinity, or its cgroup's CPU quota (a
Kubernetes pod's ``limits.cpu``, a ``docker run --cpus``) when that is fewer. A pod limited to
two CPUs on a 16-core node sees 16 in its affinity and gets two cores' worth of time."""

from __future__ import annotations

import math
from pathlib import Path

from operators.halves import affinity_cores

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    cores = affinity_cores()
    quota = cgroup_cpu_quota(cgroup_root)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def cores_per_worker(workers: int, cgroup_root: Path = CGROUP_ROOT) -> int:
    """The usable cores shared among a process's Bytewax workers (at least one each)."""
    return max(1, usable_cores(cgroup_root) // max(1, workers))


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time per period the cgroup allows; None without a quota (or a cgroup).
    cgroup v2 keeps ``cpu.max`` (``max 100000``, or ``<quota> <period>``); v1 keeps
    ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us`` under ``cpu/``."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _ratio(quota, period)
    for folder in ("cpu", "cpu,cpuacct"):
        quota_us = _read(root / folder / "cpu.cfs_quota_us")
        if quota_us is not None:
            return _ratio(quota_us, _read(root / folder / "cpu.cfs_period_us") or "")
    return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
