"""The Fabric KQL passes Microsoft's Kusto.Language, and the schema script says what tables.py says.

``infra/fabric/kql/kqlcheck.js`` runs Kusto.Language (``@kusto/language-service-next``, installed
by ``make`` from the lockfile) over the schema script, the tile queries and the dashboard JSON.
Without Node or the package these tests fail, never skip: they are the only check the KQL gets
before it meets a real Eventhouse.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.kusto.tables import ALL_EVENTHOUSE_TABLES, BY_NAME
from flows.jobs.dashboard import read_specs

FABRIC = Path(__file__).resolve().parents[2] / "infra" / "fabric"
KQL = FABRIC / "kql"
SCHEMA = FABRIC / "eventhouse_schema.kql"
FUNCTIONS = ["FeaturesOf", "LatestScores", "OpenEpisodes", "ChampionVersions", "ChampionPredictions",
             "ChampionHitRate"]


def _require_checker(kql_dir: Path) -> list[str]:
    """The command that runs kqlcheck.js, or a failed test saying how to install it."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node 20, then run `make` to install the KQL checker")
    if not (kql_dir / "node_modules" / "@kusto" / "language-service-next").is_dir():
        pytest.fail(f"{kql_dir}/node_modules is missing: run `make` (it runs `npm ci --prefix infra/fabric/kql`)")
    return [node, str(kql_dir / "kqlcheck.js")]


def _check(*args: str | Path) -> tuple[int, list[str], dict[str, Any]]:
    proc = subprocess.run([*_require_checker(KQL), *map(str, args)], capture_output=True, text=True,
                          timeout=600, check=False)
    lines = proc.stdout.splitlines()
    assert lines, proc.stderr
    return proc.returncode, lines[:-1], json.loads(lines[-1])


def _mapping_commands(kind: str = "json") -> dict[str, tuple[str, list[dict[str, str]]]]:
    """table → (mapping name, entries) of every `.create-or-alter table T ingestion KIND mapping` block."""
    found = re.findall(rf"^\.create-or-alter table (\w+) ingestion {kind} mapping \"(\w+)\" '(.*)'$",
                       SCHEMA.read_text(), flags=re.M)
    return {table: (name, json.loads(body)) for table, name, body in found}


def test_checker_accepts_schema_tiles_and_dashboard() -> None:
    code, diagnostics, summary = _check("--schema", SCHEMA, FABRIC / "dashboard_queries.kql",
                                        FABRIC / "anomalies.kql", "--json", FABRIC / "RealTimeDashboard.json")
    tiles, parameters = read_specs()
    dashboard = json.loads((FABRIC / "RealTimeDashboard.json").read_text())

    assert (code, diagnostics) == (0, [])
    assert (summary["errors"], summary["warnings"]) == (0, 0)
    assert summary["tables"] == ["Features", "Scores", "Levels", "Outcomes", "Radar", "Gex"]
    assert summary["materializedViews"] == [t.dedup_view for t in ALL_EVENTHOUSE_TABLES]
    assert summary["mappings"] == [m for t in ALL_EVENTHOUSE_TABLES for m in (t.mapping, t.parquet_mapping)]
    assert summary["functions"] == FUNCTIONS
    assert summary["tiles"] == [t.title for t in tiles]
    assert summary["parameterQueries"] == [p.variable for p in parameters] == ["_underlier", "_contract"]
    assert summary["queries"] == len(dashboard["queries"]) == len(tiles) + len(parameters)


def _scores_only_schema(tmp_path: Path, mapping_edit: tuple[str, str] = ("", "")) -> Path:
    """The Scores blocks of the schema script (table, mapping, policies, dedup view), mapping edited.

    Kusto.Language parses a control command in ~0.4 s, so the negative cases use five blocks, not
    the whole script.
    """
    blocks = [b for b in SCHEMA.read_text().split("\n\n") if re.search(r"table Scores\b", b)]
    path = tmp_path / "scores_schema.kql"
    path.write_text("\n\n".join(blocks).replace(*mapping_edit) + "\n")
    return path


def test_checker_reports_unknown_column_command_and_incomplete_mapping(tmp_path: Path) -> None:
    dropped = '{"column":"feature_hash","path":"$.feature_hash","datatype":"string"},'
    schema = _scores_only_schema(tmp_path, (dropped, ""))
    assert dropped not in schema.read_text() and dropped in SCHEMA.read_text()
    mapping_line = next(i for i, line in enumerate(schema.read_text().splitlines(), 1) if '"ScoresMapping"' in line)
    queries = tmp_path / "tiles.kql"
    queries.write_text("// tile: Misspelled\nScoresDedup\n| where p_brek > 0.5\n\n.creat table Foo (a:string)\n")

    code, diagnostics, summary = _check("--schema", schema, queries)

    assert code == 1
    assert diagnostics == [
        f"{schema}:{mapping_line}: Error MAP007 [ScoresMapping] column feature_hash of Scores is not mapped",
        f"{schema}:{mapping_line + 2}: Error MAP007 [ScoresParquetMapping] column feature_hash of Scores is not "
        "mapped",
        f"{queries}:3: Error KS142 The name 'p_brek' does not refer to any known column, table, variable or "
        "function. -> \"p_brek\"",
        f"{queries}:5: Error KQLCHK01 unknown control command -> \".creat table Foo (a:string)\"",
        f"{queries}:5: Error KQLCHK03 control command in a query file",
    ]
    assert (summary["tables"], summary["materializedViews"], summary["errors"]) == (["Scores"], ["ScoresDedup"], 5)


def test_checker_reports_a_parameter_missing_from_used_variables(tmp_path: Path) -> None:
    dashboard = json.loads((FABRIC / "RealTimeDashboard.json").read_text())
    query = {**dashboard["queries"][0], "usedVariables": ["_startTime", "_endTime"],
             "text": "ScoresDedup\n| where vector_time between (_startTime .. _endTime)\n"
                     "| where _contract in (\"\", \"all\") or contract_id == _contract"}
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps({**dashboard, "queries": [query]}, indent=2))
    tile = next(t["title"] for t in dashboard["tiles"] if t["queryRef"]["queryId"] == query["id"])

    code, diagnostics, _ = _check("--schema", _scores_only_schema(tmp_path), "--json", path)

    assert code == 1
    assert len(diagnostics) == 1
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: Error KQLCHK20 \[{re.escape(tile)}\] uses _contract, "
                        r"which usedVariables does not list", diagnostics[0])


def test_missing_package_fails_and_says_run_make(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run `make`"):
        _require_checker(tmp_path)


def test_schema_tables_equal_tables_py() -> None:
    declared = re.findall(r"^\.create-merge table (\w+) \(([^)]*)\)", SCHEMA.read_text(), flags=re.M)
    tables = {name: tuple(tuple(c.strip().split(":")) for c in cols.split(",")) for name, cols in declared}

    assert list(tables) == [t.name for t in ALL_EVENTHOUSE_TABLES]
    assert tables == {t.name: t.columns for t in ALL_EVENTHOUSE_TABLES}


@pytest.mark.parametrize("kind", ["json", "parquet"])
def test_every_mapping_maps_every_column_once_to_its_path(kind: str) -> None:
    mappings = _mapping_commands(kind)

    assert list(mappings) == list(BY_NAME)
    for table, (name, entries) in mappings.items():
        spec = BY_NAME[table]
        assert name == (spec.mapping if kind == "json" else spec.parquet_mapping)
        assert [(e["column"], e["path"], e["datatype"]) for e in entries] == [
            (c, f"$.{c}", t) for c, t in spec.columns]


def test_every_table_has_policies_and_a_dedup_view() -> None:
    blocks = [b.strip() for b in SCHEMA.read_text().split("\n\n")]
    commands = {"\n".join(line for line in b.splitlines() if not line.startswith("//")) for b in blocks}

    for t in ALL_EVENTHOUSE_TABLES:
        assert f".alter table {t.name} policy streamingingestion enable" in commands
        assert any(c.startswith(f".alter-merge table {t.name} policy retention softdelete = ") for c in commands)
        assert any(c.startswith(f".alter table {t.name} policy caching hot = ") for c in commands)
        view = next(c for c in commands if f" {t.dedup_view} on table {t.name}" in c)
        assert view.startswith(".create async ifnotexists materialized-view with (backfill=true")
        assert view.endswith(f"{{\n    {t.name}\n    | summarize take_any(*) by stream, position\n}}")
