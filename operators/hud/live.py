"""One contract's session as the live display assembles it from the flow's output topics.

Rows of the eight tables a frame is made of arrive on separate topics, in no order across them.
A second is **complete** when its book row and its three radar rows (wall, vacuum, bands) have
all arrived; frames go out in time order up to the first incomplete second. An episode, score,
label or level row that arrives after the seconds it changes were sent (its ``start_ts``,
``vector_time``, ``resolved_ts`` or ``known_ts`` is at or before them) makes those seconds go
out again, recomputed: the page replaces a second it already has. Once every row has arrived,
the frames held equal the replay's frames of the same session, second for second (``frames`` is
computed per second from the rows known at that second, so a window computes what the whole
session would).

The option chain's GEX (``gex_summary``, ``gex_surface``: when the flow tees them) is not needed
for a second to be complete: a chain's rows come about ``lateness_s`` after the book's, and each
makes the seconds from its own go out again. A chain writes a second's rows only when an input
changed, so a window also reads the chain's last second before it. Surface rows are many (every
strike and expiry of a second); they are kept without a record of each one seen, and a row the
topic delivered twice is dropped when a window reads them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from operators.hud.frames import FRAME_SCHEMA, SessionRows, frames, strike_totals
from operators.instruments import tick_of_prices

EFFECTIVE: dict[str, str] = {"book": "ts_recv", "wall": "ts_recv", "vacuum": "ts_recv", "bands": "ts_recv",
                             "approaches": "start_ts", "scores": "vector_time", "labels": "resolved_ts",
                             "levels": "known_ts", "gex_summary": "ts_recv", "gex_surface": "ts_recv"}
"""Per table: the column saying from which second on a row changes the frames."""
IDENTITY: dict[str, tuple[str, ...]] = {"book": ("ts_recv",), "wall": ("ts_recv",), "vacuum": ("ts_recv",),
                                        "bands": ("ts_recv",), "approaches": ("episode_id",),
                                        "scores": ("episode_id", "model_id"), "labels": ("episode_id",),
                                        "levels": ("level_type",), "gex_summary": ("ts_recv",),
                                        "gex_surface": ("ts_recv", "strike", "expiration")}
"""Per table: what makes a row itself. The topics are at-least-once (a resumed flow may send a row
twice); a row seen before is dropped."""
RADAR = ("wall", "vacuum", "bands")
GEX = ("gex_summary", "gex_surface")
TIMED = ("book", *RADAR, *GEX)
"""Tables of rows per second: a window reads their rows of its seconds only."""
NEVER = math.inf


class LiveSession:
    """The rows and the frames sent so far of one (contract, session)."""

    def __init__(self, contract: str, session_date: str, instrument_id: int, schemas: Mapping[str, pa.Schema]) -> None:
        self.contract, self.session_date, self.instrument_id = contract, session_date, instrument_id
        self._schemas = schemas
        self._chunks: dict[str, list[pa.Table]] = {name: [] for name in schemas}
        self._spans: dict[str, list[tuple[int, int]]] = {name: [] for name in schemas}
        self._seen: dict[str, set[tuple[Any, ...]]] = {name: set() for name in schemas}
        self._book_ts: list[int] = []
        self._radar_ts: dict[str, set[int]] = {name: set() for name in RADAR}
        self._gex_ts: dict[str, list[int]] = {name: [] for name in GEX}
        """The seconds each GEX table has rows of, ascending (a window reads the last one before it)."""
        self._sent_upto = -1  # ns: the last second sent
        self._dirty: float = NEVER  # ns: the earliest sent second a late row changed
        self._sent_chunks: list[pa.Table] = []  # windows sent, in time order (cut where a second went again)
        self._sent_t: list[float] = []  # their t_ms, one per row
        self.tick = 0
        self.events = 0

    @property
    def sent(self) -> pa.Table:
        """Every frame sent, as now known (late rows included), in time order."""
        if not self._sent_chunks:
            return FRAME_SCHEMA.empty_table()
        return pa.concat_tables(self._sent_chunks)

    @property
    def sent_t_ms(self) -> list[float]:
        return self._sent_t

    def add(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Rows of one table (the topics' JSON objects, columns by name); repeats are dropped."""
        if name != "gex_surface":  # those are many: dropped when a window reads them (``_rows``)
            seen, key = self._seen[name], IDENTITY[name]
            fresh = []
            for row in rows:
                identity = tuple(row.get(k) for k in key)
                if identity not in seen:
                    seen.add(identity)
                    fresh.append(row)
            rows = fresh
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=self._schemas[name])
        times = [r.get(EFFECTIVE[name]) for r in rows]
        known = [int(t) for t in times if t is not None]
        self._keep(name, table, (min(known), max(known)) if known else (-1, -1))
        if name == "book":
            for ts in known:
                bisect.insort(self._book_ts, ts)
            self.events += sum(int(r.get("event_count") or 0) for r in rows)
            if self.tick == 0:
                ladder = [r[k] for r in rows for k in r if k[:7] in ("bid_px_", "ask_px_") and r[k] is not None]
                self.tick = tick_of_prices(np.array(ladder, np.int64))
        elif name in RADAR:
            self._radar_ts[name].update(known)
        elif name in GEX:
            seconds = self._gex_ts[name]
            for ts in sorted(set(known)):
                at = bisect.bisect_left(seconds, ts)
                if at == len(seconds) or seconds[at] != ts:
                    seconds.insert(at, ts)
        if known and min(known) <= self._sent_upto:
            self._dirty = min(self._dirty, min(known))

    def advance(self) -> pa.Table:
        """The frames to send now: seconds sent before that late rows changed, then every newly
        complete second, in time order (empty when there is nothing)."""
        complete = self._complete_upto()
        start = int(min(self._dirty, self._sent_upto + 1))
        upto = max(complete, self._sent_upto)
        self._dirty = NEVER
        if self.tick == 0 or start > upto:
            return FRAME_SCHEMA.empty_table()
        window = frames(self._rows(start, upto), self.instrument_id)
        first_ms = float(-(-start // 1_000_000))  # in whole ms: (start + 1 ns) / 1e6 is not a float apart
        self._cut(bisect.bisect_left(self._sent_t, first_ms))
        self._sent_chunks.append(window)
        self._sent_t += window["t_ms"].to_pylist()
        if len(self._sent_chunks) > 2048:  # a day of one-second windows stays a few dozen tables
            self._sent_chunks[:1024] = [pa.concat_tables(self._sent_chunks[:1024]).combine_chunks()]
        self._sent_upto = upto
        return window

    def _cut(self, keep: int) -> None:
        """Forget the sent rows from index ``keep`` on (they go again)."""
        drop = len(self._sent_t) - keep
        while drop > 0:
            last = self._sent_chunks[-1]
            if last.num_rows <= drop:
                self._sent_chunks.pop()
                drop -= last.num_rows
            else:
                self._sent_chunks[-1] = last.slice(0, last.num_rows - drop)
                drop = 0
        del self._sent_t[keep:]

    def _complete_upto(self) -> int:
        """The last second before the first one whose radar rows are not all here (-1: none)."""
        at = bisect.bisect_right(self._book_ts, self._sent_upto)
        last = self._sent_upto
        for ts in self._book_ts[at:]:
            if not all(ts in self._radar_ts[name] for name in RADAR):
                break
            last = ts
        return last

    def _keep(self, name: str, table: pa.Table, span: tuple[int, int]) -> None:
        """Add a chunk; every 32 chunks the oldest 32 become one (so a day stays a few hundred)."""
        chunks, spans = self._chunks[name], self._spans[name]
        chunks.append(table)
        spans.append(span)
        if len(chunks) >= 64:
            merged = pa.concat_tables(chunks[:32]).combine_chunks()
            lo = min(s[0] for s in spans[:32])
            chunks[:32], spans[:32] = [merged], [(lo, max(s[1] for s in spans[:32]))]

    def _rows(self, start: int, upto: int) -> SessionRows:
        """The rows the frames of seconds ``start..upto`` are made of: the per-second tables cut
        to the window, the episode and level tables whole."""
        def table(name: str) -> pa.Table:
            timed = name in TIMED
            first = start
            if name in GEX:  # the chain's last second at or before the window holds at its start
                seconds = self._gex_ts[name]
                at = bisect.bisect_right(seconds, start)
                first = seconds[at - 1] if at else start
            chunks = [c for c, (lo, hi) in zip(self._chunks[name], self._spans[name], strict=True)
                      if not timed or (hi >= first and lo <= upto)]
            whole = pa.concat_tables(chunks) if chunks else self._schemas[name].empty_table()
            if timed and whole.num_rows:
                ts = whole["ts_recv"].to_numpy()
                whole = whole.filter(pa.array((ts >= first) & (ts <= upto)))
            return whole

        tables = {n: table(n) for n in self._schemas}
        gex = {}
        if "gex_summary" in tables:
            gex["gex_summary"] = tables.pop("gex_summary")
        if "gex_surface" in tables:
            gex["gex_strikes"] = strike_totals(_once(tables.pop("gex_surface")))
        return SessionRows(self.contract, self.session_date, self.tick, **tables, **gex)


def _once(surface: pa.Table) -> pa.Table:
    """Surface rows without the repeats an at-least-once topic may deliver (one per second, strike
    and expiry), nulls (JSON's NaN) back to NaN so that sums match the lake's."""
    if surface.num_rows == 0:
        return surface
    net = surface["net_gex"].fill_null(float("nan"))
    surface = surface.set_column(surface.schema.get_field_index("net_gex"), "net_gex", net)
    keys = ["ts_recv", "strike", "expiration"]
    return surface.group_by(keys, use_threads=False).aggregate([("net_gex", "first")]).rename_columns(
        [*keys, "net_gex"])
