"""Azure ML scoring script for our registered MLflow model (azmlinfsrv ``init()`` / ``run(raw)`` contract).

Written from the documented contract of a managed online endpoint serving an MLflow model:

- the deployment mounts the model under ``AZUREML_MODEL_DIR``; ``MLFLOW_MODEL_FOLDER`` names the
  folder holding the ``MLmodel`` file (default: the single folder in there, or the dir itself);
- a request body is ``{"input_data": {"columns": [...], "index": [...], "data": [[...], ...]},
  "params": {...}}``: a pandas DataFrame in *split* orientation (``index`` optional);
- the answer is a bare JSON list: one row of class probabilities (BREAK, REJECT, CHOP) per input
  row, because the model is logged with ``pyfunc_predict_fn="predict_proba"``.

Columns are cast to the types of the model's signature before ``pyfunc.predict``, which then
enforces the signature (a missing column is an error, as on the real endpoint). Requests whose
columns are exactly the signature's take a fast path (see ``_fast_path``) with the same numbers. A body we cannot
read is answered 400 with ``{"message": ...}``; a model that raises is a 500 from the server.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("spymaster.score")
_model: Any = None
_fast: tuple[list[str], np.dtype, Callable[[np.ndarray], Any]] | None = None


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
    global _model, _fast
    import mlflow.pyfunc

    path = model_path()
    _model = mlflow.pyfunc.load_model(str(path))
    _fast = _fast_path(_model)
    log.info("loaded MLflow model from %s (fast path: %s)", path, _fast is not None)


def run(raw_data: str) -> Any:
    """One request: JSON text in, a list of probability rows out (or a 400 response)."""
    try:
        split = _split(json.loads(raw_data))
        fast = _fast_input(split)
        frame = _frame(split) if fast is None else None
    except (ValueError, TypeError, KeyError) as err:
        return _bad_request(str(err))
    if fast is not None:                                # a model that raises is a 500 either way
        return np.asarray(_fast[2](fast)).tolist()  # type: ignore[index]
    out = _model.predict(frame)
    if isinstance(out, pd.DataFrame):
        return out.to_dict(orient="records")
    return np.asarray(out).tolist()


def _fast_path(model: Any) -> tuple[list[str], np.dtype, Callable[[np.ndarray], Any]] | None:
    """For an sklearn model whose signature has one type for all named columns: (names, dtype,
    predict_fn of the fitted estimator). Requests with exactly those columns, in that order, skip
    pandas and the per-column schema pass (tens of ms for 144 columns); their values are cast to the
    signature's type first, so the numbers are the ones ``pyfunc.predict`` gives."""
    meta = model.metadata
    schema = meta.get_input_schema()
    if "sklearn" not in meta.flavors or schema is None or not schema.has_input_names():
        return None
    kinds = {np.dtype(t) for t in schema.numpy_types()}
    raw = model.get_raw_model()
    names = list(schema.input_names())
    fitted = getattr(raw, "feature_names_in_", None)
    if len(kinds) != 1 or (fitted is not None and list(fitted) != names):
        return None
    method = getattr(raw, meta.flavors["python_function"].get("predict_fn", "predict"))

    def predict(x: np.ndarray) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return method(x)

    return names, kinds.pop(), predict


def _split(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "input_data" not in body:
        raise ValueError("the body must be a JSON object with 'input_data'")
    split = body["input_data"]
    if not isinstance(split, dict) or "columns" not in split or "data" not in split:
        raise ValueError("'input_data' must be a DataFrame in split orientation: {columns, index, data}")
    return split


def _fast_input(split: dict[str, Any]) -> np.ndarray | None:
    if _fast is None or split["columns"] != _fast[0]:
        return None
    x = np.asarray(split["data"], dtype=_fast[1])
    if x.ndim != 2 or x.shape[1] != len(_fast[0]):
        raise ValueError(f"'data' must be rows of {len(_fast[0])} values, got shape {x.shape}")
    return x


def _frame(split: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(split["data"], columns=split["columns"], index=split.get("index"))
    schema = _model.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        types = dict(zip(schema.input_names(), schema.numpy_types(), strict=True))
        frame = frame.astype({c: types[c] for c in frame.columns if c in types})
    return frame


def _bad_request(message: str) -> Any:
    from azureml_inference_server_http.api.aml_response import AMLResponse

    return AMLResponse({"message": f"bad input: {message}"}, 400, json_str=True)
