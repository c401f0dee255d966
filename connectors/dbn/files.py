"""Whole-file reads for commands that need every record at once (``book``, ``bench``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from connectors.dbn.instruments import instruments_for
from connectors.dbn.reader import BadHeader, Damage, DbnFileReader
from operators.chunks import InstrumentInfo
from operators.errors import SourceError

_BLOCK = 1 << 20


def read_mbo_file(path: Path) -> tuple[np.ndarray, dict[int, InstrumentInfo], Damage | None]:
    """Every decodable MBO record of ``path``, its instruments, and the first damage stepped over."""
    if not path.is_file():
        msg = f"{path} does not exist"
        raise SourceError(msg)
    try:
        reader = DbnFileReader(path)
    except BadHeader as err:
        msg = f"{path} is not a readable DBN file: {err}"
        raise SourceError(msg) from None
    try:
        if reader.header.schema != "mbo":
            msg = f"{path} holds {reader.header.schema} records; an MBO file is needed"
            raise SourceError(msg)
        parts = []
        while len(block := reader.read(_BLOCK)):
            parts.append(block)
        records = np.concatenate(parts) if parts else np.zeros(0, reader.dtype)
        first = reader.damages[0] if reader.damages else None
        return records, instruments_for(path, "mbo", reader.header.metadata), first
    finally:
        reader.close()
