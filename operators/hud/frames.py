"""The heads-up display's frames: one row per contract and second, in plain Arrow types.

A frame is what a trader's screen shows for one second of one contract: the top-10 ladder, best
bid and ask, mid, last trade, the wall and vacuum surfaces (+-20 ticks from spot), the 16
physics bands, the six key levels (each once it is known, never before), and the newest
episode at or before that second with its probabilities, its neighbours' outcome shares and,
once resolved, its label. It is built from the same rows whether they come from the Delta
tables (replay) or from the flow's output topics (live), so the two give identical frames.

The wire uses plain types only: float64 (prices in price units, sizes, probabilities; NaN
where there is nothing), int32 (flags and counts) and utf8; times are float64 epoch
milliseconds, because JavaScript's BigInt breaks ordinary arithmetic. ``docs/hud.md`` is the
reader's reference; ``FRAME_SCHEMA`` is the one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from operators.levels import LEVEL_TYPES
from operators.records import BOOK_DEPTH, PRICE_SCALE, UNDEF_PRICE
from operators.surfaces import HALF_WIDTH, NORM_NAMES

HUD_VERSION = "hud.v2"
"""Written into every message's schema metadata (``version``); bump on any change to the columns."""
LADDER = BOOK_DEPTH
SURFACE_WIDTH = 2 * HALF_WIDTH + 1
EPISODE_TEXT = ("episode_id", "level_type", "direction", "outcome", "score_status")
GEX_STRIKES = 21
"""The GEX profile: the strikes of the contract's option chain nearest spot (10 each side)."""
GEX_NUMBERS = ("gex_net_bn", "gex_zero", "gex_call_wall", "gex_put_wall")
EPISODE_NUMBERS = ("start_ms", "level_price", "p_break", "p_reject", "p_chop", "nn_break", "nn_reject", "nn_chop",
                   "resolved_ms")


def _fields() -> list[pa.Field]:
    f64, i32, utf8 = pa.float64(), pa.int32(), pa.string()
    fields = [pa.field("contract", utf8), pa.field("instrument_id", f64), pa.field("session_date", utf8),
              pa.field("t_ms", f64), pa.field("book_valid", i32)]
    for side in ("bid", "ask"):
        fields += [pa.field(f"{side}_{kind}_{i}", f64) for kind in ("px", "sz", "ct") for i in range(LADDER)]
    fields += [pa.field(n, f64) for n in ("best_bid", "best_ask", "mid", "last_trade_px", "last_trade_sz", "volume",
                                           "tick", "spot")]
    fields += [pa.field(f"wall_{j:02d}", f64) for j in range(SURFACE_WIDTH)]
    fields += [pa.field(f"vacuum_{j:02d}", f64) for j in range(SURFACE_WIDTH)]
    fields += [pa.field(n, f64) for n in NORM_NAMES]
    for level in LEVEL_TYPES:
        fields += [pa.field(f"level_{level}", f64), pa.field(f"level_{level}_known_ms", f64)]
    fields += [pa.field(n, f64) for n in GEX_NUMBERS]
    fields += [pa.field(f"gex_strike_{k:02d}", f64) for k in range(GEX_STRIKES)]
    fields += [pa.field(f"gex_bn_{k:02d}", f64) for k in range(GEX_STRIKES)]
    fields += [pa.field("episodes_open", i32), pa.field("nn_count", i32)]
    fields += [pa.field(f"ep_{n}", utf8) for n in EPISODE_TEXT]
    fields += [pa.field(f"ep_{n}", f64) for n in EPISODE_NUMBERS]
    return fields


FRAME_SCHEMA = pa.schema(_fields(), metadata={"version": HUD_VERSION})
"""Column ``wall_JJ``/``vacuum_JJ`` is offset ``JJ - 20`` ticks from ``spot``."""


@dataclass(frozen=True, slots=True)
class SessionRows:
    """One (contract, session)'s rows, as the lake's tables (or the topics' JSON) hold them.

    Tables may be empty or lack rows for some seconds; only the columns named in ``docs/hud.md``
    are read. ``tick`` is the contract's minimum price increment in 1e-9 units.
    """

    contract: str
    session_date: str
    tick: int
    book: pa.Table  # silver.book_snapshot_1s
    wall: pa.Table  # silver.wall_surface_1s
    vacuum: pa.Table  # silver.vacuum_surface_1s
    bands: pa.Table  # silver.physics_bands_1s
    levels: pa.Table  # silver.session_levels
    approaches: pa.Table  # silver.level_approach
    scores: pa.Table  # gold.inference_scores
    labels: pa.Table  # gold.labels
    gex_summary: pa.Table = field(default_factory=lambda: pa.table({}))
    """silver.gex_summary_1s of the contract's own chain (empty: no chain; the live topics carry none)."""
    gex_strikes: pa.Table = field(default_factory=lambda: pa.table({}))
    """silver.gex_surface_1s summed over expiries: ``ts_recv``, ``strike``, ``net_gex``."""


def strike_totals(surface: pa.Table) -> pa.Table:
    """``silver.gex_surface_1s`` rows (``ts_recv``, ``strike``, ``expiration``, ``net_gex``) summed
    over expiries per second and strike, in expiry order whatever order the rows come in: floating
    sums in another order differ in their last digits, and the frames would differ from run to run."""
    ordered = surface.sort_by([("ts_recv", "ascending"), ("strike", "ascending"), ("expiration", "ascending")])
    totals = ordered.group_by(["ts_recv", "strike"], use_threads=False).aggregate([("net_gex", "sum")])
    return totals.rename_columns(["ts_recv", "strike", "net_gex"])


def _ms(ns: np.ndarray) -> np.ndarray:
    return ns.astype(np.float64) / 1e6


def _raw(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 1e-9 prices, null as UNDEF_PRICE."""
    if col.null_count:
        col = pc.fill_null(col, UNDEF_PRICE)
    return col.to_numpy().astype(np.int64, copy=False)


def _prices(raw: np.ndarray) -> np.ndarray:
    """int64 1e-9 prices as float64 price units (UNDEF_PRICE: NaN)."""
    out = raw.astype(np.float64) / PRICE_SCALE
    out[raw == UNDEF_PRICE] = np.nan
    return out


def _price(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 1e-9 prices (null or UNDEF_PRICE: NaN) as float64 price units."""
    return _prices(_raw(col))


def _numbers(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numbers as float64, null as NaN (numpy directly: a compute call per column would cost more
    than the column on a live frame of one second)."""
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _sorted_by(table: pa.Table, column: str) -> pa.Table:
    """``table`` in ascending ``column`` order: as it is when it already is (a live frame's
    one-second tables are, and a sort takes every column)."""
    if table.num_rows < 2:
        return table
    values = table[column].to_numpy()
    return table if bool(np.all(values[1:] >= values[:-1])) else table.sort_by([(column, "ascending")])


def _aligned(ts: np.ndarray, table: pa.Table) -> np.ndarray:
    """Row of ``table`` (sorted by ts_recv) at each of ``ts``, or -1."""
    if table.num_rows == 0:
        return np.full(len(ts), -1, np.int64)
    their = table["ts_recv"].to_numpy().astype(np.int64)
    k = np.searchsorted(their, ts)
    hit = k < len(their)
    hit[hit] = their[k[hit]] == ts[hit]
    return np.where(hit, k, -1)


def _surface(out: np.ndarray, ts: np.ndarray, table: pa.Table, column: str) -> None:
    """The list column ``column`` aligned to ``ts`` into ``out`` (SURFACE_WIDTH rows x seconds)."""
    at = _aligned(ts, table)
    found = at >= 0
    if found.any():
        flat = pc.list_flatten(table[column]).to_numpy(zero_copy_only=False).astype(np.float64)
        block = flat.reshape(table.num_rows, SURFACE_WIDTH)
        out[:, found] = block[at[found]].T


def _by_episode(table: pa.Table) -> dict[str, int]:
    """Row index of each episode's first row (scores: ok rows first, then by model id)."""
    if table.num_rows == 0:
        return {}
    ids = table["episode_id"].to_pylist()
    order = list(range(len(ids)))
    if "status" in table.column_names:
        status, model = table["status"].to_pylist(), table["model_id"].to_pylist()
        order = sorted(order, key=lambda i: (status[i] != "ok", model[i] or "", i))
    first: dict[str, int] = {}
    for i in order:
        first.setdefault(ids[i], i)
    return first


_FLOATS: Final = tuple(f.name for f in FRAME_SCHEMA if f.type == pa.float64())
_ROW: Final = {name: j for j, name in enumerate(_FLOATS)}
"""Each float64 column's row in a frame's block (``_Block``)."""
_RUNS: Final = (*([f"{side}_{kind}_{i}" for i in range(LADDER)]
                  for side in ("bid", "ask") for kind in ("px", "sz", "ct")),
                [f"wall_{j:02d}" for j in range(SURFACE_WIDTH)], [f"vacuum_{j:02d}" for j in range(SURFACE_WIDTH)],
                list(NORM_NAMES), [f"gex_strike_{k:02d}" for k in range(GEX_STRIKES)],
                [f"gex_bn_{k:02d}" for k in range(GEX_STRIKES)])
"""Columns the frame fills as consecutive rows of its block (``_Block.rows``): each run in order."""
assert all([_ROW[c] for c in run] == list(range(_ROW[run[0]], _ROW[run[0]] + len(run))) for run in _RUNS), \
    "a run of columns _Block.rows fills is not consecutive in FRAME_SCHEMA"
_LADDER_PX: Final = tuple(f"{side}_px_{i:02d}" for side in ("bid", "ask") for i in range(LADDER))
_LADDER_NUMBERS: Final = tuple(f"{side}_{k}_{i:02d}" for side in ("bid", "ask") for k in ("sz", "ct")
                               for i in range(LADDER))


class _Block:
    """A frame's float64 columns as the rows of one (columns x seconds) array, NaN-filled, then
    handed to Arrow as slices of one buffer: a one-second live frame has about 220 such columns,
    and an Arrow array built per column from numpy cost more than the values themselves."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.values = np.full((len(_FLOATS), n), np.nan)

    def __setitem__(self, name: str, values: np.ndarray | float) -> None:
        self.values[_ROW[name]] = values

    def rows(self, first: str, count: int) -> np.ndarray:
        """The block's rows of ``count`` consecutive columns from ``first`` (a view to fill)."""
        j = _ROW[first]
        return self.values[j:j + count]

    def arrays(self) -> dict[str, pa.Array]:
        buffer = pa.py_buffer(self.values)
        return {name: pa.Array.from_buffers(pa.float64(), self.n, [None, buffer], null_count=0, offset=j * self.n)
                for name, j in _ROW.items()}


def frames(rows: SessionRows, instrument_id: int) -> pa.Table:
    """Every second of ``rows.book`` as a frame (``FRAME_SCHEMA``), in time order."""
    book = _sorted_by(rows.book, "ts_recv")
    n = book.num_rows
    ts = book["ts_recv"].to_numpy().astype(np.int64) if n else np.zeros(0, np.int64)
    block = _Block(n)
    block["instrument_id"] = float(instrument_id)
    block["t_ms"] = _ms(ts)
    block["tick"] = rows.tick / PRICE_SCALE
    if n:
        px = _prices(np.stack([_raw(book[c]) for c in _LADDER_PX]))  # bid 0-9, ask 0-9
        numbers = np.stack([_numbers(book[c]) for c in _LADDER_NUMBERS])  # per side: sizes 0-9, counts 0-9
        for s, side in enumerate(("bid", "ask")):
            block.rows(f"{side}_px_0", LADDER)[:] = px[s * LADDER:(s + 1) * LADDER]
            block.rows(f"{side}_sz_0", LADDER)[:] = numbers[2 * s * LADDER:(2 * s + 1) * LADDER]
            block.rows(f"{side}_ct_0", LADDER)[:] = numbers[(2 * s + 1) * LADDER:(2 * s + 2) * LADDER]
        for name, source in (("best_bid", "best_bid_px"), ("best_ask", "best_ask_px"),
                             ("last_trade_px", "last_trade_px")):
            block[name] = _price(book[source])
        block["mid"] = _numbers(book["mid_px"])
        for name in ("last_trade_sz", "volume"):
            block[name] = _numbers(book[name])
    wall, vacuum = _sorted_by(rows.wall, "ts_recv"), _sorted_by(rows.vacuum, "ts_recv")
    at = _aligned(ts, wall)
    spot = block.rows("spot", 1)[0]
    if (at >= 0).any():
        spot[at >= 0] = _price(wall["spot_px"])[at[at >= 0]]
    _surface(block.rows("wall_00", SURFACE_WIDTH), ts, wall, "depth")
    _surface(block.rows("vacuum_00", SURFACE_WIDTH), ts, vacuum, "depletion")
    bands = _sorted_by(rows.bands, "ts_recv")
    at = _aligned(ts, bands)
    found = at >= 0
    if found.any():
        values = np.stack([_numbers(bands[name]) for name in NORM_NAMES])
        block.rows(NORM_NAMES[0], len(NORM_NAMES))[:, found] = values[:, at[found]]
    _gex_columns(block, rows, ts, spot)
    _level_columns(block, rows.levels, ts)
    cols: dict[str, pa.Array] = {
        "contract": pa.array([rows.contract] * n, pa.string()),
        "session_date": pa.array([rows.session_date] * n, pa.string()),
        "book_valid": pc.cast(book["book_valid"], pa.int32()).combine_chunks() if n else pa.array([], pa.int32()),
        **_episode_columns(block, rows, ts),
    }
    cols |= block.arrays()
    return pa.Table.from_arrays([cols[name] for name in FRAME_SCHEMA.names], schema=FRAME_SCHEMA)


def _as_of(ts: np.ndarray, their: np.ndarray) -> np.ndarray:
    """Index of the last of ``their`` (ascending) at or before each of ``ts`` (-1: none)."""
    return np.searchsorted(their, ts, side="right") - 1


def _gex_columns(block: _Block, rows: SessionRows, ts: np.ndarray, spot: np.ndarray) -> None:
    """The chain's summary and its GEX by strike as of each second (a chain writes a second's
    rows only when an input changed, so the latest at or before it is what held then): the
    ``GEX_STRIKES`` strikes nearest spot, in $bn per 1 % move."""
    summary = _sorted_by(rows.gex_summary, "ts_recv")
    if summary.num_rows:
        at = _as_of(ts, summary["ts_recv"].to_numpy().astype(np.int64))
        seen = at >= 0
        for name, column, scale in (("gex_net_bn", "net_gex", 1e9), ("gex_zero", "zero_gamma", 1.0),
                                    ("gex_call_wall", "call_wall", 1.0), ("gex_put_wall", "put_wall", 1.0)):
            block.rows(name, 1)[0, seen] = _numbers(summary[column])[at[seen]] / scale
    strikes = rows.gex_strikes
    if strikes.num_rows == 0:
        return
    seconds, second_of = np.unique(strikes["ts_recv"].to_numpy().astype(np.int64), return_inverse=True)
    listed, strike_of = np.unique(_numbers(strikes["strike"]), return_inverse=True)
    grid = np.full((len(seconds), len(listed)), np.nan)  # second × strike, NaN: not listed then
    grid[second_of.ravel(), strike_of.ravel()] = _numbers(strikes["net_gex"]) / 1e9
    at = _as_of(ts, seconds)
    seen = (at >= 0) & np.isfinite(spot)
    width = min(GEX_STRIKES, len(listed))
    centre = np.searchsorted(listed, spot[seen])
    first = np.clip(centre - GEX_STRIKES // 2, 0, len(listed) - width)
    strike_rows, bn_rows = block.rows("gex_strike_00", GEX_STRIKES), block.rows("gex_bn_00", GEX_STRIKES)
    for k in range(width):
        strike_rows[k, seen] = listed[first + k]
        bn_rows[k, seen] = grid[at[seen], first + k]


def _level_columns(block: _Block, levels: pa.Table, ts: np.ndarray) -> None:
    """Each level's price from the second it is known (NaN before, and when it is missing)."""
    known = {r["level_type"]: r for r in levels.to_pylist() if r.get("status") == "ok" and r.get("price") is not None}
    for level in LEVEL_TYPES:
        row = known.get(level)
        if row is not None:
            since = ts >= int(row["known_ts"])
            block.rows(f"level_{level}", 1)[0, since] = int(row["price"]) / PRICE_SCALE
            block.rows(f"level_{level}_known_ms", 1)[0, since] = int(row["known_ts"]) / 1e6


def _episode_columns(block: _Block, rows: SessionRows, ts: np.ndarray) -> Mapping[str, pa.Array]:
    """The newest episode started at or before each second (the greatest start, then episode id),
    what was known of it then (its score from ``vector_time``, its label from ``resolved_ts``), and
    how many episodes were open: the numbers into ``block``, the counts and text returned."""
    approaches = rows.approaches  # by start, then id: the same order whatever order the rows arrived in
    approaches = approaches.sort_by([("start_ts", "ascending"), ("episode_id", "ascending")]) if approaches.num_rows \
        else approaches
    ids = approaches["episode_id"].to_pylist() if approaches.num_rows else []
    starts = approaches["start_ts"].to_numpy().astype(np.int64) if ids else np.zeros(0, np.int64)
    score_at, label_at = _by_episode(rows.scores), _by_episode(rows.labels)
    s_rows = np.array([score_at.get(e, -1) for e in ids], np.int64)
    l_rows = np.array([label_at.get(e, -1) for e in ids], np.int64)
    scored = _pick_times(rows.scores, s_rows, "vector_time")
    resolved = _pick_times(rows.labels, l_rows, "resolved_ts")
    newest = np.searchsorted(starts, ts, side="right") - 1
    has = newest >= 0
    k = newest[has]
    knows_score, knows_label = has.copy(), has.copy()
    knows_score[has] = scored[k] <= ts[has]
    knows_label[has] = resolved[k] <= ts[has]
    opened = np.searchsorted(starts, ts, side="right") - np.searchsorted(np.sort(resolved), ts, side="right")

    def each(name: str, values: np.ndarray, mask: np.ndarray) -> None:
        """Per second: the newest episode's value where ``mask`` (NaN elsewhere)."""
        block.rows(name, 1)[0, mask] = values[newest[mask]]

    def text(values: list[object], mask: np.ndarray) -> pa.Array:
        arr = np.array([("" if v is None else v) for v in values] + [""], dtype=object)[:-1]
        out = np.full(len(ts), "", dtype=object)
        out[mask] = arr[newest[mask]]
        return pa.array(out, pa.string())

    nn_count = np.zeros(len(ts), np.float64)
    nn_count[knows_score] = _pick(rows.scores, s_rows, "nn_count", 0.0)[newest[knows_score]]
    out: dict[str, pa.Array] = {
        "episodes_open": pa.array(opened.astype(np.int32), pa.int32()),
        "nn_count": pa.array(nn_count.astype(np.int32), pa.int32()),
        "ep_episode_id": text(ids, has),
        "ep_level_type": text(approaches["level_type"].to_pylist() if ids else [], has),
        "ep_direction": text(approaches["direction"].to_pylist() if ids else [], has),
        "ep_outcome": text(_pick_text(rows.labels, l_rows, "outcome"), knows_label),
        "ep_score_status": text(_pick_text(rows.scores, s_rows, "status"), knows_score),
    }
    each("ep_start_ms", starts / 1e6, has)
    each("ep_level_price", _price(approaches["level_price"]) if ids else np.zeros(0), has)
    each("ep_resolved_ms", resolved / 1e6, knows_label)
    for name in ("p_break", "p_reject", "p_chop", "nn_break", "nn_reject", "nn_chop"):
        each(f"ep_{name}", _pick(rows.scores, s_rows, name, np.nan), knows_score)
    return out


def _pick(table: pa.Table, at: np.ndarray, column: str, missing: float) -> np.ndarray:
    """``table[column]`` at each row index of ``at`` as float64 (-1 or null: ``missing``)."""
    out = np.full(len(at), missing, np.float64)
    if table.num_rows and len(at):
        column_ = table[column]
        values = np.asarray(column_.to_numpy(zero_copy_only=False), np.float64)  # nulls come as NaN ...
        if column_.null_count:
            values = np.where(np.asarray(column_.is_null().to_numpy(zero_copy_only=False), bool), missing, values)
        out[at >= 0] = values[at[at >= 0]]  # ... and are ``missing``
    return out


def _pick_times(table: pa.Table, at: np.ndarray, column: str) -> np.ndarray:
    """int64 ns ``table[column]`` at each row index of ``at`` (-1 or null: never)."""
    never = np.iinfo(np.int64).max
    out = np.full(len(at), never, np.int64)
    if table.num_rows and len(at):
        values = pc.fill_null(table[column], never).to_numpy(zero_copy_only=False).astype(np.int64)
        out[at >= 0] = values[at[at >= 0]]
    return out


def _pick_text(table: pa.Table, at: np.ndarray, column: str) -> list[object]:
    values = table[column].to_pylist() if table.num_rows else []
    return [values[i] if i >= 0 else "" for i in at.tolist()]


def ipc_message(frames_table: pa.Table, kind: str) -> bytes:
    """One self-contained Arrow IPC stream (schema + one record batch): one WebSocket message.

    ``kind`` (``snapshot`` or ``frame``) goes into the schema metadata beside the version.
    """
    schema = FRAME_SCHEMA.with_metadata({"version": HUD_VERSION, "kind": kind})
    typed = (frames_table.replace_schema_metadata(schema.metadata) if frames_table.schema.equals(FRAME_SCHEMA)
             else frames_table.cast(schema))  # frames() builds FRAME_SCHEMA's types: no cast per column then
    batch = typed.combine_chunks().to_batches(max_chunksize=None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch[0] if batch else pa.RecordBatch.from_pylist([], schema=schema))
    return sink.getvalue().to_pybytes()
