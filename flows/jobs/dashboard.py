"""The Fabric Real-Time Dashboard (item type ``KQLDashboard``), built from the tile blocks of the .kql files.

``infra/fabric/dashboard_queries.kql`` and ``infra/fabric/anomalies.kql`` hold one block per tile
(``// tile: <Title>``) or per parameter drop-down (``// parameter: <variable>``), separated by blank
lines. The ``// key: value`` lines right after the title place it (``page``, ``visual``,
``size: <width>x<height>``; ``label``, ``column``) and the rest of the block is the query text,
copied verbatim. So the dashboard cannot drift from the queries that ``kqlcheck.js`` checks, and
``infra/fabric/RealTimeDashboard.json`` is ``build_dashboard(None, None)`` written out (a test
holds the two equal).

Every id is a uuid5 of one fixed namespace and the thing's name, so rebuilding gives the same
file; the ``eTag`` is a uuid5 of the content. The shape is the one Fabric exports (the
``RealTimeDashboard.json`` part of the KQL Dashboard definition): pages, tiles that point at
queries with ``queryRef``, queries that name their data source and the parameters they use
(``usedVariables``), parameters, and one ``manual-kusto`` data source.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from operators.errors import ConfigError

FABRIC: Final = Path(__file__).resolve().parents[2] / "infra" / "fabric"
QUERY_FILES: Final = (FABRIC / "dashboard_queries.kql", FABRIC / "anomalies.kql")
DASHBOARD_JSON: Final = FABRIC / "RealTimeDashboard.json"
PLACEHOLDER_CLUSTER: Final = "https://<your-eventhouse>.kusto.fabric.microsoft.com"
PLACEHOLDER_DATABASE: Final = "Spymaster"
SCHEMA_VERSION: Final = "52"
TITLE: Final = "Spymaster"
GRID_WIDTH: Final = 24
PAGES: Final = ("Market", "Scores", "Health")
"""Page order; a tile names its page with ``// page:``."""

_NAMESPACE: Final = uuid.UUID("5d1c7a52-3b8e-4f0a-9a51-7c2f3e0d9b41")
_TIME_RANGE: Final = ("_startTime", "_endTime")
_SCALAR_PARAMETERS: Final = ("_underlier", "_contract")
_VISUALS: Final = ("table", "line", "column", "bar", "card", "scatter", "timechart")
_META: Final = re.compile(r"^//\s*(page|visual|size|label|column):\s*(.+?)\s*$")
_TITLE: Final = re.compile(r"^//\s*(tile|parameter):\s*(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class TileSpec:
    title: str
    page: str
    visual: str
    width: int
    height: int
    text: str


@dataclass(frozen=True, slots=True)
class ParameterQuerySpec:
    variable: str
    label: str
    column: str
    text: str


def _id(*name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(name)))


def kql_blocks(text: str) -> list[list[str]]:
    """The lines of each block of a script (blocks are separated by blank lines)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append(current)
            current = []
    return blocks


def _split(block: list[str], where: str) -> tuple[str, str, dict[str, str], str]:
    """A titled block → (kind, name, metadata, query text)."""
    title = _TITLE.match(block[0])
    assert title is not None
    meta: dict[str, str] = {}
    rest = block[1:]
    while rest and (m := _META.match(rest[0])):
        meta[m.group(1)] = m.group(2)
        rest = rest[1:]
    if not rest:
        msg = f"{where}: {title.group(1)} {title.group(2)!r} has no query after its title lines"
        raise ConfigError(msg)
    return title.group(1), title.group(2), meta, "\n".join(rest)


def _tile(name: str, meta: dict[str, str], text: str, where: str) -> TileSpec:
    size = re.fullmatch(r"(\d+)x(\d+)", meta.get("size", ""))
    if meta.get("page") not in PAGES or meta.get("visual") not in _VISUALS or size is None:
        msg = (f"{where}: tile {name!r} needs `// page:` (one of {', '.join(PAGES)}), `// visual:` "
               f"(one of {', '.join(_VISUALS)}) and `// size: <width>x<height>` right after its title")
        raise ConfigError(msg)
    return TileSpec(name, meta["page"], meta["visual"], int(size.group(1)), int(size.group(2)), text)


def read_specs(paths: tuple[Path, ...] = QUERY_FILES) -> tuple[list[TileSpec], list[ParameterQuerySpec]]:
    """The tiles and parameter drop-downs the .kql files define, in file order."""
    tiles: list[TileSpec] = []
    parameters: list[ParameterQuerySpec] = []
    for path in paths:
        for block in kql_blocks(path.read_text()):
            if not _TITLE.match(block[0]):
                continue
            kind, name, meta, text = _split(block, path.name)
            if kind == "tile":
                tiles.append(_tile(name, meta, text, path.name))
            elif name in _SCALAR_PARAMETERS and "column" in meta:
                parameters.append(ParameterQuerySpec(name, meta.get("label", name), meta["column"], text))
            else:
                msg = f"{path.name}: parameter {name!r} must be one of {_SCALAR_PARAMETERS} and name its `// column:`"
                raise ConfigError(msg)
    titles = [t.title for t in tiles]
    if len(set(titles)) != len(titles):
        msg = f"tile titles must be unique, got {titles}"
        raise ConfigError(msg)
    return tiles, parameters


def used_variables(text: str) -> list[str]:
    """The dashboard parameter variables a query text uses (comment lines ignored), in a fixed order."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return [v for v in (*_TIME_RANGE, *_SCALAR_PARAMETERS) if re.search(rf"(?<![\w.]){v}\b", code)]


def _layout(tiles: list[TileSpec]) -> dict[str, dict[str, int]]:
    """Tiles of a page placed left to right in rows of GRID_WIDTH, in file order."""
    out: dict[str, dict[str, int]] = {}
    for page in PAGES:
        x = y = row = 0
        for t in (t for t in tiles if t.page == page):
            if x + t.width > GRID_WIDTH:
                x, y, row = 0, y + row, 0
            out[t.title] = {"x": x, "y": y, "width": t.width, "height": t.height}
            x, row = x + t.width, max(row, t.height)
    return out


def _visual_options(visual: str) -> dict[str, Any]:
    common: dict[str, Any] = {"crossFilterDisabled": False, "drillthroughDisabled": False,
                              "crossFilter": [], "drillthrough": []}
    if visual == "table":
        return {"table__enableRenderLinks": True, **common}
    return {"xColumn": {"type": "infer"}, "yColumns": {"type": "infer"}, "seriesColumns": {"type": "infer"},
            "hideLegend": False, **common}


def _query(query_id: str, text: str, source_id: str) -> dict[str, Any]:
    return {"id": query_id, "dataSource": {"kind": "inline", "dataSourceId": source_id}, "text": text,
            "usedVariables": used_variables(text)}


def _parameters(specs: list[ParameterQuerySpec]) -> list[dict[str, Any]]:
    time_range: dict[str, Any] = {
        "kind": "duration", "id": _id("parameter", *_TIME_RANGE), "displayName": "Time range", "description": "",
        "beginVariableName": _TIME_RANGE[0], "endVariableName": _TIME_RANGE[1],
        "defaultValue": {"kind": "dynamic", "count": 1, "unit": "days"}, "showOnPages": {"kind": "all"},
    }
    drop_downs = [{
        "kind": "string", "id": _id("parameter", p.variable), "displayName": p.label,
        "description": "All (empty) means no filter", "variableName": p.variable, "selectionType": "scalar",
        "includeAllOption": True, "defaultValue": {"kind": "all"},
        "dataSource": {"kind": "query", "columns": {"value": p.column},
                       "queryRef": {"kind": "query", "queryId": _id("query", "parameter", p.variable)}},
        "showOnPages": {"kind": "all"},
    } for p in specs]
    return [time_range, *drop_downs]


def build_dashboard(cluster_uri: str | None, database: str | None) -> dict[str, Any]:
    """The RealTimeDashboard.json content; None keeps the placeholder cluster / database."""
    tiles, parameter_queries = read_specs()
    source_id = _id("dataSource")
    layout = _layout(tiles)
    body: dict[str, Any] = {
        "$schema": f"https://dataexplorer.azure.com/static/d/schema/{SCHEMA_VERSION}/dashboard.json",
        "id": _id("dashboard", TITLE),
        "eTag": "",
        "schema_version": SCHEMA_VERSION,
        "title": TITLE,
        "autoRefresh": {"enabled": True, "defaultInterval": "30s", "minInterval": "30s"},
        "pages": [{"id": _id("page", p), "name": p} for p in PAGES],
        "tiles": [{
            "id": _id("tile", t.title), "title": t.title, "visualType": t.visual, "pageId": _id("page", t.page),
            "layout": layout[t.title], "queryRef": {"kind": "query", "queryId": _id("query", "tile", t.title)},
            "visualOptions": _visual_options(t.visual),
        } for t in tiles],
        "baseQueries": [],
        "parameters": _parameters(parameter_queries),
        "dataSources": [{
            "id": source_id, "name": database or PLACEHOLDER_DATABASE, "kind": "manual-kusto", "scopeId": "kusto",
            "clusterUri": cluster_uri or PLACEHOLDER_CLUSTER, "database": database or PLACEHOLDER_DATABASE,
        }],
        "queries": [*(_query(_id("query", "tile", t.title), t.text, source_id) for t in tiles),
                    *(_query(_id("query", "parameter", p.variable), p.text, source_id) for p in parameter_queries)],
    }
    body["eTag"] = str(uuid.uuid5(_NAMESPACE, json.dumps(body, sort_keys=True)))
    return body


def write_dashboard(path: Path | str, cluster_uri: str | None, database: str | None) -> Path:
    """Write ``build_dashboard(cluster_uri, database)`` as indented JSON to ``path``."""
    out = Path(path)
    out.write_text(json.dumps(build_dashboard(cluster_uri, database), indent=2, ensure_ascii=False) + "\n")
    return out
