"""Pure learning logic: class encoding, time-ordered splits, metrics. No I/O, no MLflow."""

from operators.learning.classes import CLASSES, N_CLASSES, decode, encode

__all__ = ["CLASSES", "N_CLASSES", "decode", "encode"]
