"""Azure ML scoring script for our registered MLflow model (azmlinfsrv ``init()`` / ``run(raw)`` contract).

Written from the documented contract of a managed online endpoint serving an MLflow model:

- the deployment mounts the model under ``AZUREML_MODEL_DIR``; ``MLFLOW_MODEL_FOLDER`` names the
  folder holding the ``MLmodel`` file (default: the single folder in there, or the dir itself);
- a request body is ``{"input_data": {"columns": ["feature_vector"], "index": [...],
  "data": [[[v0, ..., v143]], ...]}, "params": {...}}``: a pandas DataFrame in *split* orientation
  (``index`` optional) whose one column holds each row's whole vector. For convenience
  ``input_data`` may also be the same split with the 144 element names as columns (any order; the
  names come from the MLmodel file's ``metadata["feature_vector"]["names"]``), or a bare list of
  vectors;
- the answer is a bare JSON list: one row of class probabilities (BREAK, REJECT, CHOP) per input
  row, because the model is logged with ``pyfunc_predict_fn="predict_proba"``.

Every form becomes one (n, 144) array of the signature's tensor type (``float64 (-1, 144)``). An
sklearn model fitted without feature names is called directly with its logged ``predict_fn`` (the
numbers ``pyfunc.predict`` gives, without its schema pass); any other model goes through
``pyfunc.predict`` with that array. A body we cannot read is answered 400 with ``{"message": ...}``;
a model that raises is a 500 from the server.

Self-contained on purpose: the deployment ships this file alone, not the project.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

log = logging.getLogger("spymaster.score")
FEATURE_COLUMN = "feature_vector"


class _Served(NamedTuple):
    """The loaded model as this script uses it: input width and type, element names, predict.

    A NamedTuple, not a dataclass: azmlinfsrv imports this file without registering it in
    ``sys.modules``, which ``dataclass`` needs to resolve postponed annotations."""

    width: int
    dtype: np.dtype
    names: tuple[str, ...]
    predict: Callable[[np.ndarray], Any]
    direct: bool


_served: _Served | None = None


def model_path() -> Path:
    """Where the MLmodel file sits: ``$AZUREML_MODEL_DIR/$MLFLOW_MODEL_FOLDER`` (or the only folder)."""
    root = Path(os.environ["AZUREML_MODEL_DIR"])
    folder = os.environ.get("MLFLOW_MODEL_FOLDER", "").strip()
    if folder:
        return root / folder
    if (root / "MLmodel").exists():
        return root
    found = sorted(p.parent for p in root.glob("*/MLmodel"))
    if len(found) != 1:
        raise RuntimeError(f"set MLFLOW_MODEL_FOLDER: {root} holds {len(found)} MLflow models")
    return found[0]


def init() -> None:
    """Load the model once per worker process."""
    global _served
    import mlflow.pyfunc

    path = model_path()
    _served = served(mlflow.pyfunc.load_model(str(path)))
    log.info("loaded MLflow model from %s (%d inputs, direct sklearn call: %s)", path, _served.width, _served.direct)


def served(model: Any) -> _Served:
    """What ``run`` needs from a pyfunc model whose signature is one (-1, width) tensor."""
    meta = model.metadata
    schema = meta.get_input_schema()
    if schema is None or not schema.is_tensor_spec() or len(schema.inputs) != 1 or len(schema.inputs[0].shape) != 2:
        raise RuntimeError("the model's signature must be one tensor of shape (-1, n): the setup vector")
    spec = schema.inputs[0]
    names = tuple((meta.metadata or {}).get(FEATURE_COLUMN, {}).get("names", ()))
    if "sklearn" in meta.flavors:
        raw = model.get_raw_model()
        if getattr(raw, "feature_names_in_", None) is None:
            method = getattr(raw, meta.flavors["python_function"].get("predict_fn", "predict"))
            return _Served(spec.shape[1], spec.type, names, method, True)
    return _Served(spec.shape[1], spec.type, names, model.predict, False)


def run(raw_data: str) -> Any:
    """One request: JSON text in, a list of probability rows out (or a 400 response)."""
    if _served is None:
        raise RuntimeError("init() was not called")
    try:
        x = vectors(json.loads(raw_data), _served)
    except (ValueError, TypeError, KeyError) as err:
        return _bad_request(str(err))
    out = _served.predict(x)                             # a model that raises is a 500
    if isinstance(out, pd.DataFrame):
        return out.to_dict(orient="records")
    return np.asarray(out).tolist()


def vectors(body: Any, model: _Served) -> np.ndarray:
    """The (n, width) array of a request body in any of the accepted forms (module docstring)."""
    if not isinstance(body, dict) or "input_data" not in body:
        raise ValueError("the body must be a JSON object with 'input_data'")
    data = body["input_data"]
    if isinstance(data, list):
        rows: Any = data
    elif isinstance(data, dict) and "columns" in data and "data" in data:
        rows = _split_rows(list(data["columns"]), data["data"], model)
    else:
        raise ValueError("'input_data' must be a DataFrame in split orientation {columns, index, data} "
                         "or a list of vectors")
    x = np.asarray(rows, dtype=model.dtype)
    if x.ndim != 2 or x.shape[1] != model.width:
        raise ValueError(f"each row must be one vector of {model.width} values, got shape {x.shape}")
    return x


def _split_rows(columns: list[str], data: Any, model: _Served) -> Any:
    if columns == [FEATURE_COLUMN]:
        if not all(isinstance(row, list) and len(row) == 1 for row in data):
            raise ValueError(f"each row of 'data' must hold one cell: the {FEATURE_COLUMN} list")
        return [row[0] for row in data]
    if model.names and len(columns) == len(model.names) and set(columns) == set(model.names):
        order = [columns.index(name) for name in model.names]
        return np.asarray(data, dtype=model.dtype).reshape(-1, len(columns))[:, order]
    raise ValueError(f"'columns' must be [{FEATURE_COLUMN!r}] or the model's {len(model.names) or model.width} "
                     "feature names")


def _bad_request(message: str) -> Any:
    from azureml_inference_server_http.api.aml_response import AMLResponse

    return AMLResponse({"message": f"bad input: {message}"}, 400, json_str=True)
