"""Exact, forward-only reading of one DBN file: header, then records and damage, in file order.

Databento's historical files hold one schema, so every record has the same size; whole records
go straight into ``np.frombuffer`` (zero-copy over the decompressed bytes) after a vectorised
check of each record's ``length`` and ``rtype`` bytes. Unlike ``DBNStore.to_ndarray`` (which
warns and drops a partial tail, and gives up at the first bad record), every byte after the
header comes out exactly once, either in a record or in a :class:`Damage`:

- a record whose header is damaged, or bytes inserted or lost that move the record grid, become
  a ``Damage`` holding exactly those bytes, and reading resumes at the next run of whole records
  (``connectors.dbn.resync``);
- a record cut short by the end of the file is ``truncated_file``;
- in a ``.zst`` file, the output of every block before a damaged or missing block is read
  (``connectors.dbn.zstd_blocks``), and the compressed bytes from that block to the end of the
  file become ``corrupt_compression`` / ``truncated_compression`` damage, as they are.

Records and damage share one position sequence (``position``): each record and each damage piece
takes the next integer, so a resumed reader (``skip``) and a dead letter's offset name exactly
one place in the file. A stretch longer than ``RAW_PIECE`` is cut into consecutive pieces, so
every piece fits one dead-letter row and one Kafka message.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import databento_dbn as dbn
import numpy as np
from databento.common.constants import SCHEMA_STRUCT_MAP, SCHEMA_STRUCT_MAP_V1, SCHEMA_STRUCT_MAP_V2

from connectors.dbn.resync import RUN, RecordShape, resync_point
from connectors.dbn.zstd_blocks import ZSTD_MAGIC, StreamFault, ZstdBlocks
from operators.records import RTYPE_CMBP_1, RTYPE_DEFINITION, RTYPE_MBO, RTYPE_STATISTICS

DBN_MAGIC: Final = b"DBN"
RAW_PIECE: Final = 1 << 19
"""At most this many bytes travel in one piece of damage (one dead letter)."""
_SCAN: Final = 1 << 20
"""Bytes looked at per step when searching for the next whole record after damage."""
_SLOT_LETTERS: Final = 64
"""Damage on the record grid up to this many records long is one dead letter per record slot,
named by its header (``unknown_rtype``, ``bad_length``); longer, it is ``garbage``."""

SUPPORTED_SCHEMAS: Final[dict[str, int]] = {
    "mbo": RTYPE_MBO,
    "definition": RTYPE_DEFINITION,
    "statistics": RTYPE_STATISTICS,
    "cmbp-1": RTYPE_CMBP_1,
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
class Damage:
    """Bytes of the file that are not a record, at position ``record``.

    ``reason``: ``unknown_rtype`` or ``bad_length`` (one record's slot with a damaged header),
    ``garbage`` (bytes that do not fit the record grid), ``truncated_file`` (a last record cut
    short), ``corrupt_compression`` / ``truncated_compression`` (``raw`` is then a piece of the
    *compressed* file from the first block that did not decode).
    """

    record: int
    reason: str
    detail: str
    raw: bytes

    @property
    def compressed(self) -> bool:
        return self.reason in COMPRESSED_REASONS


COMPRESSED_REASONS: Final = frozenset({"corrupt_compression", "truncated_compression"})
"""Damage whose bytes are a piece of the compressed file rather than of the decoded records."""


class BadHeader(Exception):
    """The file does not start with a readable DBN header."""

    def __init__(self, detail: str, raw: bytes) -> None:
        super().__init__(detail)
        self.detail, self.raw = detail, raw


class _ByteStream:
    """Decompressed bytes of a plain or zstd file, read exactly; ``fault`` says why a zstd
    stream ended early.

    Decompressed output is kept as a list of segments and handed out as memoryview slices, so a
    read that falls inside one segment copies nothing.
    """

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")
        self.zstd = self._file.read(4) == ZSTD_MAGIC
        self._file.seek(0)
        self._segments: deque[memoryview] = deque()
        self._buffered = 0
        self._blocks = ZstdBlocks(self._file) if self.zstd else None

    @property
    def fault(self) -> StreamFault | None:
        return self._blocks.fault if self._blocks is not None else None

    def close(self) -> None:
        self._file.close()

    def read(self, n: int) -> bytes | memoryview:
        """Up to ``n`` bytes; fewer only at the end of the data (clean or not: see ``fault``)."""
        if self._blocks is None:
            return self._file.read(n)
        while self._buffered < n:
            out = self._blocks.next_output()
            if out is None:
                break
            self._segments.append(memoryview(out))
            self._buffered += len(out)
        first = self._segments[0] if self._segments else memoryview(b"")
        if len(first) >= n:  # the common case: a view into one decompressed segment
            out_view: bytes | memoryview = first[:n]
            if len(first) > n:
                self._segments[0] = first[n:]
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
            out_view = b"".join(parts)
        self._buffered -= len(out_view)
        return out_view

    def compressed_tail(self, offset: int) -> Iterator[bytes]:
        """The file's bytes from ``offset`` to its end, in pieces of at most ``RAW_PIECE``."""
        self._file.seek(offset)
        while piece := self._file.read(RAW_PIECE):
            yield piece


@dataclass(frozen=True, slots=True)
class DbnHeader:
    version: int
    metadata: dbn.Metadata
    schema: str | None
    dataset: str
    ts_out: bool
    length: int = 0
    """Bytes of the header (magic, length word and metadata): where the records start."""


class DbnFileReader:
    """Reads one DBN file forward: ``header`` at open, then ``next(n)``: records or damage.

    Arrays are in the file's own layout (see :func:`record_dtype`). Raises :class:`BadHeader`
    from the constructor if the file is not DBN.
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
        """Position of the next record or damage piece."""
        self.records_read = 0
        self.damages: list[Damage] = []
        """Damage that :meth:`read` stepped over (``next`` hands it out instead)."""
        self.done = False
        schema = self.header.schema
        rtype = SUPPORTED_SCHEMAS.get(schema or "", -1)
        self.dtype = (record_dtype(schema, self.header.version, self.header.ts_out)
                      if schema is not None and rtype >= 0 else None)
        self._shape = RecordShape(self.dtype.itemsize if self.dtype is not None else 0, rtype, schema == "mbo")
        self._byte = 0  # offset in the records of the next byte not yet handed out
        self._carry = b""  # bytes read ahead of the last record handed out
        self._ended = False  # the (decompressed) stream has nothing after _carry
        self._queue: deque[tuple[str, str, bytes]] = deque()

    def _read_header(self) -> DbnHeader:
        prefix = bytes(self._stream.read(8))
        fault = self._stream.fault
        if len(prefix) < 8 and fault is not None:
            raise BadHeader(f"cannot read the DBN header: {fault.detail}", prefix)
        if len(prefix) < 8 or prefix[:3] != DBN_MAGIC:
            raise BadHeader("not a DBN file: it does not start with the 'DBN' magic bytes", prefix)
        (length,) = struct.unpack_from("<I", prefix, 4)
        body = bytes(self._stream.read(length))
        if len(body) < length:
            fault = self._stream.fault
            why = fault.detail if fault is not None else f"it is cut short: {len(body)} of {length} bytes"
            raise BadHeader(f"cannot read the DBN metadata: {why}", (prefix + body)[:RAW_PIECE])
        try:
            # databento_dbn's stub declares VersionUpgradePolicy's members as `int` attributes
            meta = dbn.Metadata.decode(prefix + body,
                                       upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the decoder's own message goes into the fault
            raise BadHeader(f"DBN metadata does not decode: {exc}", (prefix + body)[:RAW_PIECE]) from exc
        if meta.version not in _STRUCTS:
            raise BadHeader(f"unsupported DBN version {meta.version}", prefix)
        return DbnHeader(meta.version, meta, meta.schema, meta.dataset, bool(meta.ts_out), 8 + length)

    def close(self) -> None:
        self._stream.close()

    def next(self, n: int) -> np.ndarray | Damage | None:
        """Up to ``n`` whole records (never empty), or the next piece of damage; None at the end."""
        assert self.dtype is not None
        if self._queue:
            return self._pop()
        if self.done:
            return None
        size = self.dtype.itemsize
        buf = self._take(n * size)
        whole = len(buf) // size
        records = np.frombuffer(buf, dtype=self.dtype, count=whole)
        bad = (records["length"] != size // 4) | (records["rtype"] != self._shape.rtype)
        good = int(bad.argmax()) if bad.any() else whole
        self._carry = bytes(buf[good * size :]) + self._carry
        if good:
            self.position += good
            self.records_read += good
            self._byte += good * size
            return records[:good]
        self._step_over_damage()
        return self._pop() if self._queue else None

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` records, stepping over damage (kept in ``damages``); empty once done."""
        while (item := self.next(n)) is not None:
            if isinstance(item, Damage):
                self.damages.append(item)
                continue
            return item
        assert self.dtype is not None
        return np.empty(0, dtype=self.dtype)

    def skip(self, n: int, block: int = 1 << 16) -> None:
        """Read and drop everything before position ``n`` (zstd cannot seek)."""
        while self.position < n and self.next(min(n - self.position, block)) is not None:
            pass

    def _take(self, n: int) -> bytes | memoryview:
        """The next ``n`` bytes (fewer only at the end): what was read ahead first, then the stream."""
        if not self._carry:
            buf = self._stream.read(n)
            self._ended = self._ended or len(buf) < n
            return buf
        buf, self._carry = self._carry[:n], self._carry[n:]
        if len(buf) < n:
            more = self._stream.read(n - len(buf))
            self._ended = self._ended or len(more) < n - len(buf)
            buf += bytes(more)
        return buf

    def _pop(self) -> Damage:
        reason, detail, raw = self._queue.popleft()
        self.position += 1
        return Damage(self.position - 1, reason, detail, raw)

    def _step_over_damage(self) -> None:
        """``_carry`` starts at bytes that are not a record: queue them as damage pieces."""
        size = self._shape.size
        if self._ended and len(self._carry) < size:
            if self._carry:
                self._queue_bytes("truncated_file", f"the file ends {len(self._carry)} bytes into a record of "
                                  f"{size} bytes", self._carry)
            self._finish()
            return
        garbage, first = b"", 1
        while True:
            window = self._carry + bytes(self._stream.read(_SCAN)) if not self._ended else self._carry
            if len(window) < len(self._carry) + _SCAN:
                self._ended = True
            at = resync_point(window, self._shape, at_end=self._ended, first=first)
            if at is not None or self._ended:
                cut = len(window) if at is None else at
                self._carry = window[cut:]
                self._queue_garbage(garbage + window[:cut], resumes=at is not None)
                if at is None:
                    self._finish()
                return
            keep = RUN * size  # a run may start in the last slots of this window
            garbage, self._carry, first = garbage + window[:-keep], window[-keep:], 0
            while len(garbage) > RAW_PIECE:  # hand out whole pieces as the search goes on
                self._queue_bytes("garbage", self._garbage_detail(RAW_PIECE, None), garbage[:RAW_PIECE])
                garbage = garbage[RAW_PIECE:]

    def _queue_garbage(self, data: bytes, *, resumes: bool) -> None:
        size = self._shape.size
        slots = len(data) // size
        if resumes and len(data) == slots * size and slots <= _SLOT_LETTERS:  # the grid held: damaged headers
            for record, k in zip(np.frombuffer(data, dtype=self.dtype), range(0, len(data), size), strict=True):
                reason = "unknown_rtype" if int(record["rtype"]) != self._shape.rtype else "bad_length"
                self._queue_bytes(reason, self._record_detail(record), data[k : k + size])
            return
        self._queue_bytes("garbage", self._garbage_detail(len(data), resumes), data)

    def _garbage_detail(self, n: int, resumes: bool | None) -> str:
        schema = self.header.schema
        where = f"{n:,} bytes at byte {self._byte:,} of the records are not {schema} records"
        if resumes is None:
            return f"{where} (the search for whole records goes on)"
        return f"{where}; whole records resume after them" if resumes else f"{where}, to the end of the file"

    def _queue_bytes(self, reason: str, detail: str, data: bytes) -> None:
        for k in range(0, max(len(data), 1), RAW_PIECE):
            piece = data[k : k + RAW_PIECE]
            self._queue.append((reason, detail, piece))
            self._byte += len(piece)

    def _finish(self) -> None:
        """The decoded stream is used up: queue the undecodable compressed tail, if any."""
        self.done = True
        fault = self._stream.fault
        if fault is None:
            return
        detail = (f"{fault.detail}; the compressed bytes from byte {fault.offset:,} to the end of the file are kept "
                  f"as they are (whole records before them: {self.records_read:,})")
        for piece in self._stream.compressed_tail(fault.offset):
            self._queue.append((fault.reason, detail, piece))
        if not self._queue:  # the file ends exactly where the damaged frame starts
            self._queue.append((fault.reason, detail, b""))

    def _record_detail(self, record: np.void) -> str:
        return (
            f"record has length {int(record['length']) * 4} bytes and rtype 0x{int(record['rtype']):02x}; "
            f"the {self.header.schema} schema needs {self._shape.size} bytes and rtype 0x{self._shape.rtype:02x}"
        )


def upgrade_to_v3(records: np.ndarray, schema: str, version: int, ts_out: bool) -> np.ndarray:
    """Records of a v1/v2 file in the current (v3) layout, converted by ``databento_dbn`` itself."""
    if version == dbn.DBN_VERSION or schema == "mbo":
        return records  # MBO is the same in every version
    decoder = dbn.DBNDecoder(
        has_metadata=False,
        ts_out=ts_out,
        input_version=version,
        upgrade_policy=dbn.VersionUpgradePolicy.UPGRADE_TO_V3,  # type: ignore[arg-type]  # stub: members as `int`
    )
    decoder.write(records.tobytes())
    upgraded = b"".join(bytes(r) for r in decoder.decode())
    return np.frombuffer(upgraded, dtype=record_dtype(schema, dbn.DBN_VERSION, ts_out))
