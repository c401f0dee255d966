"""Azure ML's own inference server (``azmlinfsrv``) running ``infra/azureml/score.py`` for a model dir.

azmlinfsrv binds 0.0.0.0 (it has no host option); tests only ever call 127.0.0.1. Readiness is
``GET /`` (its liveness route) once ``init()`` has loaded the model (gunicorn ``--preload`` off:
the worker answers only after ``init()``), then a first ``/score`` is up to the caller.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.services.kafka_broker import free_port
from tests.services.model_process import ModelProcess

SCORE_SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "azureml" / "score.py"


def azureml_server(model_dir: Path, log_path: Path, *, port: int | None = None) -> ModelProcess:
    """A not-yet-started server for the MLflow model in ``model_dir`` (the folder with ``MLmodel``)."""
    port = port or free_port()
    health = free_port()
    cmd = [str(Path(sys.executable).with_name("azmlinfsrv")), "--entry_script", str(SCORE_SCRIPT),
           "--port", str(port), "--health_port", str(health), "--worker_count", "1"]
    env = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir.parent), "MLFLOW_MODEL_FOLDER": model_dir.name}
    return ModelProcess(cmd, port=port, ready_path="/", log_path=log_path, env=env, cwd=SCORE_SCRIPT.parent)
