"""Exact, forward-only reading of one DBN file: header, then fixed-size records as numpy arrays.

Databento's historical files hold one schema, so every record has the same size; we read whole
records straight into ``np.frombuffer`` (zero-copy over the decompressed bytes), check each
record's ``length`` and ``rtype`` header, and stop at the first record that does not fit. Unlike
``DBNStore.to_ndarray`` (which warns and drops a partial tail), every way a file can end badly is
reported as a :class:`ReadFault` with the exact record index, so the caller can emit a dead letter.

zstd is decoded with ``zstandard``'s ``decompressobj`` frame by frame, because the stream reader
ends silently on a truncated frame.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import databento_dbn as dbn
import numpy as np
import zstandard
from databento.common.constants import SCHEMA_STRUCT_MAP, SCHEMA_STRUCT_MAP_V1, SCHEMA_STRUCT_MAP_V2

from operators.records import RTYPE_DEFINITION, RTYPE_MBO, RTYPE_STATISTICS

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
DBN_MAGIC: Final = b"DBN"
RAW_LIMIT: Final = 4096
"""At most this many undecodable bytes travel in a fault."""
_COMPRESSED_BLOCK: Final = 1 << 18
_WRITE_SIZE: Final = 1 << 17

SUPPORTED_SCHEMAS: Final[dict[str, int]] = {
    "mbo": RTYPE_MBO,
    "definition": RTYPE_DEFINITION,
    "statistics": RTYPE_STATISTICS,
}
"""The schemas the replay reads, with the rtype every record of that schema carries."""

_STRUCTS: Final = {1: SCHEMA_STRUCT_MAP_V1, 2: SCHEMA_STRUCT_MAP_V2, 3: SCHEMA_STRUCT_MAP}


def record_dtype(schema: str, version: int, ts_out: bool = False) -> np.dtype:
    """Databento's numpy layout for ``schema`` as written in DBN ``version``."""
    fields = list(_STRUCTS[version][dbn.Schema(schema)]._dtypes)
    if ts_out:
        fields.append(("ts_out", "<u8"))
    return np.dtype(fields)


@dataclass(frozen=True, slots=True)
class ReadFault:
    """Why reading stopped early: ``reason`` is ``bad_header``, ``truncated_file``,
    ``corrupt_record`` or ``corrupt_compression``; ``record`` is the index of the first record
    not delivered."""

    record: int
    reason: str
    detail: str
    raw: bytes = b""


class BadHeader(Exception):
    """The file does not start with a readable DBN header."""

    def __init__(self, detail: str, raw: bytes) -> None:
        super().__init__(detail)
        self.detail, self.raw = detail, raw


class _ByteStream:
    """Decompressed bytes of a plain or zstd file, read exactly; remembers why it ended.

    Decompressed output is kept as a list of segments and handed out as memoryview slices, so a
    read that falls inside one segment copies nothing.
    """

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")
        self.zstd = self._file.read(4) == ZSTD_MAGIC
        self._file.seek(0)
        self._segments: deque[memoryview] = deque()
        self._buffered = 0
        self._dobj = self._decompressor() if self.zstd else None
        self._frame_fed = False
        self._eof = False
        self.error: tuple[str, str, bytes] | None = None
        """``(reason, detail, raw compressed bytes)`` when the compressed stream itself is bad."""

    @staticmethod
    def _decompressor() -> Any:
        return zstandard.ZstdDecompressor().decompressobj(write_size=_WRITE_SIZE)

    def close(self) -> None:
        self._file.close()

    def read(self, n: int) -> bytes | memoryview:
        """Up to ``n`` bytes; fewer only at the end of the data (clean or not: see ``error``)."""
        if not self.zstd:
            return self._file.read(n)
        while self._buffered < n and not self._eof:
            self._fill()
        first = self._segments[0] if self._segments else memoryview(b"")
        if len(first) >= n:  # the common case: a view into one decompressed segment
            out: bytes | memoryview = first[:n]
            rest = first[n:]
            if len(rest):
                self._segments[0] = rest
            else:
                self._segments.popleft()
        else:
            parts, want = [], n
            while want and self._segments:
                seg = self._segments.popleft()
                if len(seg) > want:
                    self._segments.appendleft(seg[want:])
                    seg = seg[:want]
                parts.append(seg)
                want -= len(seg)
            out = b"".join(parts)
        self._buffered -= len(out)
        return out

    def _push(self, data: bytes) -> None:
        if data:
            self._segments.append(memoryview(data))
            self._buffered += len(data)

    def _fill(self) -> None:
        assert self._dobj is not None
        block = self._file.read(_COMPRESSED_BLOCK)
        if not block:
            self._eof = True
            if self._frame_fed and not self._dobj.eof:
                self.error = ("truncated_file", "the zstd stream ends in the middle of a frame", b"")
            return
        while block:
            try:
                self._push(self._dobj.decompress(block))
            except zstandard.ZstdError as exc:
                self._eof = True
                self.error = ("corrupt_compression", str(exc), block[:RAW_LIMIT])
                return
            self._frame_fed = True
            if not self._dobj.eof:
                return
            block = self._dobj.unused_data  # next frame (or garbage) in the same block
            self._dobj = self._decompressor()
            self._frame_fed = False


@dataclass(frozen=True, slots=True)
class DbnHeader:
    version: int
    metadata: dbn.Metadata
    schema: str | None
    dataset: str
    ts_out: bool


class DbnFileReader:
    """Reads one DBN file forward: ``header`` at open, then ``read(n)`` arrays of whole records.

    Arrays are in the file's own layout (see :func:`record_dtype`); ``fault`` is set once reading
    stopped early. Raises :class:`BadHeader` from the constructor if the file is not DBN.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream = _ByteStream(path)
        try:
            self.header = self._read_header()
        except BadHeader:
            self._stream.close()
            raise
        self.position = 0
        """Index of the next record to read."""
        self.fault: ReadFault | None = None
        self.done = False
        schema = self.header.schema
        self._rtype = SUPPORTED_SCHEMAS.get(schema or "", -1)
        self.dtype = record_dtype(schema, self.header.version, self.header.ts_out) if self._rtype >= 0 else None
        self._keep_bad_records = schema == "mbo"
        """MBO records are validated one by one downstream (bad ones become dead letters), and a
        single-schema file keeps every record at a fixed size, so one corrupt MBO record does not
        cost the rest of the file: it is passed on. Other schemas stop at the first bad record."""

    def _read_header(self) -> DbnHeader:
        prefix = bytes(self._stream.read(8))
        if len(prefix) < 8 and self._stream.error is not None:
            _, detail, raw = self._stream.error
            raise BadHeader(f"cannot read the DBN header: {detail}", raw)
        if len(prefix) < 8 or prefix[:3] != DBN_MAGIC:
            raise BadHeader("not a DBN file: it does not start with the 'DBN' magic bytes", prefix)
        (length,) = struct.unpack_from("<I", prefix, 4)
        body = bytes(self._stream.read(length))
        if len(body) < length:
            if self._stream.error is not None:
                raise BadHeader(f"cannot read the DBN metadata: {self._stream.error[1]}", self._stream.error[2])
            raise BadHeader(f"DBN metadata is cut short: {len(body)} of {length} bytes", (prefix + body)[:RAW_LIMIT])
        try:
            meta = dbn.Metadata.decode(prefix + body, upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)
        except Exception as exc:  # noqa: BLE001 - the decoder's own message goes into the fault
            raise BadHeader(f"DBN metadata does not decode: {exc}", (prefix + body)[:RAW_LIMIT]) from exc
        if meta.version not in _STRUCTS:
            raise BadHeader(f"unsupported DBN version {meta.version}", prefix)
        return DbnHeader(meta.version, meta, meta.schema, meta.dataset, bool(meta.ts_out))

    def close(self) -> None:
        self._stream.close()

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` valid records (fewer only at the end); empty once done."""
        assert self.dtype is not None
        if self.done:
            return np.empty(0, dtype=self.dtype)
        size = self.dtype.itemsize
        buf = self._stream.read(n * size)
        whole = len(buf) // size
        records = np.frombuffer(buf, dtype=self.dtype, count=whole)
        bad = (records["length"] != size // 4) | (records["rtype"] != self._rtype)
        if bad.any() and not self._keep_bad_records:
            i = int(bad.argmax())
            tail = bytes(buf[i * size :]) + bytes(self._stream.read(RAW_LIMIT))
            self._stop(self.position + i, "corrupt_record", self._record_detail(records[i], tail), tail[:RAW_LIMIT])
            records = records[:i]
        elif whole < n:
            self.done = True
            tail = bytes(buf[whole * size :])
            if self._stream.error is not None:
                reason, detail, raw = self._stream.error
                self._stop(self.position + whole, reason, detail, tail[:RAW_LIMIT] or raw)
            elif tail:
                self._stop(
                    self.position + whole,
                    "truncated_file",
                    f"the file ends {len(tail)} bytes into a record of {size} bytes",
                    tail[:RAW_LIMIT],
                )
        self.position += len(records)
        return records

    def skip(self, n: int, block: int = 1 << 16) -> None:
        """Read and drop ``n`` records (zstd cannot seek); stops early at the end or a fault."""
        while n > 0 and not self.done:
            n -= len(self.read(min(n, block)))

    def _stop(self, record: int, reason: str, detail: str, raw: bytes) -> None:
        self.done = True
        self.fault = ReadFault(record, reason, detail, raw)

    def _record_detail(self, record: np.void, tail: bytes) -> str:
        size = self.dtype.itemsize if self.dtype is not None else 0
        ours = (
            f"record has length {int(record['length']) * 4} bytes and rtype 0x{int(record['rtype']):02x}; "
            f"the {self.header.schema} schema needs {size} bytes and rtype 0x{self._rtype:02x}"
        )
        decoder = dbn.DBNDecoder(has_metadata=False, ts_out=self.header.ts_out, input_version=self.header.version)
        try:
            decoder.write(tail)
            decoder.decode()
        except Exception as exc:  # noqa: BLE001 - keep the decoder's message
            return f"{ours} (databento_dbn: {exc})"
        return ours


def upgrade_to_v3(records: np.ndarray, schema: str, version: int, ts_out: bool) -> np.ndarray:
    """Records of a v1/v2 file in the current (v3) layout, converted by ``databento_dbn`` itself."""
    if version == dbn.DBN_VERSION or schema == "mbo":
        return records  # MBO is the same in every version
    decoder = dbn.DBNDecoder(
        has_metadata=False,
        ts_out=ts_out,
        input_version=version,
        upgrade_policy=dbn.VersionUpgradePolicy.UPGRADE_TO_V3,
    )
    decoder.write(records.tobytes())
    upgraded = b"".join(bytes(r) for r in decoder.decode())
    return np.frombuffer(upgraded, dtype=record_dtype(schema, dbn.DBN_VERSION, ts_out))
