"""Save and load a retrieval memory as a directory, locally or from an MLflow model version.

Layout (``FORMAT_VERSION`` 1) of a memory directory:

- ``manifest.json``: format name and version, vector size, group names, training rows of the
  scaling, and one entry per partition (level type, direction, time bucket, index kind, rows,
  index file) plus the SHA-256 of every other file;
- ``arrays.npz`` (no pickles): the scaling statistics and, per partition ``pNNN``, the episode
  ids and outcome codes in index row order;
- ``pNNN.faiss``: each partition's index, written by ``faiss.write_index``.

The manifest is written last, so a directory whose writing was interrupted has none and is
refused as "not a retrieval memory". Any checksum mismatch is refused as corrupt. A registered
model version carries its memory as the artifact directory ``retrieval/`` of the run that logged
it (contract in issue 4), so ``load_memory_for`` finds it from the registry alone.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Final

import faiss
import numpy as np

from connectors.files import file_sha256
from operators.errors import ConfigError, SinkError, SourceError
from operators.retrieval import Memory, Partition, VectorScaling

FORMAT: Final = "spymaster.retrieval-memory"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
ARRAYS: Final = "arrays.npz"
ARTIFACT_PATH: Final = "retrieval"


def save_memory(memory: Memory, directory: Path | str) -> Path:
    """Write ``memory`` into ``directory`` (created; it must be empty or absent). Returns the path."""
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SinkError(f"cannot save the retrieval memory into {out}: it exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    s = memory.scaling
    arrays: dict[str, np.ndarray] = {"scaling_mean": s.mean, "scaling_std": s.std, "scaling_scale": s.scale,
                                     "scaling_groups": s.groups, "scaling_group_weights": s.group_weights}
    entries = []
    for i, (key, part) in enumerate(sorted(memory.partitions.items())):
        name = f"p{i:03d}"
        faiss.write_index(part.index, str(out / f"{name}.faiss"))
        arrays[f"{name}_ids"] = np.array(part.episode_ids, dtype=str) if part.episode_ids else np.zeros(0, "U1")
        arrays[f"{name}_outcomes"] = np.asarray(part.outcomes, np.int8)
        entries.append({"name": name, "level_type": key[0], "direction": key[1], "time_bucket": key[2],
                        "kind": part.kind, "rows": part.rows})
    np.savez(out / ARRAYS, allow_pickle=False, **arrays)  # load_memory reads it without pickle too
    files = [ARRAYS, *(f"{e['name']}.faiss" for e in entries)]
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "vector_size": s.size,
                "group_names": list(s.group_names), "scaling_rows": s.rows, "partitions": entries,
                "sha256": {f: file_sha256(out / f) for f in files}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return out


def load_memory(directory: Path | str) -> Memory:
    """Read a directory written by ``save_memory``; ``SourceError`` when missing, foreign or corrupt."""
    src = Path(directory)
    manifest = _manifest(src)
    try:
        return _read(src, manifest)
    except (KeyError, TypeError, ValueError) as err:
        msg = f"retrieval memory {src} is corrupt: its manifest or arrays are incomplete ({err!r})"
        raise SourceError(msg) from None


def _read(src: Path, manifest: dict) -> Memory:
    for name, digest in manifest["sha256"].items():
        if not (src / name).is_file():
            raise SourceError(f"retrieval memory {src} is incomplete: {name} is missing")
        if file_sha256(src / name) != digest:
            raise SourceError(f"retrieval memory {src} is corrupt: {name} does not match its checksum")
    with np.load(src / ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mean, std, scale, groups = (_ro(arrays[f"scaling_{f}"]) for f in ("mean", "std", "scale", "groups"))
    scaling = VectorScaling(mean, std, scale, groups, tuple(manifest["group_names"]),
                            _ro(arrays["scaling_group_weights"]), int(manifest["scaling_rows"]))
    parts = {}
    for e in manifest["partitions"]:
        key = (str(e["level_type"]), str(e["direction"]), int(e["time_bucket"]))
        try:
            index = faiss.read_index(str(src / f"{e['name']}.faiss"))
        except RuntimeError as err:
            raise SourceError(f"retrieval memory {src}: index {e['name']} cannot be read ({err})") from None
        ids = tuple(str(i) for i in arrays[f"{e['name']}_ids"])
        if index.ntotal != len(ids) or index.d != scaling.size:
            raise SourceError(f"retrieval memory {src} is corrupt: index {e['name']} disagrees with its manifest")
        parts[key] = Partition(key, index, ids, _ro(arrays[f"{e['name']}_outcomes"].astype(np.int8)))
    return Memory(scaling, parts)


def load_memory_for(model_id: str, version: str | int, uri: str | None = None) -> Memory:
    """The memory logged with a registered model version (artifact ``retrieval/`` of its run), from
    the registry at ``uri`` (default ``connectors.mlflow.tracking.tracking_uri()``)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from connectors.mlflow.tracking import quiet_downloads, tracking_uri

    uri = uri or tracking_uri()  # read explicitly, never through MLflow's process-wide URIs (threads load here)
    quiet_downloads()
    try:
        run_id = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(model_id, str(version)).run_id
    except MlflowException:
        raise ConfigError(f"model {model_id} has no version {version} in the MLflow registry at {uri}") from None
    if not run_id:
        msg = f"model {model_id} version {version} was not logged from a run, so it has no retrieval memory"
        raise SourceError(msg)
    with tempfile.TemporaryDirectory(prefix="spymaster-memory-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=tmp,
                                                       tracking_uri=uri, registry_uri=uri)
        except (MlflowException, OSError):
            raise SourceError(f"model {model_id} version {version} has no retrieval memory "
                              f"(artifact '{ARTIFACT_PATH}/' of run {run_id})") from None
        return load_memory(path)


def _manifest(src: Path) -> dict:
    if not src.is_dir():
        raise SourceError(f"retrieval memory directory {src} does not exist")
    if not (src / MANIFEST).is_file():
        raise SourceError(f"{src} is not a retrieval memory: it has no {MANIFEST}")
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (ValueError, UnicodeDecodeError):
        raise SourceError(f"retrieval memory {src} is corrupt: {MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SourceError(f"{src} is not a retrieval memory: {MANIFEST} does not name the format {FORMAT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SourceError(f"retrieval memory {src} has format version {manifest.get('format_version')}; "
                          f"this Spymaster reads version {FORMAT_VERSION}")
    return manifest


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a
