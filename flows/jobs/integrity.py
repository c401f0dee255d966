"""Integrity checks over the lake: each returns a named result with a readable detail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    BRONZE_CMBP_1,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    SILVER_BAR_5S,
    SILVER_BOOK_1S,
    SILVER_BOOK_ANOMALIES,
    SILVER_LEVEL_APPROACH,
    SILVER_PHYSICS_BANDS_1S,
)
from operators.records import BOOK_DEPTH

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_lake(lake: Lake) -> list[CheckResult]:
    if lake.open(BRONZE_MBO) is None:
        msg = f"no bronze.mbo table under {lake.root}; run `spymaster replay` first"
        return [CheckResult("lake exists", False, msg)]
    book_key = ["instrument_id", "session_date", "ts_recv"]
    book = lake.read(SILVER_BOOK_1S, [*book_key, "book_valid", "best_bid_px", "best_ask_px"])
    source_key = ["source", "source_offset"]
    return [
        valid_books_uncrossed(book),
        unique_keys("silver.book_snapshot_1s key (instrument, session, ts_recv)", book, book_key),
        snapshots_monotonic(book),
        unique_keys("bronze.mbo key (source, source_offset)", lake.read(BRONZE_MBO, source_key), source_key),
        unique_keys("bronze.mbo_dlq key (source, source_offset)", lake.read(BRONZE_MBO_DLQ, source_key), source_key),
        unique_keys("gold.inference_scores key (episode_id, model_id): one score per episode",
                    lake.read(GOLD_INFERENCE_SCORES, ["episode_id", "model_id"]), ["episode_id", "model_id"]),
        manifest_consistent(lake),
        bars_consistent_with_trades(lake),
        bands_within_unit_interval(lake),
        episodes_after_their_levels(lake),
        labels_consistent_with_prices(lake),
    ]


def valid_books_uncrossed(book: pa.Table) -> CheckResult:
    valid = book.filter(book["book_valid"])
    both = valid.filter(pc.and_(pc.less(valid["best_bid_px"], 2**63 - 1), pc.less(valid["best_ask_px"], 2**63 - 1)))
    crossed = both.filter(pc.greater_equal(both["best_bid_px"], both["best_ask_px"]))
    detail = f"{valid.num_rows:,} valid snapshots, {crossed.num_rows} crossed or locked"
    if crossed.num_rows:
        first = crossed.slice(0, 1).to_pylist()[0]
        detail += f"; first: instrument {first['instrument_id']} at ts_recv {first['ts_recv']}"
    return CheckResult("valid books uncrossed", crossed.num_rows == 0, detail)


def unique_keys(name: str, table: pa.Table, keys: list[str]) -> CheckResult:
    if table.num_rows == 0:
        return CheckResult(name, True, "no rows")
    counts = table.group_by(keys).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts["count_all"], 1))
    return CheckResult(name, dupes.num_rows == 0, f"{table.num_rows:,} rows, {dupes.num_rows} duplicated keys")


def snapshots_monotonic(book: pa.Table) -> CheckResult:
    """Per (instrument, session) the 1-second rows step by exactly one second."""
    if book.num_rows == 0:
        return CheckResult("1-second snapshots monotonic and gap-free", True, "no rows")
    order = pc.sort_indices(book, [(c, "ascending") for c in ("instrument_id", "session_date", "ts_recv")])
    b = book.take(order)
    iid = b["instrument_id"].to_numpy()
    day = b["session_date"].cast(pa.int32()).to_numpy()
    ts = b["ts_recv"].to_numpy()
    same = (iid[1:] == iid[:-1]) & (day[1:] == day[:-1])
    steps = np.diff(ts)[same]
    bad = int((steps != NS_PER_SECOND).sum())
    groups = int((~same).sum()) + 1
    return CheckResult("1-second snapshots monotonic and gap-free", bad == 0,
                       f"{b.num_rows:,} rows in {groups} books, {bad} steps not equal to 1 s")


def manifest_consistent(lake: Lake) -> CheckResult:
    """Every source read to its end: each position it read (a record or a damaged stretch) is one
    Bronze row (``bronze.mbo``, definitions, statistics) or one dead letter, and no more."""
    if lake.open(BRONZE_MANIFEST) is None:
        return CheckResult("manifest consistent", True, "no complete files")
    manifest = lake.read(BRONZE_MANIFEST).filter(pc.equal(pc.field("status"), "complete"))
    if manifest.num_rows == 0:
        return CheckResult("manifest consistent", True, "no complete files")
    landed: dict[str, int] = {}
    for spec in (BRONZE_MBO, BRONZE_DEFINITIONS, BRONZE_STATISTICS, BRONZE_CMBP_1, BRONZE_MBO_DLQ):
        for r in lake.read(spec, ["source"]).group_by("source").aggregate([([], "count_all")]).to_pylist():
            landed[r["source"]] = landed.get(r["source"], 0) + r["count_all"]
    latest: dict[str, dict] = {}
    for r in manifest.to_pylist():
        if r["schema"] == BRONZE_MBO.name:  # a replay from Bronze: its records are its sources' rows
            continue
        if r["source"] not in latest or r["generation"] > latest[r["source"]]["generation"]:
            latest[r["source"]] = r
    problems = [f"{source}: manifest {r['records']:,} records and {r['faults']:,} damaged stretches, lake "
                f"{landed.get(source, 0):,} rows and dead letters"
                for source, r in sorted(latest.items()) if landed.get(source, 0) != r["records"] + r["faults"]]
    detail = f"{len(latest)} sources" + ("" if not problems else "; " + "; ".join(problems[:5]))
    return CheckResult("manifest consistent", not problems, detail)


def bars_consistent_with_trades(lake: Lake) -> CheckResult:
    """Every 5-second bar: volume = the sizes of the Bronze trades in it; high >= open, close >= low.

    A trade is in the bar of its book's clock: a book never goes back in time, so a record whose
    ``ts_recv`` is earlier than one its book already saw (a damaged timestamp) counts in the
    second it arrived in, as the book counts it.
    """
    name = "bars consistent with trades"
    bars = lake.read(SILVER_BAR_5S, ["instrument_id", "session_date", "ts", "volume", "trade_open_px",
                                     "trade_high_px", "trade_low_px", "trade_close_px"])
    if bars.num_rows == 0:
        return CheckResult(name, True, "no bars")
    bars = _of_sessions_in_bronze(lake, bars)  # a Bronze replay's target lake holds no trades to check
    if bars.num_rows == 0:
        return CheckResult(name, True, "no bars of a session with Bronze rows in this lake")
    late = {(r["instrument_id"], r["session_date"]) for r in lake.read(SILVER_BOOK_ANOMALIES).to_pylist()
            if r["anomaly"] == "late_record"}
    if late:  # a live session with records that came after it closed: its bars cannot hold them
        bars = bars.filter(pa.array([(i, d) not in late for i, d in zip(
            bars["instrument_id"].to_pylist(), bars["session_date"].to_pylist(), strict=True)]))
    trades = _trades_on_book_clock(lake)
    ts = trades["ts_recv"].to_numpy()
    bar_end = (ts // (5 * NS_PER_SECOND) + 1) * 5 * NS_PER_SECOND  # bar T holds the events of [T-5s, T)
    summed = pa.table({"instrument_id": trades["instrument_id"], "ts": pa.array(bar_end), "size": trades["size"]}) \
        .group_by(["instrument_id", "ts"]).aggregate([("size", "sum")])
    expected = {(r["instrument_id"], r["ts"]): r["size_sum"] for r in summed.to_pylist()}
    rows = bars.to_pylist()
    wrong_volume = [r for r in rows if expected.get((r["instrument_id"], r["ts"]), 0) != r["volume"]]
    undef = 2**63 - 1
    bad_range = [r for r in rows if r["trade_high_px"] != undef and not (
        r["trade_high_px"] >= max(r["trade_open_px"], r["trade_close_px"])
        and min(r["trade_open_px"], r["trade_close_px"]) >= r["trade_low_px"])]
    ok = not wrong_volume and not bad_range
    skipped = f"; sessions with late records not compared: {len(late)}" if late else ""
    return CheckResult(name, ok, f"{len(rows):,} bars, {len(wrong_volume)} with volume != Σ trade sizes, "
                                 f"{len(bad_range)} with H < max(O,C) or L > min(O,C){skipped}")


def _of_sessions_in_bronze(lake: Lake, rows: pa.Table) -> pa.Table:
    """``rows`` of the (instrument, session) pairs that have rows in this lake's ``bronze.mbo``."""
    held = lake.read(BRONZE_MBO, ["instrument_id", "session_date"]).group_by(["instrument_id", "session_date"]) \
        .aggregate([])
    return rows.join(held, ["instrument_id", "session_date"], join_type="inner")


def _trades_on_book_clock(lake: Lake) -> pa.Table:
    """Bronze trades with ``ts_recv`` replaced by the running maximum over their book's records
    (one source, instrument and session) in source order."""
    rows = lake.read(BRONZE_MBO, ["source", "source_offset", "instrument_id", "session_date", "ts_recv", "action",
                                  "size", "flags"])
    source = rows["source"].combine_chunks().dictionary_encode().indices.to_numpy()
    iid, day = rows["instrument_id"].to_numpy(), rows["session_date"].cast(pa.int32()).to_numpy()
    order = np.lexsort((rows["source_offset"].to_numpy(), day, iid, source))
    ts = rows["ts_recv"].to_numpy()[order]
    book = np.r_[True, (source[order][1:] != source[order][:-1]) | (iid[order][1:] != iid[order][:-1])
                 | (day[order][1:] != day[order][:-1])] if len(order) else np.zeros(0, bool)
    starts = np.flatnonzero(book)
    for a, b in zip(starts, np.r_[starts[1:], len(ts)], strict=True):
        np.maximum.accumulate(ts[a:b], out=ts[a:b])
    clocked = rows.take(pa.array(order)).set_column(rows.schema.get_field_index("ts_recv"), "ts_recv", pa.array(ts))
    return clocked.filter(pc.and_(pc.equal(clocked["action"], "T"), pc.equal(pc.bit_wise_and(clocked["flags"], 32), 0)))


def bands_within_unit_interval(lake: Lake) -> CheckResult:
    name = "physics bands within 0..1"
    bands = lake.read(SILVER_PHYSICS_BANDS_1S)
    norm = [c for c in bands.column_names if c.endswith("_norm")]
    if bands.num_rows == 0:
        return CheckResult(name, True, "no bands")
    outside = 0
    for c in norm:
        v = bands[c].to_numpy(zero_copy_only=False)
        v = v[np.isfinite(v)]
        outside += int(((v < 0) | (v > 1)).sum())
    return CheckResult(name, outside == 0,
                       f"{bands.num_rows:,} rows x {len(norm)} bands, {outside} values outside 0..1")


def episodes_after_their_levels(lake: Lake) -> CheckResult:
    name = "no episode before its level is known"
    episodes = lake.read(SILVER_LEVEL_APPROACH, ["start_ts", "level_known_ts"])
    early = 0
    if episodes.num_rows:
        early = int(pc.sum(pc.less(episodes["start_ts"], episodes["level_known_ts"])).as_py() or 0)
    return CheckResult(name, early == 0, f"{episodes.num_rows:,} episodes, {early} before their level was known")


def reference_labels(lake: Lake) -> dict[str, dict]:
    """Every episode's label recomputed by the brute-force reference from the 1-second mid.

    Independent of the streaming labeler: it reads only ``silver.level_approach`` and
    ``silver.book_snapshot_1s`` (thresholds from the labels table; the tick from the instrument's
    definition, else from the session's first second, as the flow's book step fixes it).
    """
    from operators.instruments import tick_of_prices
    from operators.labels import LABEL_EPISODE_DTYPE, OUTCOMES, LabelParams, label_reference

    episodes = lake.read(SILVER_LEVEL_APPROACH).to_pylist()
    stored = lake.read(GOLD_LABELS, ["episode_id", "break_ticks", "reject_ticks", "horizon_seconds"]).to_pylist()
    thresholds = {r["episode_id"]: (r["break_ticks"], r["reject_ticks"], r["horizon_seconds"]) for r in stored}
    levels = [f"{side}_px_{i:02d}" for side in ("bid", "ask") for i in range(BOOK_DEPTH)]
    book = lake.read(SILVER_BOOK_1S, ["instrument_id", "session_date", "ts_recv", "mid_px", *levels])
    defined = {r["instrument_id"]: r["tick_size"] for r in lake.read(BRONZE_DEFINITIONS, ["instrument_id", "tick_size"])
               .to_pylist() if r["tick_size"]}
    out: dict[str, dict] = {}
    for iid, day in sorted({(e["instrument_id"], e["session_date"]) for e in episodes}):
        mine = sorted((e for e in episodes if (e["instrument_id"], e["session_date"]) == (iid, day)),
                      key=lambda e: (e["start_ts"], e["episode_id"]))
        rows = book.filter(pc.and_(pc.equal(book["instrument_id"], iid), pc.equal(book["session_date"], day)))
        rows = rows.sort_by("ts_recv")
        eps = np.zeros(len(mine), LABEL_EPISODE_DTYPE)
        eps["key"] = np.arange(len(mine))
        eps["start_ts"] = [e["start_ts"] for e in mine]
        eps["level_price"] = [e["level_price"] for e in mine]
        eps["direction"] = [1 if e["direction"] == "UP" else -1 for e in mine]
        eps["start_mid"] = [e["start_mid"] for e in mine]
        found = [thresholds[e["episode_id"]] for e in mine if e["episode_id"] in thresholds]
        first = [v for c in levels if (v := rows[c][0].as_py()) is not None] if rows.num_rows else []
        tick = defined.get(iid) or tick_of_prices(np.array(first, np.int64)) or 1
        params = LabelParams(**dict(zip(("break_ticks", "reject_ticks", "horizon_seconds"), found[0], strict=True)),
                             tick=tick) if found else LabelParams(tick=tick)
        for ref in label_reference(rows["ts_recv"].to_numpy(), rows["mid_px"].to_numpy(), eps, params):
            out[mine[int(ref["key"])]["episode_id"]] = {
                "outcome": OUTCOMES[int(ref["outcome"])], "resolved_ts": int(ref["resolved_ts"]),
                "mfe_ticks": float(ref["mfe_ticks"]), "mae_ticks": float(ref["mae_ticks"]),
                "truncated": bool(ref["truncated"]),
            }
    return out


def labels_consistent_with_prices(lake: Lake) -> CheckResult:
    """Every episode has one label, equal to the brute-force recomputation from the 1-second mid."""
    name = "labels consistent with the price path"
    expected = reference_labels(lake)
    labels = {r["episode_id"]: r for r in lake.read(GOLD_LABELS).to_pylist()}
    if not expected and not labels:
        return CheckResult(name, True, "no labels")
    fields = ("outcome", "resolved_ts", "truncated")
    wrong = sum(1 for e, ref in expected.items()
                if e not in labels or any(labels[e][f] != ref[f] for f in fields)
                or not np.isclose(labels[e]["mfe_ticks"], ref["mfe_ticks"])
                or not np.isclose(labels[e]["mae_ticks"], ref["mae_ticks"]))
    extra = len(labels.keys() - expected.keys())
    return CheckResult(name, wrong == 0 and extra == 0,
                       f"{len(expected):,} episodes, {wrong} labels inconsistent or missing, "
                       f"{extra} without an episode")
