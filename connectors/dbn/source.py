"""Replay DBN files (``.dbn``/``.dbn.zst``, DBN v1–v3) as a Bytewax source: a file is a partition.

Delivery guarantee: **at-least-once**. The partition state is one integer, the offset of the next
record to emit (bytewax's rule: resume *after* the last emitted record), so a resumed run replays
whatever was emitted after the last snapshot, and re-emits a file's fault. Every item carries
``source_id`` and its record offset, so a sink that is idempotent on ``(source_id, offset)`` turns
this into **exactly-once** output.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from connectors.dbn.instruments import instruments_for
from connectors.dbn.reader import RAW_PIECE, SUPPORTED_SCHEMAS, BadHeader, Damage, DbnFileReader, upgrade_to_v3
from operators.calendar import calendar_of
from operators.chunks import InstrumentInfo, RecordChunk, Schema, SourceFault

DBN_SUFFIXES = (".dbn", ".dbn.zst")


from operators.errors import SourceError  # noqa: E402  (re-exported: an input cannot be used)

Item = RecordChunk | SourceFault


def resolve_inputs(specs: Sequence[str | Path]) -> list[Path]:
    """Files, directories (their ``*.dbn``/``*.dbn.zst``, not recursive) or glob patterns → the
    sorted, de-duplicated list of files. Raises :class:`SourceError` for a missing path or a
    pattern or directory that yields no file."""
    found: set[Path] = set()
    for spec in specs:
        text = str(spec)
        if glob.has_magic(text):
            matches = [Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file()]
            if not matches:
                raise SourceError(f"No DBN file matches the pattern {text!r}.")
            found.update(m.resolve() for m in matches)
            continue
        path = Path(text)
        if path.is_dir():
            files = [p for p in path.iterdir() if p.is_file() and p.name.endswith(DBN_SUFFIXES)]
            if not files:
                raise SourceError(f"The directory {text} holds no .dbn or .dbn.zst file.")
            found.update(p.resolve() for p in files)
        elif path.is_file():
            found.add(path.resolve())
        else:
            raise SourceError(f"The DBN input {text} does not exist.")
    return sorted(found)


class _DbnFilePartition(StatefulSourcePartition[Item, int]):
    """One file, read forward: chunks of at most ``batch_records`` records, and a fault for each
    piece of damage, in file order."""

    def __init__(
        self,
        source_id: str,
        path: Path,
        *,
        batch_records: int,
        resume_at: int | None,
        speed: float | None,
        clock: Callable[[], float],
    ) -> None:
        self._id = source_id
        self._batch = batch_records
        self._next = resume_at or 0
        self._speed = speed
        self._clock = clock
        self._pending: np.ndarray | None = None
        self._awake: datetime | None = None
        self._t0: float | None = None  # wall clock (clock()) of the first released record
        self._ts0 = 0  # its ts_recv
        self._ts_max = 0
        self._faults: list[SourceFault] = []
        self._bounds: tuple[int, int] | None = None
        self._reader: DbnFileReader | None = None
        try:
            self._reader = DbnFileReader(path)
        except BadHeader as exc:
            self._faults = [f for f in _unreadable(source_id, path, exc.detail) if f.record_offset >= self._next]
            self._schema: Schema = "mbo"
            self._dataset = ""
            self.instruments: dict[int, InstrumentInfo] = {}
            return
        header = self._reader.header
        if header.schema not in SUPPORTED_SCHEMAS:
            self._reader.close()
            raise SourceError(_schema_message(path, header.schema))
        self._schema = cast(Schema, header.schema)
        self._dataset = header.dataset
        self._bounds = session_bounds(header.metadata)
        self.instruments = instruments_for(path, self._schema, header.metadata)
        """Resolved once; the same dict object rides on every chunk of this partition."""
        self._reader.skip(self._next)

    def _fill(self) -> None:
        """Decode the next chunk into ``_pending`` or the next damage into ``_faults``; close at the end."""
        reader = self._reader
        if reader is None:
            return
        item = reader.next(self._batch)
        if item is None:
            reader.close()
            self._reader = None
        elif isinstance(item, Damage):
            self._faults.append(SourceFault(self._id, item.record, item.reason, item.detail, item.raw))
        else:
            h = reader.header
            self._pending = upgrade_to_v3(item, self._schema, h.version, h.ts_out)

    @override
    def next_batch(self) -> list[Item]:
        if self._pending is None or not len(self._pending):
            self._pending = None
            if not self._faults:
                self._fill()
        if self._faults:
            fault = self._faults.pop(0)
            self._next = fault.record_offset + 1
            return [fault]
        if self._pending is None:
            if self._reader is None:
                raise StopIteration
            return []
        records = self._pending
        n = len(records) if self._speed is None else self._due(records)
        if n == 0:
            return []
        out, self._pending = records[:n], records[n:]
        chunk = RecordChunk(self._id, self._next, self._schema, self._dataset, out, self.instruments,
                            ts_bounds=self._bounds)
        self._next += n
        return [chunk]

    def _due(self, records: np.ndarray) -> int:
        """How many of ``records`` are due at ``speed`` × real time; sets ``next_awake``."""
        assert self._speed is not None
        ts = np.maximum.accumulate(records["ts_recv"].astype(np.int64))
        now = self._clock()
        if self._t0 is None:
            self._t0, self._ts0 = now, int(ts[0])
        np.maximum(ts, self._ts_max, out=ts)  # ts_recv never goes back for pacing purposes
        released_ts = self._ts0 + int((now - self._t0) * self._speed * 1e9)
        n = int(np.searchsorted(ts, released_ts, side="right"))
        if n:
            self._ts_max = int(ts[n - 1])
        if n < len(records):
            wait = (int(ts[n]) - self._ts0) / 1e9 / self._speed - (now - self._t0)
            self._awake = datetime.now(UTC) + timedelta(seconds=max(wait, 0.0))
        else:
            self._awake = None
        return n

    @override
    def next_awake(self) -> datetime | None:
        return self._awake

    @override
    def snapshot(self) -> int:
        return self._next

    @override
    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _unreadable(source_id: str, path: Path, detail: str) -> list[SourceFault]:
    """A file whose header does not read: its bytes as they are, in ``bad_header`` pieces (one
    for an empty file, so the failure is on record)."""
    data = path.read_bytes()
    return [SourceFault(source_id, k // RAW_PIECE, "bad_header", detail, data[k : k + RAW_PIECE])
            for k in range(0, max(len(data), 1), RAW_PIECE)]


def session_bounds(metadata: object) -> tuple[int, int] | None:
    """``[start, end)`` in ns of the trade dates a file's metadata covers on its dataset's
    calendar (on CME Globex 18:00 ET the evening before its first trade date to 18:00 ET on its
    last; for US equities midnight to midnight), or None when the metadata has no range.

    A record outside them cannot belong to the file (Databento selects a file's records by
    ``ts_recv`` within its range): its timestamp is damaged.
    """
    start, end = getattr(metadata, "start", 0) or 0, getattr(metadata, "end", 0) or 0
    if not start or not end or end <= start:
        return None
    calendar = calendar_of(str(getattr(metadata, "dataset", "") or ""))
    first, last = calendar.trade_date_of(int(start)), calendar.trade_date_of(int(end) - 1)
    return calendar.dates_start_ns(first), calendar.dates_start_ns(last + timedelta(days=1))


def _schema_message(path: Path, schema: str | None) -> str:
    return (
        f"{path} holds {schema or 'mixed'} records; the DBN replay reads only "
        f"{', '.join(SUPPORTED_SCHEMAS)} files."
    )


class DbnReplaySource(FixedPartitionedSource[Item, int]):
    """Replay DBN files; one file per partition, keyed ``dbn:<file name>`` (or the path relative
    to ``root``), independent of the worker count.

    Items are :class:`RecordChunk` of at most ``batch_records`` consecutive records of the file's
    schema (``mbo``, ``definition`` or ``statistics``) in Databento's current (v3) numpy layout,
    zero-copy for MBO; then, if the file ends badly, one :class:`SourceFault` at the first record
    that could not be decoded; the partition then ends. ``speed=None`` replays as fast as
    possible; ``speed=x`` releases records when ``ts_recv`` has advanced ``x`` × the wall time
    since the partition's first record (never early).

    Delivery: at-least-once (resume replays from the last snapshot); exactly-once with a sink that
    is idempotent on ``(source_id, record offset)``.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        batch_records: int = 65_536,
        speed: float | None = None,
        root: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_records < 1:
            raise SourceError(f"batch_records must be at least 1, not {batch_records}.")
        if speed is not None and not speed > 0:
            raise SourceError(f"speed must be a positive factor of real time or None, not {speed}.")
        self._batch = batch_records
        self._speed = speed
        self._clock = clock
        self._paths: dict[str, Path] = {}
        for path in paths:
            path = Path(path)
            if not path.is_file():
                raise SourceError(f"The DBN input {path} does not exist.")
            key = _source_id(path, root)
            if key in self._paths and self._paths[key] != path:
                raise SourceError(
                    f"{path} and {self._paths[key]} would both be partition {key}; pass root= to key files by path."
                )
            self._paths[key] = path
            _check_schema(path)

    @override
    def list_parts(self) -> list[str]:
        return sorted(self._paths)

    def path_of(self, part: str) -> Path:
        """The file behind partition ``part``."""
        return self._paths[part]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _DbnFilePartition:
        return _DbnFilePartition(
            for_part,
            self._paths[for_part],
            batch_records=self._batch,
            resume_at=resume_state,
            speed=self._speed,
            clock=self._clock,
        )


def source_id_of(path: Path, root: Path | None = None) -> str:
    """The stable partition id (and Bronze ``source``) of a file: ``dbn:<name>``."""
    return _source_id(path, root)


def _source_id(path: Path, root: Path | None) -> str:
    if root is None:
        return f"dbn:{path.name}"
    try:
        return f"dbn:{path.resolve().relative_to(root.resolve()).as_posix()}"
    except ValueError:
        raise SourceError(f"The DBN input {path} is not under the replay root {root}.") from None


def _check_schema(path: Path) -> None:
    """Reject files of an unsupported schema now; an unreadable header is a fault at run time."""
    try:
        reader = DbnFileReader(path)
    except BadHeader:
        return
    try:
        if reader.header.schema not in SUPPORTED_SCHEMAS:
            raise SourceError(_schema_message(path, reader.header.schema))
    finally:
        reader.close()
