"""Rewrite a DBN MBO file's records for bad-input tests (header kept byte for byte)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import zstandard

from operators.records import MBO_DTYPE


def split_mbo_file(path: Path) -> tuple[bytes, np.ndarray]:
    """The DBN header bytes and the records of an MBO ``.dbn.zst`` file."""
    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
    (length,) = struct.unpack_from("<I", raw, 4)
    header = raw[: 8 + length]
    return header, np.frombuffer(raw[8 + length :], MBO_DTYPE).copy()


def write_mbo_file(path: Path, header: bytes, records: np.ndarray | bytes) -> Path:
    body = records if isinstance(records, bytes) else records.tobytes()
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(header + body))
    return path
