"""``mlflow models serve`` for a registered model, on 127.0.0.1 (``--env-manager local``: this venv)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.services.kafka_broker import free_port
from tests.services.model_process import ModelProcess


def mlflow_server(model_uri: str, log_path: Path, *, tracking_uri: str | None = None,
                  port: int | None = None) -> ModelProcess:
    """A not-yet-started server for ``model_uri``: a model directory (starts fastest) or
    ``models:/NAME/1`` (then ``tracking_uri`` names the registry).

    POST ``{base_url}/invocations``; readiness is ``GET /ping``. ``mlflow`` runs from this venv.
    """
    port = port or free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    cmd = [mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1",
           "-p", str(port), "-w", "1"]
    venv_bin = str(Path(sys.executable).parent)     # mlflow execs `uvicorn` by name: this venv's
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return ModelProcess(cmd, port=port, ready_path="/ping", log_path=log_path, env=env)
