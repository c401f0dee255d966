"""A model server process for tests: own process group, readiness by HTTP, stopped by PID.

Both ``mlflow models serve`` (uvicorn workers) and ``azmlinfsrv`` (gunicorn workers) fork
children, so the server starts in a new session and is stopped by signalling its process group
(the group id is the PID we started). ``pause``/``resume`` (SIGSTOP/SIGCONT) make it hang without
closing its socket: the way to provoke a real timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


class ModelProcess:
    """One server command on a fixed loopback port, restartable on the same port."""

    def __init__(self, cmd: Sequence[str], *, port: int, ready_path: str, log_path: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None, start_timeout_s: float = 120.0) -> None:
        self.cmd, self.port, self._ready_path, self._log_path = list(cmd), port, ready_path, log_path
        self._env, self._cwd, self._start_timeout_s = env, cwd, start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (start several servers, then wait for each)."""
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                          env=self._env, cwd=self._cwd, start_new_session=True)

    def wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            if self._proc.poll() is not None:
                tail = self._log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.cmd[0]} exited with {self._proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(self.base_url + self._ready_path, timeout=1.0) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.cmd[0]} not ready on port {self.port} after {self._start_timeout_s} s")
            time.sleep(0.1)

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, sig)     # the group we created with start_new_session
            except ProcessLookupError:
                pass

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """Die at once, as a crashed server does (SIGKILL to the whole group)."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=10)
        self._wait_port_free()

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._signal(signal.SIGKILL)               # workers that outlived their parent
        self._wait_port_free()

    def _wait_port_free(self, timeout_s: float = 10.0) -> None:
        import socket

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
