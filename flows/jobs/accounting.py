"""Account for every byte of an input: the conservation law of Bronze (``spymaster check --file``).

Bronze promises that every record that reached us is a Bronze row or a dead letter with its raw
bytes. For a file this is checked byte for byte: the bytes after the DBN header are rebuilt from
what the lake holds for the file's source, in position order (each ``bronze.mbo`` row as its 56
DBN bytes, each dead letter as its ``raw``), and compared with the file. Positions must run 0, 1,
2 … with none missing and none twice. In a ``.zst`` file, dead letters that hold *compressed*
bytes (the undecodable tail after a damaged block) must be the file's own last bytes, and what
precedes them must decompress (zstandard itself, not our reader) to the header and the rest. A
file whose header does not read must be its ``bad_header`` dead letters, byte for byte. A topic
message obeys the same law on its value (``message_problems``).

Definition and statistics rows are many typed columns, not the record's bytes: for them each row
accounts for one record's size.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import zstandard

from connectors.dbn.reader import COMPRESSED_REASONS
from connectors.dbn.source import source_id_of
from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_CMBP_1, BRONZE_DEFINITIONS, BRONZE_MBO, BRONZE_MBO_DLQ, BRONZE_STATISTICS
from operators.mbo_columns import MBO_FIELDS, MBO_WORDS, pack_columns
from operators.records import MBO_DTYPE

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


TYPED: Final = ("definition", "statistics", "cmbp-1")
"""Schemas whose rows keep no bytes of their own: their size is what the file's body leaves."""


@dataclass(frozen=True, slots=True)
class Piece:
    """What the lake holds at one position of a source: a record's bytes, or a dead letter's."""

    position: int
    kind: str
    """``mbo``, ``definition``, ``statistics``, ``cmbp-1``, or the dead letter's reason."""
    raw: bytes

    @property
    def row(self) -> bool:
        return self.kind in ("mbo", *TYPED)


@dataclass(frozen=True, slots=True)
class FileAccount:
    """How the lake accounts for one file's bytes; ``problems`` is empty when the law holds."""

    source: str
    file_bytes: int
    rows: int
    dead_letters: int
    dead_bytes: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        held = (f"{self.rows:,} rows and {self.dead_letters:,} dead letter(s) ({self.dead_bytes:,} bytes) for "
                f"{self.file_bytes:,} file bytes")
        return f"{self.source}: {held}" + ("; every byte accounted for" if self.ok else "; " + "; ".join(self.problems))


def mbo_bytes(rows: pa.Table) -> list[bytes]:
    """Each ``bronze.mbo`` row as the 56 bytes of the DBN record it was decoded from."""
    words = np.empty((rows.num_rows, MBO_WORDS), np.uint64)
    columns = {name: rows[name].to_numpy() for name in MBO_FIELDS if name not in ("action", "side")}
    columns |= {name: _byte_codes(rows[name]) for name in ("action", "side")}
    pack_columns(words, 0, columns)
    flat = words.view(MBO_DTYPE).reshape(rows.num_rows).tobytes()
    return [flat[k : k + MBO_DTYPE.itemsize] for k in range(0, len(flat), MBO_DTYPE.itemsize)]


def _byte_codes(column: pa.ChunkedArray) -> np.ndarray:
    """One-character strings (an MBO ``action`` or ``side``) as their byte codes."""
    arr = column.combine_chunks().cast(pa.binary())
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset : arr.offset + len(arr) + 1]
    if len(arr) and not (np.diff(offsets) == 1).all():
        raise ValueError("an action or side that is not one byte")
    data = np.frombuffer(arr.buffers()[2], np.uint8) if len(arr) else np.zeros(0, np.uint8)
    return data[offsets[:-1]].astype(np.int64)


def pieces_of(lake: Lake, source: str) -> list[Piece]:
    """Every Bronze row and dead letter of ``source``, in position order."""
    quoted = source.replace("'", "''")
    where = f"\"source\" = '{quoted}'"
    rows = lake.read(BRONZE_MBO, [*MBO_FIELDS, "source_offset"], where)
    out = [Piece(p, "mbo", raw) for p, raw in zip(rows["source_offset"].to_pylist(), mbo_bytes(rows), strict=True)]
    for spec, kind in ((BRONZE_DEFINITIONS, "definition"), (BRONZE_STATISTICS, "statistics"),
                       (BRONZE_CMBP_1, "cmbp-1")):
        out += [Piece(p, kind, b"") for p in lake.read(spec, ["source_offset"], where)["source_offset"].to_pylist()]
    out += [Piece(d["source_offset"], d["reason"], d["raw"])
            for d in lake.read(BRONZE_MBO_DLQ, ["source_offset", "reason", "raw"], where).to_pylist()]
    return sorted(out, key=lambda p: p.position)


def account_for_file(lake: Lake, path: Path, source: str | None = None) -> FileAccount:
    """Check the law for the file at ``path``, read by a replay as ``source`` (its ``dbn:`` id)."""
    source = source or source_id_of(path)
    data = path.read_bytes()
    pieces = pieces_of(lake, source)
    letters = [p for p in pieces if not p.row]
    problems = _positions(pieces) + _file_problems(data, pieces)
    return FileAccount(source, len(data), len(pieces) - len(letters), len(letters), sum(len(p.raw) for p in letters),
                       tuple(problems))


def _positions(pieces: Sequence[Piece]) -> list[str]:
    got = [p.position for p in pieces]
    if got == list(range(len(got))):
        return []
    missing = sorted(set(range(len(got))) - set(got))[:5]
    return [f"positions are not 0..{len(got) - 1} once each (first missing: {missing})"]


def _file_problems(data: bytes, pieces: Sequence[Piece]) -> list[str]:
    if not pieces:
        return ["the lake holds nothing of this source"]
    if all(p.kind == "bad_header" for p in pieces):
        return [] if b"".join(p.raw for p in pieces) == data else ["its bad_header dead letters are not the file"]
    tail = [p for p in pieces if p.kind in COMPRESSED_REASONS]
    if tail and pieces[-len(tail):] != tail:
        return ["dead letters of compressed bytes are not the last pieces"]
    compressed = b"".join(p.raw for p in tail)
    if not data.endswith(compressed):
        return [f"the {len(compressed):,} compressed bytes of its dead letters are not the file's tail"]
    head = data[: len(data) - len(compressed)]
    decoded = zstandard.ZstdDecompressor().decompressobj().decompress(head) if data[:4] == _ZSTD_MAGIC else head
    if len(decoded) < 8 or decoded[:3] != b"DBN":
        return ["the file's DBN header does not read, yet it has rows"]
    body = decoded[8 + struct.unpack_from("<I", decoded, 4)[0] :]
    return _body_problems(body, pieces[: len(pieces) - len(tail)])


def _body_problems(body: bytes, pieces: Sequence[Piece]) -> list[str]:
    """Rebuild ``body`` from ``pieces``; typed rows (definitions, statistics, cmbp-1) count their size."""
    typed = [p for p in pieces if p.kind in TYPED]
    if typed:
        size = (len(body) - sum(len(p.raw) for p in pieces)) // len(typed)
        ok = sum(len(p.raw) for p in pieces) + size * len(typed) == len(body) and size > 0
        return [] if ok else [f"{len(typed):,} rows and the dead letters do not divide the {len(body):,} record bytes"]
    rebuilt = b"".join(p.raw for p in pieces)
    if rebuilt == body:
        return []
    pairs = zip(rebuilt, body, strict=False)  # the lengths may differ: that is one of the problems reported
    first = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(rebuilt), len(body)))
    return [f"the rows and dead letters rebuild {len(rebuilt):,} bytes, the file holds {len(body):,} record bytes; "
            f"they first differ at byte {first:,}"]


def message_problems(pieces: Sequence[Piece], value: bytes, sizes: dict[str, int]) -> list[str]:
    """The law for one topic message: its pieces (``position`` = index within the message)
    rebuild ``value``; definition and statistics rows count ``sizes[kind]`` bytes each."""
    problems = _positions(pieces)
    if any(p.kind in sizes for p in pieces):
        total = sum(sizes.get(p.kind, len(p.raw)) for p in pieces)
        return problems + ([] if total == len(value) else [f"pieces account for {total:,} of {len(value):,} bytes"])
    rebuilt = b"".join(p.raw for p in pieces)
    if rebuilt == value:
        return problems
    return [*problems, f"pieces rebuild {len(rebuilt):,} of the {len(value):,}-byte value"]
