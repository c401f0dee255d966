"""``mlflow models serve`` for one model, on 127.0.0.1, stopped by its PID (``spymaster bench --scoring``).

The server runs from this interpreter's environment (``--env-manager local``) in a session of its
own: its uvicorn workers are children, so stopping signals the process group whose id is the PID
we started, and never anything found by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from operators.errors import SourceError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModelServer:
    """A context manager: ``with ModelServer("models:/ES_MODEL/1", ...) as server: server.base_url``."""

    def __init__(self, model_uri: str, *, tracking_uri: str, log_path: Path, port: int | None = None,
                 start_timeout_s: float = 180.0) -> None:
        self.port = port or free_port()
        mlflow = str(Path(sys.executable).with_name("mlflow"))
        self._cmd = [mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1",
                     "-p", str(self.port), "-w", "1"]
        bin_dir = str(Path(sys.executable).parent)  # mlflow starts `uvicorn` by name: this venv's
        self._env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
                     "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
        self._log_path, self._timeout_s = log_path, start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ModelServer:
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(self._cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env,  # noqa: S603
                                          start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                lines = self._log_path.read_text(errors="replace").strip().splitlines() or ["(no output)"]
                raise SourceError(f"mlflow models serve exited with {self._proc.returncode}: {lines[-1][-300:]} "
                                  f"(log: {self._log_path})")
            try:
                with urllib.request.urlopen(self.base_url + "/ping", timeout=1.0) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SourceError(f"mlflow models serve was not ready on port {self.port} after {self._timeout_s:.0f} s")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left after 10 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                try:  # workers that outlived their parent
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
