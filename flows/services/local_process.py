"""A local server process for tests and benchmarks: started on a free loopback port and waited for
until it accepts connections (or started and waited for until it announces its address), then
stopped by PID (SIGTERM, then SIGKILL) whatever happens."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def listening_process(cmd: Sequence[str], port: int, log_path: Path, name: str, *, cwd: Path | None = None,
                      timeout_s: float = 20.0, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """Run ``cmd`` (output to ``log_path``; ``env``, else this process's) until 127.0.0.1:``port``
    accepts; yield its PID."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True, env=None if env is None else dict(env))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                msg = f"{name} exited with {proc.returncode}: {log_path.read_text(errors='replace')[-2000:]}"
                raise RuntimeError(msg)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield proc.pid
    finally:
        _stop(proc)


@contextmanager
def announcing_process(cmd: Sequence[str], log_path: Path, name: str, *,
                       timeout_s: float = 20.0) -> Iterator[tuple[int, str]]:
    """Run ``cmd`` (errors to ``log_path``) until it prints its first line (e.g. the address it
    chose); yield its PID and that line."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=log,  # noqa: S603
                                start_new_session=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        line = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line:
            msg = f"{name} announced nothing within {timeout_s:g} s: {log_path.read_text(errors='replace')[-2000:]}"
            raise RuntimeError(msg)
        yield proc.pid, line
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
