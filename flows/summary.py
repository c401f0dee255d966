"""The closing summary of a replay: rows per table, dead letters, book anomalies."""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc
from rich.table import Table

from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_MBO_DLQ,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    SILVER_BOOK_ANOMALIES,
    SILVER_LEVEL_APPROACH,
)
from flows.app import PreparedRun


def table_counts(run: PreparedRun) -> dict[str, int]:
    return {spec.name: run.lake.count(spec) for spec in ALL_TABLES}


def summarize(run: PreparedRun, seconds: float) -> Table:
    sources = [f.source_id for f in run.plan.files]
    dlq = run.lake.read(BRONZE_MBO_DLQ, ["source", "reason"])
    dlq = dlq.filter(pc.is_in(dlq["source"], value_set=_strings(sources)))
    reasons = Counter(dlq["reason"].to_pylist())
    anomalies: Counter[str] = Counter()
    for row in run.lake.read(SILVER_BOOK_ANOMALIES).to_pylist():
        anomalies[row["anomaly"]] += row["count"]
    table = Table(title=_title(run, seconds))
    table.add_column("table / counter")
    table.add_column("rows", justify="right")
    for name, count in table_counts(run).items():
        table.add_row(name, f"{count:,}")
    table.add_row("dead letters (this run)", f"{sum(reasons.values()):,}")
    for reason, count in sorted(reasons.items()):
        table.add_row(f"  dlq: {reason}", f"{count:,}")
    table.add_row("book anomalies (lake)", f"{sum(anomalies.values()):,}")
    for name, count in sorted(anomalies.items()):
        table.add_row(f"  anomaly: {name}", f"{count:,}")
    episodes = run.lake.read(SILVER_LEVEL_APPROACH, ["level_type", "direction", "time_bucket"]).to_pylist()
    outcomes = Counter(r["outcome"] for r in run.lake.read(GOLD_LABELS, ["outcome"]).to_pylist())
    table.add_row("level-approach episodes (lake)", f"{len(episodes):,}")
    for (level, direction), count in sorted(Counter((e["level_type"], e["direction"]) for e in episodes).items()):
        table.add_row(f"  {level} {direction}", f"{count:,}")
    for bucket, count in sorted(Counter(e["time_bucket"] for e in episodes).items()):
        table.add_row(f"  time bucket {bucket}", f"{count:,}")
    for outcome, count in sorted(outcomes.items()):
        table.add_row(f"  label {outcome}", f"{count:,}")
    scores = run.lake.read(GOLD_INFERENCE_SCORES, ["status", "model_version"]).to_pylist()
    table.add_row("inference scores (lake)", f"{len(scores):,}")
    for (status, version), count in sorted(Counter((s["status"], s["model_version"] or "-") for s in scores).items()):
        table.add_row(f"  score {status}" + (f" (model v{version})" if version != "-" else ""), f"{count:,}")
    return table


def _title(run: PreparedRun, seconds: float) -> str:
    if run.bronze is not None:
        return (f"replay from Bronze: {len(run.bronze.slices)} (session, contract) partition(s) in {seconds:,.1f} s"
                f" ({len(run.bronze.done)} skipped as already computed)")
    return (f"replay: {len(run.plan.files)} file(s) in {seconds:,.1f} s"
            f" ({len(run.plan.skipped)} skipped as already ingested)")


def _strings(values: list[str]):
    import pyarrow as pa

    return pa.array(values, pa.string())
