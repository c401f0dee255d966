"""A seeded mutator: damaged copies of one real DBN MBO file, one kind of damage per file.

Every mutant is deterministic for a seed. The damage is applied where it happens in life: to the
decoded record bytes (then compressed again, as a writer with a bug would), or to the compressed
file itself (as a disk or a transfer would). ``header_intact`` says whether the DBN header still
reads, which decides the law the lake must obey for it (``flows.jobs.accounting``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import zstandard

from operators.records import MBO_DTYPE

SIZE = MBO_DTYPE.itemsize


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    path: Path
    header_intact: bool


@dataclass(frozen=True, slots=True)
class _Base:
    header: bytes
    body: bytes
    compressed: bytes

    @property
    def records(self) -> int:
        return len(self.body) // SIZE


def _zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def _flip(data: bytes, offsets: np.ndarray, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for at in offsets:
        out[int(at)] ^= int(rng.integers(1, 256))
    return bytes(out)


def _in_bodies(base: _Base, rng: np.random.Generator, n: int) -> np.ndarray:
    """Offsets of ``n`` bytes inside record bodies (not the length and rtype bytes)."""
    return rng.integers(0, base.records, n) * SIZE + rng.integers(2, SIZE, n)


def _set_byte(base: _Base, rng: np.random.Generator, at: int, values: Callable[[int], int]) -> bytes:
    body = bytearray(base.body)
    for k, record in enumerate(sorted(rng.choice(base.records, 3, replace=False))):
        body[int(record) * SIZE + at] = values(k)
    return bytes(body)


def _zstd_damage(compressed: bytes, rng: np.random.Generator, *, loud: bool) -> bytes:
    """Five bytes flipped in the compressed data where zstd reports the damage (``loud``) or
    decodes it to wrong bytes without a word."""
    for _ in range(200):
        at = int(rng.integers(len(compressed) // 10, len(compressed) * 9 // 10))
        damaged = _flip(compressed, np.arange(at, at + 5), rng)
        try:
            zstandard.ZstdDecompressor().decompressobj().decompress(damaged)
            failed = False
        except zstandard.ZstdError:
            failed = True
        if failed == loud:
            return damaged
    raise AssertionError("no such damage found")


def _mutations(base: _Base, rng: np.random.Generator) -> dict[str, tuple[str, bytes]]:
    """name -> (file suffix, file bytes)."""
    h, b = base.header, base.body
    mid = base.records // 2 * SIZE
    block = b[mid - 20_000 : mid]
    return {
        "byte_flips": (".dbn.zst", _zst(h + _flip(b, _in_bodies(base, rng, 30), rng))),
        "zero_lengths": (".dbn.zst", _zst(h + _set_byte(base, rng, 0, lambda k: 0))),
        "huge_lengths": (".dbn.zst", _zst(h + _set_byte(base, rng, 0, lambda k: 255))),
        "unknown_rtypes": (".dbn.zst", _zst(h + _set_byte(base, rng, 1, lambda k: (0x13, 0x77, 0xFF)[k]))),
        "truncated_record": (".dbn.zst", _zst(h + b[: int(len(b) * 0.6) // SIZE * SIZE + 23])),
        "truncated_zst": (".dbn.zst", base.compressed[: int(len(base.compressed) * 0.6)]),
        "garbage_appended": (".dbn.zst", _zst(h + b + rng.bytes(1_000))),
        "garbage_inserted": (".dbn.zst", _zst(h + b[:mid] + rng.bytes(1_000) + b[mid:])),
        "garbage_inserted_mid_record": (".dbn.zst", _zst(h + b[: mid + 17] + rng.bytes(777) + b[mid + 17 :])),
        "block_duplicated": (".dbn.zst", _zst(h + b[: mid + 9] + block + b[mid + 9 :])),
        "zstd_frame_corrupt": (".dbn.zst", _zstd_damage(base.compressed, rng, loud=True)),
        "zstd_silent_damage": (".dbn.zst", _zstd_damage(base.compressed, rng, loud=False)),
        "garbage_after_frame": (".dbn.zst", base.compressed + rng.bytes(300)),
        "plain_garbage_inserted": (".dbn", h + b[:mid] + rng.bytes(1_000) + b[mid:]),
        "metadata_symbol_flipped": (".dbn.zst", _zst(_flip(h, np.array([len(h) - 5]), rng) + b)),
        "metadata_length_broken": (".dbn.zst", _zst(h[:4] + struct.pack("<I", 0x7FFF_FFFF) + h[8:] + b)),
        "empty": (".dbn.zst", b""),
        "text_named_dbn": (".dbn", b"symbol,price,size\nESZ5,6000.25,3\n" * 40),
    }


def _header_reads(data: bytes) -> bool:
    """Whether the DBN header of ``data`` (a plain or zstd file) decodes: asked of databento_dbn."""
    plain = _decoded_prefix(data) if data[:4] == b"\x28\xb5\x2f\xfd" else data
    if len(plain) < 8 or plain[:3] != b"DBN":
        return False
    (length,) = struct.unpack_from("<I", plain, 4)
    try:
        dbn.Metadata.decode(plain[: 8 + length])
    except Exception:  # noqa: BLE001 - any refusal means the header does not read
        return False
    return len(plain) >= 8 + length


def _decoded_prefix(data: bytes) -> bytes:
    """What zstd decodes of ``data`` before any damage stops it."""
    dobj, out = zstandard.ZstdDecompressor().decompressobj(), []
    try:
        for k in range(0, len(data), 4_096):
            out.append(dobj.decompress(data[k : k + 4_096]))
    except zstandard.ZstdError:
        pass
    return b"".join(out)


def write_mutants(source: Path, out: Path, *, seed: int = 15, prefix: str = "glbx-mdp3-20251103") -> list[Mutant]:
    """One damaged copy of the MBO file ``source`` per kind of damage, into ``out``."""
    compressed = source.read_bytes()
    plain = zstandard.ZstdDecompressor().stream_reader(compressed).read()
    (length,) = struct.unpack_from("<I", plain, 4)
    base = _Base(plain[: 8 + length], plain[8 + length :], compressed)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    mutants = []
    for name, (suffix, data) in _mutations(base, rng).items():
        path = out / f"{prefix}.{name}.mbo{suffix}"
        path.write_bytes(data)
        mutants.append(Mutant(name, path, _header_reads(data)))
    return mutants
