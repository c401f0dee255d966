"""Who reads which Bronze slice when, in one process.

Two rules, both about memory and work rather than results (every partition gets the same records
whatever the timing):

- **One scan per table partition.** A partition that needs its records reads every slice of its
  (session, underlier, instrument type) that a partition of this process still wants, in one
  scan (``records.read_group``), keeps its own and leaves the others ready for their partitions.
  A partition that asks while another thread reads its group waits for that read.
- **Turns per worker.** A worker's partitions take turns holding records: one reads and emits
  while the others wait, and one whose records are ready goes before one that would start a new
  scan. So a worker holds about one table partition's slices at a time, however many sessions
  the replay covers.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from deltalake import DeltaTable

from connectors.bronze.catalog import BronzeSlice, BronzeTable
from connectors.bronze.records import read_group

Reader = Callable[[DeltaTable, Sequence[BronzeSlice]], dict[str, np.ndarray]]
"""Reads the slices of one group of a table: each one's records in order, by partition id."""


class SliceReads:
    """The reads of one Bronze table in this process, shared by its partitions on every worker.
    ``read``: how a group of its slices is read (None: ``bronze.mbo``'s, ``records.read_group``)."""

    def __init__(self, table: BronzeTable, slices: Sequence[BronzeSlice], read: Reader | None = None) -> None:
        self._table, self._reader = table, read
        self._groups: dict[tuple, list[BronzeSlice]] = defaultdict(list)
        for part in slices:
            self._groups[part.group].append(part)
        self._lock = threading.Lock()
        self._wanted: set[str] = set()
        self._ready: dict[str, np.ndarray] = {}
        self._reading: dict[tuple, threading.Event] = {}
        self._worker = threading.local()

    def want(self, part: str) -> None:
        """``part`` (built in this process, on its worker's thread) will ask for its records."""
        self._mine().add(part)
        with self._lock:
            self._wanted.add(part)

    def _mine(self) -> set[str]:
        """The partitions of the calling worker."""
        return self._worker.__dict__.setdefault("parts", set())

    def turn(self, part: str) -> bool:
        """May ``part`` hold its records now? Asked on the partition's worker thread."""
        mine = self._mine()
        mine.add(part)
        holder = getattr(self._worker, "holder", None)
        if holder is None:
            with self._lock:
                # a C loop: a worker may hold a day's options, ~650 parts, each asking at every poll
                if part not in self._ready and not mine.isdisjoint(self._ready):
                    return False
            self._worker.holder = holder = part
        return holder == part

    def done(self, part: str) -> None:
        """``part`` ended or closed: it gives back its turn and wants nothing more."""
        if getattr(self._worker, "holder", None) == part:
            self._worker.holder = None
        with self._lock:
            self._wanted.discard(part)
            self._ready.pop(part, None)

    def take(self, part: BronzeSlice) -> np.ndarray:
        """``part``'s records in their original order: read now with its group, or ready."""
        while True:
            with self._lock:
                if part.source_id in self._ready:
                    self._wanted.discard(part.source_id)
                    return self._ready.pop(part.source_id)
                running = self._reading.get(part.group)
                members: list[BronzeSlice] = []
                if running is None:
                    self._reading[part.group] = threading.Event()
                    members = [s for s in self._groups[part.group] if s.source_id in self._wanted or s == part]
            if running is None:
                self._read(part, members)
            else:
                running.wait()

    def _read(self, asker: BronzeSlice, members: list[BronzeSlice]) -> None:
        records: dict[str, np.ndarray] = {}
        try:
            records = (self._reader or read_group)(self._table.open(), members)
        finally:  # a failed read wakes its waiters, which then read (and fail) themselves
            with self._lock:
                self._ready.update((k, v) for k, v in records.items() if k in self._wanted or k == asker.source_id)
                self._reading.pop(asker.group).set()
