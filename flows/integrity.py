"""Integrity checks over the lake: each returns a named result with a readable detail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ, SILVER_BOOK_1S

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
