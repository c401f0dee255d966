"""``spymaster eventhouse``: the Fabric Eventhouse end — schema, dashboard, backfill, and a local stand-in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from connectors.kusto.config import EventhouseConfig
from flows.config import DateRange, load_config
from operators.errors import ConfigError

_WHERE = ("The Eventhouse comes from SPYMASTER_EVENTHOUSE (query URI), SPYMASTER_EVENTHOUSE_DB, "
          "SPYMASTER_EVENTHOUSE_AUTH (default | app | none) or [eventhouse] in the TOML file; --cluster and --db "
          "override them.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eventhouse",
        help="Fabric Eventhouse: apply the KQL schema, write the dashboard, sync the lake, run a local one",
        description="The flow ingests Features, Scores, Levels, Outcomes and Radar rows into a Fabric Eventhouse "
                    "beside the Delta tables when SPYMASTER_EVENTHOUSE is set. These commands prepare and feed it "
                    "by hand. " + _WHERE,
    )
    cmds = p.add_subparsers(dest="eventhouse_command", required=True, metavar="ACTION")

    a = cmds.add_parser("apply", help="run infra/fabric/eventhouse_schema.kql through the management endpoint",
                        description="Create or update the tables, ingestion mappings, policies, dedup materialized "
                                    "views and functions. Every command is idempotent (.create-merge, "
                                    ".create-or-alter, .alter), so apply after every upgrade. " + _WHERE)
    _target(a)
    a.add_argument("--script", type=Path, help="schema script (default: infra/fabric/eventhouse_schema.kql)")
    a.set_defaults(run=_apply)

    d = cmds.add_parser("dashboard", help="write the Real-Time Dashboard definition with the data source filled in",
                        description="Writes RealTimeDashboard.json for --cluster and --db, ready for Manage > "
                                    "Replace with file in Fabric, or for the Fabric REST API (item type KQLDashboard).")
    d.add_argument("--cluster", required=True, help="the Eventhouse query URI")
    d.add_argument("--db", required=True, help="the KQL database")
    d.add_argument("--out", type=Path, default=Path("RealTimeDashboard.json"), help="where to write it")
    d.set_defaults(run=_dashboard)

    s = cmds.add_parser("sync", help="ship what the lake holds for a range of sessions (backfill, catch-up)",
                        description="Reads the lake for --dates and sends every row through the flow's own path. "
                                    "Rows keep their identity (stream, position), so syncing twice, or a range the "
                                    "flow already sent, shows each row once in the *Dedup views. " + _WHERE)
    _target(s)
    s.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    s.add_argument("--dates", type=DateRange.parse, help="sessions A:B (YYYY-MM-DD:YYYY-MM-DD; default: all)")
    s.add_argument("--tables", help="comma-separated subset of Features,Scores,Levels,Outcomes,Radar")
    s.set_defaults(run=_sync)

    lo = cmds.add_parser("local", help="a local Eventhouse stand-in (Kusto REST over DuckDB) for offline use",
                         description="Serves the Kusto REST endpoints the SDKs use (streaming ingest, management, "
                                     "query) on 127.0.0.1, stores rows in DuckDB and answers KQL through duckdb-kql. "
                                     "Point the flow at it with SPYMASTER_EVENTHOUSE=http://127.0.0.1:PORT and "
                                     "SPYMASTER_EVENTHOUSE_AUTH=none. See docs/eventhouse-local.md for its limits.")
    lo.add_argument("--port", type=int, default=31416, help="port on 127.0.0.1 (default 31416)")
    lo.add_argument("--data", type=Path, default=Path("eventhouse.duckdb"), help="DuckDB file (':memory:' for none)")
    lo.add_argument("--db", default="Spymaster", help="the database name clients use")
    lo.add_argument("--no-schema", action="store_true", help="do not apply eventhouse_schema.kql at start")
    lo.set_defaults(run=_local)


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", help="the Eventhouse query URI (default: SPYMASTER_EVENTHOUSE)")
    p.add_argument("--db", help="the KQL database (default: SPYMASTER_EVENTHOUSE_DB or Spymaster)")


def _config(args: argparse.Namespace, tables: str | None = None) -> EventhouseConfig:
    from dataclasses import replace

    cfg = load_config().eventhouse
    cfg = replace(cfg, uri=(args.cluster or cfg.uri).rstrip("/"), database=args.db or cfg.database,
                  tables=tuple(t.strip() for t in tables.split(",")) if tables else cfg.tables)
    if not cfg.uri:
        msg = "no Eventhouse: pass --cluster or set SPYMASTER_EVENTHOUSE"
        raise ConfigError(msg)
    return cfg


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 120)


def _apply(args: argparse.Namespace) -> int:
    from flows.jobs.eventhouse import SCHEMA_SCRIPT, apply_schema

    cfg = _config(args)
    console = _console()
    n = apply_schema(cfg, args.script or SCHEMA_SCRIPT, on_command=lambda head: console.print(f"  {head[:110]}"))
    console.print(f"applied {n} commands to {cfg.database} on {cfg.uri}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from flows.jobs.dashboard import write_dashboard

    write_dashboard(args.out, args.cluster, args.db)
    _console().print(f"wrote {args.out} for {args.db} on {args.cluster}; import it with Manage > Replace with file")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from flows.jobs.eventhouse import sync

    cfg = _config(args, args.tables)
    lake_cfg = load_config().lake
    lake = Lake(args.lake or lake_cfg.root, dict(lake_cfg.storage_options))
    console = _console()

    def progress(table: str, sent: int, total: int) -> None:
        console.print(f"  {table}: {sent:,} / {total:,} rows acknowledged")

    results = sync(lake, cfg, args.dates, progress)
    for r in results:
        console.print(f"{r.table}: {r.rows:,} rows shipped")
    if not any(r.rows for r in results):
        console.print("the lake holds no rows for these tables and dates; run `spymaster replay` first")
        return 1
    return 0


def _local(args: argparse.Namespace) -> int:
    from flows.jobs.eventhouse import SCHEMA_SCRIPT
    from flows.services.eventhouse import serve

    serve("127.0.0.1", args.port, str(args.data), args.db, schema=None if args.no_schema else SCHEMA_SCRIPT)
    return 0
