"""``spymaster snapshot``: freeze a model's training rows into a versioned Parquet snapshot."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from flows.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "snapshot",
        help="freeze gold.training_view of one model into <lake>/ml/datasets/{model_id}/{snapshot_id}/",
        description=(
            "Read the model's labelled rows of gold.training_view and write them as Parquet with a "
            "manifest.json (Delta version read, rows per session and per label, feature registry "
            "version, content hash). The snapshot id comes from the content hash, so the same data "
            "always gives the same id; `spymaster train` reads the latest snapshot unless --snapshot is given."
        ),
    )
    p.add_argument("--model-id", default="ES_MODEL", help="model whose rows to freeze (default ES_MODEL)")
    p.add_argument("--lake", help="lake root, a local path (default: SPYMASTER_LAKE or ./lake)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from connectors.delta.snapshots import read_manifest, take_snapshot
    from operators.learning.classes import CLASSES

    cfg = load_config()
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    ref = take_snapshot(lake, args.model_id)
    manifest = read_manifest(ref.path)
    labels = ", ".join(f"{name} {manifest['labels'][name]:,}" for name in CLASSES)
    console = Console(width=None if sys.stdout.isatty() else 120)
    state = "new snapshot" if ref.created else "unchanged data, existing snapshot"
    view_version = manifest["source"]["gold.training_view"]["delta_version"]
    console.print(f"{state} {ref.snapshot_id} of {ref.model_id}: {ref.rows:,} rows in "
                  f"{len(manifest['sessions'])} sessions ({labels}); registry {ref.registry_version}, "
                  f"gold.training_view version {view_version}", soft_wrap=True)
    console.print(f"  {ref.path}", soft_wrap=True)
    return 0
