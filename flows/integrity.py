"""Integrity checks over the lake: each returns a named result with a readable detail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    GOLD_LABELS,
    SILVER_BAR_5S,
    SILVER_BOOK_1S,
    SILVER_LEVEL_APPROACH,
    SILVER_PHYSICS_BANDS_1S,
)

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_lake(lake: Lake) -> list[CheckResult]:
    if lake.open(BRONZE_MBO) is None:
        return [CheckResult("lake exists", False, f"no bronze.mbo table under {lake.root}; run `spymaster replay` first")]
    book = lake.read(SILVER_BOOK_1S, ["instrument_id", "session_date", "ts_recv", "book_valid", "best_bid_px", "best_ask_px"])
    return [
        valid_books_uncrossed(book),
        unique_keys("silver.book_snapshot_1s key (instrument, session, ts_recv)", book, ["instrument_id", "session_date", "ts_recv"]),
        snapshots_monotonic(book),
        unique_keys("bronze.mbo key (source, source_offset)", lake.read(BRONZE_MBO, ["source", "source_offset"]), ["source", "source_offset"]),
        unique_keys("bronze.mbo_dlq key (source, source_offset)", lake.read(BRONZE_MBO_DLQ, ["source", "source_offset"]), ["source", "source_offset"]),
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
    order = pc.sort_indices(book, [("instrument_id", "ascending"), ("session_date", "ascending"), ("ts_recv", "ascending")])
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
    """Every complete file: its records = its Bronze rows + its record-level dead letters."""
    manifest = lake.read(BRONZE_MANIFEST).filter(pc.equal(pc.field("status"), "complete")) if lake.open(BRONZE_MANIFEST) else None
    if manifest is None or manifest.num_rows == 0:
        return CheckResult("manifest consistent", True, "no complete files")
    mbo = lake.read(BRONZE_MBO, ["source"]).group_by("source").aggregate([([], "count_all")]).to_pylist()
    dlq = lake.read(BRONZE_MBO_DLQ, ["source", "source_offset"])
    rows = {r["source"]: r["count_all"] for r in mbo}
    problems = []
    latest: dict[str, dict] = {}
    for r in manifest.to_pylist():
        if r["source"] not in latest or r["generation"] > latest[r["source"]]["generation"]:
            latest[r["source"]] = r
    for source, r in sorted(latest.items()):
        if r["schema"] != "mbo":
            continue
        mine = dlq.filter(pc.equal(dlq["source"], source))
        in_range = int(pc.sum(pc.less(mine["source_offset"], r["records"])).as_py() or 0)
        total = rows.get(source, 0) + in_range
        if total != r["records"]:
            problems.append(f"{source}: manifest {r['records']:,} records, lake {rows.get(source, 0):,} rows + {in_range:,} dead letters")
    detail = f"{len(latest)} files" + ("" if not problems else "; " + "; ".join(problems[:5]))
    return CheckResult("manifest consistent", not problems, detail)


def bars_consistent_with_trades(lake: Lake) -> CheckResult:
    """Every 5-second bar: volume = the sizes of the Bronze trades in it; high >= open, close >= low."""
    name = "bars consistent with trades"
    bars = lake.read(SILVER_BAR_5S, ["instrument_id", "session_date", "ts", "volume", "trade_open_px",
                                     "trade_high_px", "trade_low_px", "trade_close_px"])
    if bars.num_rows == 0:
        return CheckResult(name, True, "no bars")
    trades = lake.read(BRONZE_MBO, ["instrument_id", "ts_recv", "action", "size", "flags"])
    trades = trades.filter(pc.and_(pc.equal(trades["action"], "T"), pc.equal(pc.bit_wise_and(trades["flags"], 32), 0)))
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
    return CheckResult(name, ok, f"{len(rows):,} bars, {len(wrong_volume)} with volume != Σ trade sizes, "
                                 f"{len(bad_range)} with H < max(O,C) or L > min(O,C)")


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
    return CheckResult(name, outside == 0, f"{bands.num_rows:,} rows x {len(norm)} bands, {outside} values outside 0..1")


def episodes_after_their_levels(lake: Lake) -> CheckResult:
    name = "no episode before its level is known"
    episodes = lake.read(SILVER_LEVEL_APPROACH, ["start_ts", "level_known_ts"])
    early = int(pc.sum(pc.less(episodes["start_ts"], episodes["level_known_ts"])).as_py() or 0) if episodes.num_rows else 0
    return CheckResult(name, early == 0, f"{episodes.num_rows:,} episodes, {early} before their level was known")


def labels_consistent_with_prices(lake: Lake) -> CheckResult:
    """Every label equals the first-crossing outcome recomputed from the 1-second mid (reference code)."""
    from operators.labels import LABEL_EPISODE_DTYPE, OUTCOMES, LabelParams, label_reference

    name = "labels consistent with the price path"
    labels = lake.read(GOLD_LABELS).to_pylist()
    if not labels:
        return CheckResult(name, True, "no labels")
    episodes = {e["episode_id"]: e for e in lake.read(SILVER_LEVEL_APPROACH).to_pylist()}
    book = lake.read(SILVER_BOOK_1S, ["instrument_id", "session_date", "ts_recv", "mid_px"])
    wrong = 0
    sessions = sorted({(r["instrument_id"], r["session_date"]) for r in labels})
    for iid, day in sessions:
        mine = [r for r in labels if (r["instrument_id"], r["session_date"]) == (iid, day)]
        rows = book.filter(pc.and_(pc.equal(book["instrument_id"], iid), pc.equal(book["session_date"], day)))
        rows = rows.sort_by("ts_recv")
        eps = np.zeros(len(mine), LABEL_EPISODE_DTYPE)
        eps["key"] = np.arange(len(mine))
        eps["start_ts"] = [r["start_ts"] for r in mine]
        eps["level_price"] = [r["level_price"] for r in mine]
        eps["direction"] = [1 if r["direction"] == "UP" else -1 for r in mine]
        eps["start_mid"] = [episodes[r["episode_id"]]["start_mid"] for r in mine]
        order = np.argsort(eps["start_ts"], kind="stable")
        params = LabelParams(break_ticks=mine[0]["break_ticks"], reject_ticks=mine[0]["reject_ticks"],
                             horizon_seconds=mine[0]["horizon_seconds"])
        for ref in label_reference(rows["ts_recv"].to_numpy(), rows["mid_px"].to_numpy(), eps[order], params):
            got = mine[int(ref["key"])]
            if got["outcome"] != OUTCOMES[int(ref["outcome"])] or got["resolved_ts"] != int(ref["resolved_ts"]):
                wrong += 1
    return CheckResult(name, wrong == 0, f"{len(labels):,} labels in {len(sessions)} sessions, {wrong} inconsistent")
