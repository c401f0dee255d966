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


def _ms(ns: np.ndarray) -> np.ndarray:
    return ns.astype(np.float64) / 1e6


def _price(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 1e-9 prices (null or UNDEF_PRICE: NaN) as float64 price units."""
    if col.null_count:
        col = pc.fill_null(col, UNDEF_PRICE)
    raw = col.to_numpy().astype(np.int64, copy=False)
    out = raw.astype(np.float64) / PRICE_SCALE
    out[raw == UNDEF_PRICE] = np.nan
    return out


def _numbers(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numbers as float64, null as NaN (numpy directly: a compute call per column would cost more
    than the column on a live frame of one second)."""
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _sorted_by(table: pa.Table, column: str) -> pa.Table:
    return table.sort_by([(column, "ascending")]) if table.num_rows else table


def _aligned(ts: np.ndarray, table: pa.Table) -> np.ndarray:
    """Row of ``table`` (sorted by ts_recv) at each of ``ts``, or -1."""
    if table.num_rows == 0:
        return np.full(len(ts), -1, np.int64)
    their = table["ts_recv"].to_numpy().astype(np.int64)
    k = np.searchsorted(their, ts)
    hit = k < len(their)
    hit[hit] = their[k[hit]] == ts[hit]
    return np.where(hit, k, -1)


def _surface(ts: np.ndarray, table: pa.Table, column: str) -> np.ndarray:
    """The list column ``column`` as an (n, SURFACE_WIDTH) float64 block aligned to ``ts``."""
    out = np.full((len(ts), SURFACE_WIDTH), np.nan)
    at = _aligned(ts, table)
    found = at >= 0
    if found.any():
        flat = pc.list_flatten(table[column]).to_numpy(zero_copy_only=False).astype(np.float64)
        block = flat.reshape(table.num_rows, SURFACE_WIDTH)
        out[found] = block[at[found]]
    return out


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


def frames(rows: SessionRows, instrument_id: int) -> pa.Table:
    """Every second of ``rows.book`` as a frame (``FRAME_SCHEMA``), in time order."""
    book = _sorted_by(rows.book, "ts_recv")
    n = book.num_rows
    ts = book["ts_recv"].to_numpy().astype(np.int64) if n else np.zeros(0, np.int64)
    cols: dict[str, object] = {
        "contract": pa.array([rows.contract] * n, pa.string()),
        "instrument_id": np.full(n, float(instrument_id)),
        "session_date": pa.array([rows.session_date] * n, pa.string()),
        "t_ms": _ms(ts),
        "book_valid": pc.cast(book["book_valid"], pa.int32()) if n else pa.array([], pa.int32()),
    }
    for side in ("bid", "ask"):
        for i in range(LADDER):
            cols[f"{side}_px_{i}"] = _price(book[f"{side}_px_{i:02d}"]) if n else np.zeros(0)
            size, count = (_numbers(book[f"{side}_{k}_{i:02d}"]) if n else np.zeros(0) for k in ("sz", "ct"))
            cols[f"{side}_sz_{i}"], cols[f"{side}_ct_{i}"] = size, count
    for name, source in (("best_bid", "best_bid_px"), ("best_ask", "best_ask_px"), ("last_trade_px", "last_trade_px")):
        cols[name] = _price(book[source]) if n else np.zeros(0)
    cols["mid"] = _numbers(book["mid_px"]) if n else np.zeros(0)
    for name in ("last_trade_sz", "volume"):
        cols[name] = _numbers(book[name]) if n else np.zeros(0)
    cols["tick"] = np.full(n, rows.tick / PRICE_SCALE)
    wall, vacuum = _sorted_by(rows.wall, "ts_recv"), _sorted_by(rows.vacuum, "ts_recv")
    at = _aligned(ts, wall)
    spot = np.full(n, np.nan)
    if (at >= 0).any():
        spot[at >= 0] = _price(wall["spot_px"])[at[at >= 0]]
    cols["spot"] = spot
    for name, block in (("wall", _surface(ts, wall, "depth")), ("vacuum", _surface(ts, vacuum, "depletion"))):
        for j in range(SURFACE_WIDTH):
            cols[f"{name}_{j:02d}"] = block[:, j]
    bands = _sorted_by(rows.bands, "ts_recv")
    at = _aligned(ts, bands)
    for name in NORM_NAMES:
        values = np.full(n, np.nan)
        if (at >= 0).any():
            values[at >= 0] = _numbers(bands[name])[at[at >= 0]]
        cols[name] = values
    cols.update(_gex_columns(rows, ts, spot))
    cols.update(_level_columns(rows.levels, ts))
    cols.update(_episode_columns(rows, ts))
    return pa.table({f.name: cols[f.name] for f in FRAME_SCHEMA}, schema=FRAME_SCHEMA)


def _as_of(ts: np.ndarray, their: np.ndarray) -> np.ndarray:
    """Index of the last of ``their`` (ascending) at or before each of ``ts`` (-1: none)."""
    return np.searchsorted(their, ts, side="right") - 1


def _gex_columns(rows: SessionRows, ts: np.ndarray, spot: np.ndarray) -> Mapping[str, np.ndarray]:
    """The chain's summary and its GEX by strike as of each second (a chain writes a second's
    rows only when an input changed, so the latest at or before it is what held then): the
    ``GEX_STRIKES`` strikes nearest spot, in $bn per 1 % move."""
    n = len(ts)
    out: dict[str, np.ndarray] = {name: np.full(n, np.nan) for name in GEX_NUMBERS}
    for k in range(GEX_STRIKES):
        out[f"gex_strike_{k:02d}"], out[f"gex_bn_{k:02d}"] = np.full(n, np.nan), np.full(n, np.nan)
    summary = _sorted_by(rows.gex_summary, "ts_recv")
    if summary.num_rows:
        at = _as_of(ts, summary["ts_recv"].to_numpy().astype(np.int64))
        seen = at >= 0
        for name, column, scale in (("gex_net_bn", "net_gex", 1e9), ("gex_zero", "zero_gamma", 1.0),
                                    ("gex_call_wall", "call_wall", 1.0), ("gex_put_wall", "put_wall", 1.0)):
            out[name][seen] = _numbers(summary[column])[at[seen]] / scale
    strikes = rows.gex_strikes
    if strikes.num_rows == 0:
        return out
    seconds, second_of = np.unique(strikes["ts_recv"].to_numpy().astype(np.int64), return_inverse=True)
    listed, strike_of = np.unique(_numbers(strikes["strike"]), return_inverse=True)
    grid = np.full((len(seconds), len(listed)), np.nan)  # second × strike, NaN: not listed then
    grid[second_of.ravel(), strike_of.ravel()] = _numbers(strikes["net_gex"]) / 1e9
    at = _as_of(ts, seconds)
    seen = (at >= 0) & np.isfinite(spot)
    width = min(GEX_STRIKES, len(listed))
    centre = np.searchsorted(listed, spot[seen])
    first = np.clip(centre - GEX_STRIKES // 2, 0, len(listed) - width)
    for k in range(width):
        out[f"gex_strike_{k:02d}"][seen] = listed[first + k]
        out[f"gex_bn_{k:02d}"][seen] = grid[at[seen], first + k]
    return out


def _level_columns(levels: pa.Table, ts: np.ndarray) -> Mapping[str, np.ndarray]:
    """Each level's price from the second it is known (NaN before, and when it is missing)."""
    out: dict[str, np.ndarray] = {}
    known = {r["level_type"]: r for r in levels.to_pylist() if r.get("status") == "ok" and r.get("price") is not None}
    for level in LEVEL_TYPES:
        price, known_ms = np.full(len(ts), np.nan), np.full(len(ts), np.nan)
        row = known.get(level)
        if row is not None:
            since = ts >= int(row["known_ts"])
            price[since] = int(row["price"]) / PRICE_SCALE
            known_ms[since] = int(row["known_ts"]) / 1e6
        out[f"level_{level}"], out[f"level_{level}_known_ms"] = price, known_ms
    return out


def _episode_columns(rows: SessionRows, ts: np.ndarray) -> Mapping[str, object]:
    """The newest episode started at or before each second (the greatest start, then episode id),
    what was known of it then (its score from ``vector_time``, its label from ``resolved_ts``), and
    how many episodes were open."""
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

    def each(values: np.ndarray, mask: np.ndarray, fill: object) -> np.ndarray:
        """Per second: the newest episode's value where ``mask``, else ``fill``."""
        out = np.full(len(ts), fill, dtype=object if values.dtype == object else np.float64)
        out[mask] = values[newest[mask]]
        return out

    def text(values: list[object], mask: np.ndarray) -> pa.Array:
        arr = np.array([("" if v is None else v) for v in values] + [""], dtype=object)[:-1]
        return pa.array(each(arr, mask, ""), pa.string())

    out: dict[str, object] = {
        "episodes_open": opened.astype(np.int32),
        "nn_count": each(_pick(rows.scores, s_rows, "nn_count", 0.0), knows_score, 0.0).astype(np.int32),
        "ep_episode_id": text(ids, has),
        "ep_level_type": text(approaches["level_type"].to_pylist() if ids else [], has),
        "ep_direction": text(approaches["direction"].to_pylist() if ids else [], has),
        "ep_outcome": text(_pick_text(rows.labels, l_rows, "outcome"), knows_label),
        "ep_score_status": text(_pick_text(rows.scores, s_rows, "status"), knows_score),
        "ep_start_ms": each(starts / 1e6, has, np.nan),
        "ep_level_price": each(_price(approaches["level_price"]) if ids else np.zeros(0), has, np.nan),
        "ep_resolved_ms": each(resolved / 1e6, knows_label, np.nan),
    }
    for name in ("p_break", "p_reject", "p_chop", "nn_break", "nn_reject", "nn_chop"):
        out[f"ep_{name}"] = each(_pick(rows.scores, s_rows, name, np.nan), knows_score, np.nan)
    return out


def _pick(table: pa.Table, at: np.ndarray, column: str, missing: float) -> np.ndarray:
    """``table[column]`` at each row index of ``at`` as float64 (-1 or null: ``missing``)."""
    out = np.full(len(at), missing, np.float64)
    if table.num_rows and len(at):
        values = pc.fill_null(pc.cast(table[column], pa.float64()), missing).to_numpy(zero_copy_only=False)
        out[at >= 0] = values[at[at >= 0]]
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
    batch = frames_table.cast(schema).combine_chunks().to_batches(max_chunksize=None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch[0] if batch else pa.RecordBatch.from_pylist([], schema=schema))
    return sink.getvalue().to_pybytes()
