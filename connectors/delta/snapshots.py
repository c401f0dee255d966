"""Frozen training snapshots: ``gold.training_view`` of one model, exported as versioned Parquet.

Layout under the lake root (a local path)::

    ml/datasets/{model_id}/{snapshot_id}/data.parquet   the rows, sorted (session, vector time, episode)
    ml/datasets/{model_id}/{snapshot_id}/manifest.json  lineage, counts, hashes (below)
    ml/datasets/{model_id}/LATEST                       the id of the snapshot taken last

The snapshot id is the first 16 hex digits of the SHA-256 of ``data.parquet``, whose bytes are a
function of the rows alone (fixed sort, writer options and row-group size), so the same data gives
the same id and the same bytes: taking a snapshot twice is a no-op that only moves ``LATEST``.
The manifest holds no wall-clock time for the same reason. It records the Delta table version
read (the first time this content was snapshotted), rows per session and per label, the feature
registry version of the vectors, and the file's hash, which ``load_snapshot`` checks.

Training reads only snapshots, never the live tables: a model version names its ``snapshot_id``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.delta.lake import Lake
from connectors.delta.tables import GOLD_TRAINING_VIEW
from connectors.files import file_sha256
from operators.errors import ConfigError, SourceError
from operators.learning.classes import CLASSES, encode
from operators.learning.dataset import TrainingSet

FORMAT: Final = "spymaster.training-snapshot"
FORMAT_VERSION: Final = 1
DATA_FILE: Final = "data.parquet"
MANIFEST: Final = "manifest.json"
LATEST: Final = "LATEST"
ROW_GROUP_ROWS: Final = 65_536
_SORT: Final = [("session_date", "ascending"), ("vector_time", "ascending"), ("episode_id", "ascending"),
                ("data_version", "ascending")]
_READ_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """A snapshot on disk. ``created`` is False when identical content was already there."""

    model_id: str
    snapshot_id: str
    path: Path
    rows: int
    registry_version: str
    created: bool

    @property
    def data_file(self) -> Path:
        return self.path / DATA_FILE

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST


def datasets_dir(lake: Lake, model_id: str) -> Path:
    """``<lake>/ml/datasets/{model_id}`` (the lake must be a local path)."""
    root = lake.root.removeprefix("file://")
    if "://" in root:
        msg = f"training snapshots need a local lake root, got {lake.root}; copy the lake locally or pass --lake DIR"
        raise ConfigError(msg)
    return Path(root) / "ml" / "datasets" / model_id


def take_snapshot(lake: Lake, model_id: str) -> SnapshotRef:
    """Freeze the model's rows of ``gold.training_view`` into a snapshot; returns it (new or existing)."""
    rows, version = _read_view(lake, model_id)
    rows, dropped = _canonical(rows)
    registry = _registry_version(rows, model_id)
    base = datasets_dir(lake, model_id)
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        pq.write_table(rows, staging / DATA_FILE, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                       write_statistics=True)
        digest = file_sha256(staging / DATA_FILE)
        snapshot_id = digest[:16]
        manifest = _manifest(rows, model_id, snapshot_id, digest, registry, version, dropped,
                             (staging / DATA_FILE).stat().st_size)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        final = base / snapshot_id
        created = not final.exists()
        if created:
            os.replace(staging, final)
        elif file_sha256(final / DATA_FILE) != digest:
            msg = f"snapshot {final} exists but its data does not match its id; delete that directory and retry"
            raise SourceError(msg)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_latest(base, snapshot_id)
    return SnapshotRef(model_id, snapshot_id, final, rows.num_rows, registry, created)


def latest_snapshot_id(lake: Lake, model_id: str) -> str | None:
    """The id in ``LATEST``, or ``None`` when no snapshot of the model was taken."""
    pointer = datasets_dir(lake, model_id) / LATEST
    return pointer.read_text().strip() or None if pointer.is_file() else None


def load_snapshot(lake: Lake, model_id: str, snapshot_id: str | None = None) -> tuple[SnapshotRef, pa.Table]:
    """The snapshot (default: the latest) and its rows, after checking the data against the manifest."""
    snapshot_id = snapshot_id or latest_snapshot_id(lake, model_id)
    base = datasets_dir(lake, model_id)
    if snapshot_id is None:
        msg = (f"no training snapshot of {model_id} under {base}; "
               f"take one first with `spymaster snapshot --model-id {model_id}`")
        raise ConfigError(msg)
    return load_snapshot_dir(base / snapshot_id)


def load_snapshot_dir(path: Path) -> tuple[SnapshotRef, pa.Table]:
    """A snapshot directory's reference and rows, after checking the data against the manifest."""
    manifest = read_manifest(path)
    if file_sha256(path / DATA_FILE) != manifest["content_sha256"]:
        msg = f"snapshot {path} is corrupt: {DATA_FILE} does not match the hash in its manifest"
        raise SourceError(msg)
    table = pq.read_table(path / DATA_FILE)
    ref = SnapshotRef(manifest["model_id"], manifest["snapshot_id"], path, table.num_rows,
                      manifest["registry_version"], False)
    return ref, table


def read_manifest(path: Path) -> dict[str, Any]:
    """A snapshot directory's manifest; ``ConfigError`` when the directory is not a snapshot."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        msg = f"{path} is not a training snapshot (no {MANIFEST}); list them with `ls {path.parent}`"
        raise ConfigError(msg) from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        msg = (f"{path} holds a {manifest.get('format')} v{manifest.get('format_version')}, "
               f"not a {FORMAT} v{FORMAT_VERSION}")
        raise SourceError(msg)
    return manifest


def training_set(table: pa.Table, *, include_truncated: bool = False) -> TrainingSet:
    """Snapshot rows → arrays. Truncated labels (input ended before the horizon) are left out by
    default: their CHOP is an artefact of where the data stops, not of the market."""
    if not include_truncated:
        table = table.filter(pc.invert(pc.fill_null(table["truncated"], False)))
    vectors = table["feature_vector"].combine_chunks()
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    width = len(vectors[0]) if len(vectors) else 0
    return TrainingSet(
        vectors=flat.reshape(len(vectors), width) if len(vectors) else np.zeros((0, width), np.float32),
        outcomes=encode(table["outcome"].to_pylist()),
        episode_ids=tuple(table["episode_id"].to_pylist()),
        session_dates=table["session_date"].to_numpy(zero_copy_only=False).astype("datetime64[D]"),
        level_type=tuple(table["level_type"].to_pylist()),
        direction=tuple(table["direction"].to_pylist()),
        time_bucket=table["time_bucket"].to_numpy(zero_copy_only=False).astype(np.int32),
    )


def _read_view(lake: Lake, model_id: str) -> tuple[pa.Table, int]:
    """The model's labelled rows and the Delta version they were read at (re-read if a commit raced)."""
    for _ in range(_READ_ATTEMPTS):
        before = lake.open(GOLD_TRAINING_VIEW)
        if before is None:
            msg = f"{lake.uri(GOLD_TRAINING_VIEW)} does not exist; run `spymaster replay` into this lake first"
            raise SourceError(msg)
        rows = lake.read(GOLD_TRAINING_VIEW)
        after = lake.open(GOLD_TRAINING_VIEW)
        if after is not None and after.version() == before.version():
            break
    else:
        msg = f"{lake.uri(GOLD_TRAINING_VIEW)} kept changing while it was read; snapshot when the replay has finished"
        raise SourceError(msg)
    rows = rows.filter(pc.and_(pc.equal(rows["model_id"], model_id), pc.is_valid(rows["outcome"])))
    if rows.num_rows == 0:
        msg = f"gold.training_view has no labelled rows for model {model_id}; check --model-id or replay more data"
        raise SourceError(msg)
    return rows, before.version()


def _canonical(rows: pa.Table) -> tuple[pa.Table, int]:
    """Rows in a fixed order, one per episode (a re-ingested episode keeps its latest data_version)."""
    rows = rows.sort_by(_SORT).combine_chunks()
    ids = rows["episode_id"].to_pylist()
    last = {e: i for i, e in enumerate(ids)}
    if len(last) == len(ids):
        return rows, 0
    keep = np.array(sorted(last.values()), dtype=np.int64)
    return rows.take(pa.array(keep)), len(ids) - len(keep)


def _registry_version(rows: pa.Table, model_id: str) -> str:
    versions = sorted(set(rows["registry_version"].to_pylist()))
    if len(versions) != 1:
        msg = (f"rows of {model_id} mix feature registry versions {', '.join(map(str, versions))}; "
               f"replay the older sessions with the current code before taking a snapshot")
        raise SourceError(msg)
    return str(versions[0])


def _manifest(rows: pa.Table, model_id: str, snapshot_id: str, digest: str, registry: str, version: int,
              dropped: int, size: int) -> dict[str, Any]:
    sessions: dict[str, dict[str, int]] = {}
    for day, outcome in zip(rows["session_date"].to_pylist(), rows["outcome"].to_pylist(), strict=True):
        counts = sessions.setdefault(day.isoformat(), {"rows": 0, **{c: 0 for c in CLASSES}})
        counts["rows"] += 1
        counts[outcome] += 1
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "snapshot_id": snapshot_id,
        "model_id": model_id,
        "content_sha256": digest,
        "registry_version": registry,
        "lookback_spec": sorted(set(rows["lookback_spec"].to_pylist())),
        "source": {GOLD_TRAINING_VIEW.name: {"path": GOLD_TRAINING_VIEW.relative_path, "delta_version": version}},
        "rows": rows.num_rows,
        "labels": {c: sum(s[c] for s in sessions.values()) for c in CLASSES},
        "truncated": int(pc.sum(pc.cast(pc.fill_null(rows["truncated"], False), pa.int64())).as_py() or 0),
        "duplicates_dropped": dropped,
        "sessions": sessions,
        "files": [{"path": DATA_FILE, "rows": rows.num_rows, "bytes": size, "sha256": digest}],
        "columns": rows.schema.names,
    }


def _write_latest(base: Path, snapshot_id: str) -> None:
    tmp = base / f".{LATEST}.{uuid.uuid4().hex}"
    tmp.write_text(snapshot_id + "\n")
    os.replace(tmp, base / LATEST)
