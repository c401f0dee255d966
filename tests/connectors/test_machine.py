"""Usable cores: the CPU affinity, capped by a cgroup's CPU quota (v2 ``cpu.max``, v1 CFS files),
read from a cgroup tree laid out on disk as the kernel lays it out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.machine import cgroup_cpu_quota, cores_per_worker, usable_cores


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_caps_the_affinity(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert usable_cores(tmp_path) == min(_affinity(), 2)  # a part of a core is a core to keep busy
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert usable_cores(tmp_path) == _affinity()


@pytest.mark.parametrize("folder", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_quota(tmp_path: Path, folder: str) -> None:
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / folder / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.0
    assert usable_cores(tmp_path) == 1
    (tmp_path / folder / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path) is None


def test_no_cgroup_is_the_affinity(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "absent") is None
    assert usable_cores(tmp_path / "absent") == _affinity()


def test_workers_share_the_cores(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("400000 100000\n")
    cores = usable_cores(tmp_path)
    assert cores_per_worker(1, tmp_path) == cores
    assert cores_per_worker(2, tmp_path) == max(1, cores // 2)
    assert cores_per_worker(cores + 3, tmp_path) == 1


def test_a_one_core_quota_keeps_the_chain_kernels_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from operators import halves

    monkeypatch.setattr(halves, "CORES", 8)
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    halves.use_cores(cores_per_worker(1, tmp_path))
    cuts: list[tuple[int, int]] = []
    halves.in_halves(10, lambda lo, hi: cuts.append((lo, hi)), units=halves.SPLIT_MIN)
    assert cuts == [(0, 10)]
