"""The two wire contracts for scoring over HTTP: how a batch is framed, where the rows come back.

- ``mlflow-http`` (``mlflow models serve``): ``{"dataframe_split": {"columns": ["feature_vector"],
  "data": [[[v0, ..., v143]], ...]}}`` → ``{"predictions": [[p0, p1, p2], ...]}``.
- ``azureml`` (managed online endpoint / azmlinfsrv): ``{"input_data": {"columns": ["feature_vector"],
  "index": [...], "data": [[[v0, ..., v143]], ...]}}`` (pandas split orientation) → a bare JSON list
  of rows.

One column, ``feature_vector``, whose cell per row is the whole 144-value vector: the registered
signature is the tensor ``float64 (-1, 144)`` (``operators/learning/frame.py``), which the MLflow
server builds from that column in one step instead of casting and checking 144 named columns. float32
values are written as the exact float64 of each float32, so every backend feeds the model the same
numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from operators.learning.frame import FEATURE_COLUMN


@dataclass(frozen=True, slots=True)
class Adapter:
    """How one wire contract frames a batch and where the probabilities sit in the answer."""

    name: str
    body: Callable[[list[list[float]]], bytes]
    rows: Callable[[Any], object]          # decoded JSON → the list of rows, or None when it has none


_COLUMNS = json.dumps([FEATURE_COLUMN])


def _cells(data: list[list[float]]) -> str:
    """Each vector as the one cell of its row: ``[[v...]], [[v...]]``, JSON."""
    return json.dumps([[vector] for vector in data])


def mlflow_http_adapter() -> Adapter:
    head = '{"dataframe_split": {"columns": ' + _COLUMNS + ', "data": '

    def body(data: list[list[float]]) -> bytes:
        return (head + _cells(data) + "}}").encode()

    def rows(answer: Any) -> object:
        return answer.get("predictions") if isinstance(answer, dict) else None

    return Adapter("mlflow-http", body, rows)


def azureml_adapter() -> Adapter:
    head = '{"input_data": {"columns": ' + _COLUMNS + ', "index": '

    def body(data: list[list[float]]) -> bytes:
        return (head + json.dumps(list(range(len(data)))) + ', "data": ' + _cells(data) + "}}").encode()

    def rows(answer: Any) -> object:
        return answer if isinstance(answer, list) else None

    return Adapter("azureml", body, rows)
