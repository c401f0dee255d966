"""RealTimeDashboard.json is consistent, equals the tile blocks of the .kql files, and is what the builder writes."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from flows.jobs.dashboard import (
    DASHBOARD_JSON,
    PLACEHOLDER_CLUSTER,
    QUERY_FILES,
    build_dashboard,
    write_dashboard,
)

TITLES = ["Feature series with key levels", "Top movers by order-flow imbalance and vacuum",
          "Latest probabilities per open episode", "Score history",
          "Champion hit rate by level type and time bucket", "Calibration", "Health: ingestion lag",
          "Gamma exposure: spot, zero gamma and walls", "Gamma exposure: net, calls and puts",
          "Health: scores not ok", "Anomalies"]


@pytest.fixture(name="dashboard")
def fixture_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_JSON.read_text())


def _blocks() -> dict[str, str]:
    """"tile: T" / "parameter: _v" → the block's text after its title and placement lines, read here
    independently of flows.jobs.dashboard."""
    out: dict[str, str] = {}
    for path in QUERY_FILES:
        for block in re.split(r"\n\s*\n", path.read_text()):
            lines = block.strip("\n").splitlines()
            title = re.fullmatch(r"// (tile|parameter): (.+)", lines[0])
            if title is None:
                continue
            body = lines[1:]
            while re.match(r"// (page|visual|size|label|column): ", body[0]):
                body = body[1:]
            out[f"{title.group(1)}: {title.group(2)}"] = "\n".join(body)
    return out


def _declared(dashboard: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for p in dashboard["parameters"]:
        names |= {p["beginVariableName"], p["endVariableName"]} if p["kind"] == "duration" else {p["variableName"]}
    return names


def test_ids_are_unique_uuids(dashboard: dict[str, Any]) -> None:
    ids = [dashboard["id"], dashboard["eTag"]]
    for key in ("pages", "tiles", "queries", "parameters", "dataSources"):
        ids += [item["id"] for item in dashboard[key]]

    assert len(ids) == 2 + 3 + len(TITLES) + (len(TITLES) + 2) + 3 + 1
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids)


def test_every_reference_resolves(dashboard: dict[str, Any]) -> None:
    pages = {p["id"] for p in dashboard["pages"]}
    queries = {q["id"] for q in dashboard["queries"]}
    sources = {s["id"] for s in dashboard["dataSources"]}
    referenced = [t["queryRef"]["queryId"] for t in dashboard["tiles"]]
    referenced += [p["dataSource"]["queryRef"]["queryId"] for p in dashboard["parameters"] if "dataSource" in p]

    assert all(t["pageId"] in pages and t["queryRef"]["kind"] == "query" for t in dashboard["tiles"])
    assert sorted(referenced) == sorted(queries)  # every query is used exactly once
    assert all(q["dataSource"] == {"kind": "inline", "dataSourceId": q["dataSource"]["dataSourceId"]}
               and q["dataSource"]["dataSourceId"] in sources for q in dashboard["queries"])


def test_every_variable_used_is_declared_and_listed(dashboard: dict[str, Any]) -> None:
    declared = _declared(dashboard)

    assert declared == {"_startTime", "_endTime", "_underlier", "_contract"}
    for q in dashboard["queries"]:
        code = "\n".join(line for line in q["text"].splitlines() if not line.lstrip().startswith("//"))
        used = set(re.findall(r"(?<![\w.])_[A-Za-z]\w*", code))
        assert used <= declared, q["text"]
        assert set(q["usedVariables"]) == used, q["text"]
        assert len(q["usedVariables"]) == len(used)


def test_queries_are_the_kql_blocks(dashboard: dict[str, Any]) -> None:
    text = {q["id"]: q["text"] for q in dashboard["queries"]}
    from_json = {f"tile: {t['title']}": text[t["queryRef"]["queryId"]] for t in dashboard["tiles"]}
    from_json |= {f"parameter: {p['variableName']}": text[p["dataSource"]["queryRef"]["queryId"]]
                  for p in dashboard["parameters"] if p["kind"] == "string"}

    assert [t["title"] for t in dashboard["tiles"]] == TITLES
    assert from_json == _blocks()


def test_tiles_fit_the_grid_without_overlap(dashboard: dict[str, Any]) -> None:
    for page in dashboard["pages"]:
        cells: set[tuple[int, int]] = set()
        for t in (t for t in dashboard["tiles"] if t["pageId"] == page["id"]):
            x, y, w, h = (t["layout"][k] for k in ("x", "y", "width", "height"))
            mine = {(i, j) for i in range(x, x + w) for j in range(y, y + h)}
            assert x + w <= 24 and not (mine & cells), t["title"]
            cells |= mine


def test_committed_file_is_the_builder_output(dashboard: dict[str, Any]) -> None:
    built = build_dashboard(None, None)

    assert dashboard == built
    assert DASHBOARD_JSON.read_text() == json.dumps(built, indent=2, ensure_ascii=False) + "\n"
    assert dashboard["dataSources"][0]["clusterUri"] == PLACEHOLDER_CLUSTER
    assert dashboard["dataSources"][0]["database"] == "Spymaster"


def test_build_fills_the_data_source(dashboard: dict[str, Any]) -> None:
    built = build_dashboard("https://x.z1.kusto.fabric.microsoft.com", "DB")

    assert [(s["clusterUri"], s["database"], s["name"]) for s in built["dataSources"]] == [
        ("https://x.z1.kusto.fabric.microsoft.com", "DB", "DB")]
    assert built["dataSources"][0]["id"] == dashboard["dataSources"][0]["id"]
    assert built["queries"] == dashboard["queries"] and built["tiles"] == dashboard["tiles"]
    assert built["eTag"] != dashboard["eTag"]


def test_write_dashboard_writes_what_it_builds(tmp_path: Path) -> None:
    out = write_dashboard(tmp_path / "RealTimeDashboard.json", "https://y.z2.kusto.fabric.microsoft.com", "Market")

    assert json.loads(out.read_text()) == build_dashboard("https://y.z2.kusto.fabric.microsoft.com", "Market")
