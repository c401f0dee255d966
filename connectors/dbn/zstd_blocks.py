"""Decompress a ``.zst`` file so that damage costs only what comes after it.

A decompressor fed large pieces of compressed input loses the output of every good block that
shares a piece with a bad one, and ``zstd -dc`` or zstandard's stream reader stop somewhere
before the damage (the stream reader even silently). Feeding one block at a time would keep
every good block, but costs a large share of the decoding speed. So the file is decoded in large
pieces, and only when a frame fails (or the file ends inside one) is that frame walked again
from its start, block by block, following its own structure (RFC 8878 §3.1: frame header, blocks
each with a 3-byte header, an optional checksum): that gives the output of every block before the
damage, and the file offset of the first block that does not decode. From there on nothing can be
placed in the decompressed stream (the lost block's length is unknown), so the caller keeps those
compressed bytes as they are.

zstd checks a block only as far as its entropy coding reaches: a flipped byte in a block's
literals decodes to wrong bytes without an error (and frames without a checksum never find out).
Those bytes reach the record reader as damaged records, which it dead-letters.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import zstandard

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_FIRST: Final = 0x184D2A50
_SKIPPABLE_LAST: Final = 0x184D2A5F
MAX_BLOCK: Final = 128 * 1024
"""RFC 8878: a block's content never exceeds 128 KiB."""
_PIECE: Final = 1 << 20
"""Compressed bytes fed to the decompressor at once on the fast path."""
_RLE_BLOCK: Final = 1
_RESERVED_BLOCK: Final = 3


@dataclass(frozen=True, slots=True)
class StreamFault:
    """Why decompression stopped before the end of the file.

    ``offset`` is the file offset of the first compressed byte whose output was not delivered:
    the start of the frame or block that failed. ``reason`` is ``corrupt_compression`` or
    ``truncated_compression``.
    """

    reason: str
    detail: str
    offset: int


class ZstdBlocks:
    """The decompressed output of a zstd file, in pieces (``next_output``)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._offset = 0  # file offset of the next byte not yet read
        self._left = b""  # bytes read past the end of the last frame
        self._dobj: Any = None
        self._frame_start = 0
        self._frame_out = 0  # bytes of output this frame has delivered
        self._again: deque[bytes] = deque()  # output of a frame walked again after damage
        self._done = False
        self.fault: StreamFault | None = None

    def next_output(self) -> bytes | None:
        """The next non-empty piece of output; None once the file ended, cleanly or at ``fault``."""
        while self._again or not self._done:
            out = self._again.popleft() if self._again else self._step()
            if out:
                return out
        return None

    def _read(self, n: int) -> bytes:
        data = self._left[:n]
        self._left = self._left[n:]
        if len(data) < n:
            data += self._file.read(n - len(data))
        self._offset += len(data)
        return data

    def _step(self) -> bytes:
        if self._dobj is None:
            return self._open_frame()
        data = self._read(_PIECE)
        if not data:
            return self._walk_again()  # the file ends inside this frame
        try:
            out = self._dobj.decompress(data)
        except zstandard.ZstdError:
            return self._walk_again()
        self._frame_out += len(out)
        if self._dobj.eof:
            unused = self._dobj.unused_data
            self._left, self._offset = unused + self._left, self._offset - len(unused)
            self._dobj = None
        return out

    def _open_frame(self) -> bytes:
        start = self._offset
        magic = self._read(4)
        if not magic:
            self._done = True
            return b""
        (number,) = struct.unpack("<I", magic.ljust(4, b"\0"))
        if len(magic) == 4 and _SKIPPABLE_FIRST <= number <= _SKIPPABLE_LAST:
            size = self._read(4)
            length = struct.unpack("<I", size)[0] if len(size) == 4 else -1
            if length < 0 or len(self._read(length)) < length:
                return self._stop("truncated_compression", f"the file ends inside the skippable frame at byte {start}",
                                  start)
            return b""
        if magic != ZSTD_MAGIC:
            if len(magic) < 4 and ZSTD_MAGIC.startswith(magic):
                return self._stop("truncated_compression", f"the file ends inside a zstd frame at byte {start}", start)
            return self._stop("corrupt_compression", f"the bytes at {start} do not start a zstd frame", start)
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._frame_start, self._frame_out = start, 0
        return self._dobj.decompress(magic)

    def _stop(self, reason: str, detail: str, offset: int) -> bytes:
        self.fault = StreamFault(reason, detail, offset)
        self._done = True
        return b""

    def _walk_again(self) -> bytes:
        """The current frame failed: decode it again block by block from its start, keep the
        output not delivered yet up to the first block that fails, and stop there."""
        self._file.seek(self._frame_start)
        walk = _FrameWalk(self._file, self._frame_start)
        skip = self._frame_out
        for out in walk.outputs():
            piece = out[skip:] if skip else out
            skip = max(skip - len(out), 0)
            if piece:
                self._again.append(piece)
        if walk.fault is None:  # the walk got through: the frame only failed in large pieces
            self._file.seek(walk.end)
            self._offset, self._left, self._dobj = walk.end, b"", None
            return b""
        return self._stop(walk.fault.reason, walk.fault.detail, walk.fault.offset)


class _FrameWalk:
    """One zstd frame decoded block by block from ``start``; ``fault`` says where it failed."""

    def __init__(self, file: BinaryIO, start: int) -> None:
        self._file = file
        self._offset = start
        self.end = start
        self.fault: StreamFault | None = None

    def _read(self, n: int) -> bytes:
        data = self._file.read(n)
        self._offset += len(data)
        return data

    def outputs(self) -> Any:
        """Yields each block's output until the frame ends or a block fails."""
        start = self._offset
        head = self._read(5)
        rest = self._read(_frame_header_size(head[4]) - 1) if len(head) == 5 else b""
        if len(head) < 5 or len(rest) < _frame_header_size(head[4]) - 1:
            self.fault = StreamFault("truncated_compression", f"the file ends inside the zstd frame header at byte "
                                     f"{start}", start)
            return
        dobj, pending, checksum = zstandard.ZstdDecompressor().decompressobj(), head + rest, bool(head[4] & 0x04)
        while True:
            unit = self._offset - len(pending)
            block = self._block(checksum, unit)
            if block is None:
                return
            try:
                out = dobj.decompress(pending + block)
            except zstandard.ZstdError as exc:
                self.fault = StreamFault("corrupt_compression", f"the zstd block at byte {unit} does not decode: {exc}",
                                         unit)
                return
            pending = b""
            yield out
            if dobj.eof:
                self.end = self._offset
                return

    def _block(self, checksum: bool, unit: int) -> bytes | None:
        """One block (header, content, and the checksum after the last); None and ``fault`` if it
        cannot be read whole. ``unit`` is where the bytes not yet decoded start (the frame's
        start for its first block): where the undecodable tail starts."""
        start = self._offset
        head = self._read(3)
        word = int.from_bytes(head, "little") if len(head) == 3 else 0
        last, kind, size = word & 1, (word >> 1) & 3, word >> 3
        if len(head) == 3 and (kind == _RESERVED_BLOCK or size > MAX_BLOCK):
            self.fault = StreamFault("corrupt_compression", f"the zstd block header at byte {start} is damaged "
                                     f"(type {kind}, size {size})", unit)
            return None
        want = (1 if kind == _RLE_BLOCK else size) + (4 if last and checksum else 0)
        body = self._read(want) if len(head) == 3 else b""
        if len(head) < 3 or len(body) < want:
            self.fault = StreamFault("truncated_compression", f"the file ends inside the zstd block at byte {start}",
                                     unit)
            return None
        return head + body


def _frame_header_size(descriptor: int) -> int:
    """Bytes of a frame header after the magic number, descriptor included (RFC 8878 §3.1.1.1)."""
    content_size_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    window = 0 if single_segment else 1
    dictionary = (0, 1, 2, 4)[dict_flag]
    content = (single_segment, 2, 4, 8)[content_size_flag]
    return 1 + window + dictionary + content
