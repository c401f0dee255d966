"""DBN files on Azure storage, read by a replay through a local cache.

An input may be ``az://CONTAINER/PATH`` (the account from the storage options) or
``abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH``, as delta-rs names the lake: a file, a
"directory" (its ``*.dbn`` / ``*.dbn.zst`` directly under it, as for a local directory) or a
glob. Each matching blob is downloaded once into the cache (``<cache>/<account>/<container>/
<name>``, kept while the blob's ETag is the same) and the replay reads the local copy: a DBN
file is read forward exactly once per replay, so a copy costs one download, and the reader, its
plan and its fault handling stay the local ones. The Bronze ``source`` of a file is its name,
so a replay from storage writes the same rows as one from disk.

Credentials, in the names delta-rs and object_store use for the lake (``[lake] storage_options``,
or ``[source] storage_options`` for another account): ``account_name``, ``account_key``; with
``use_emulator`` the Azurite endpoint (``AZURITE_BLOB_STORAGE_URL``, default
``http://127.0.0.1:10000``) and its published development key; otherwise
``DefaultAzureCredential`` (workload identity on AKS). The key never appears in a message.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from connectors.dbn.source import DBN_SUFFIXES
from operators.errors import ConfigError, SourceError

SCHEMES: Final = ("az://", "abfs://", "abfss://")
EMULATOR_ACCOUNT: Final = "devstoreaccount1"
EMULATOR_KEY: Final = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
"""Azurite's well-known development key (published by Microsoft; it opens only the emulator)."""


def is_remote(spec: str | Path) -> bool:
    return str(spec).startswith(SCHEMES)


@dataclass(frozen=True, slots=True)
class BlobLocation:
    account: str
    container: str
    path: str
    """The blob name, a prefix or a glob, without a leading slash."""


def _option(options: Mapping[str, str], *names: str) -> str:
    for name in names:
        for key in (name, f"azure_storage_{name}", f"azure_{name}"):
            value = options.get(key) or options.get(key.upper())
            if value:
                return str(value)
    return ""


def _emulated(options: Mapping[str, str]) -> bool:
    return _option(options, "use_emulator").lower() in ("1", "true", "yes")


def parse_location(url: str, options: Mapping[str, str]) -> BlobLocation:
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    if parts.scheme in ("abfs", "abfss") and "@" in parts.netloc:
        container, _, host = parts.netloc.partition("@")
        return BlobLocation(host.split(".", 1)[0], container, path)
    account = _option(options, "account_name") or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "")
    if not account and _emulated(options):
        account = EMULATOR_ACCOUNT
    if not account:
        raise ConfigError(f"{url} names no storage account; use abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH "
                          "or set account_name in [source] or [lake] storage_options")
    return BlobLocation(account, parts.netloc, path)


def container_client(location: BlobLocation, options: Mapping[str, str], credential: Any = None) -> Any:
    from azure.storage.blob import ContainerClient

    if _emulated(options):
        base = os.environ.get("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000").rstrip("/")
        key = _option(options, "account_key", "access_key") or EMULATOR_KEY
        return ContainerClient(f"{base}/{location.account}", location.container,
                               credential={"account_name": location.account, "account_key": key})
    url = f"https://{location.account}.blob.core.windows.net"
    key = _option(options, "account_key", "access_key") or os.environ.get("AZURE_STORAGE_ACCOUNT_KEY", "")
    if key:
        return ContainerClient(url, location.container, credential={"account_name": location.account,
                                                                    "account_key": key})
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return ContainerClient(url, location.container, credential=credential)


def fetch_inputs(specs: Sequence[str | Path], cache: Path, options: Mapping[str, str]) -> list[str]:
    """``specs`` with each storage URL replaced by the local copies of the files it names."""
    out: list[str] = []
    for spec in specs:
        if not is_remote(spec):
            out.append(str(spec))
            continue
        location = parse_location(str(spec), options)
        client = container_client(location, options)
        try:
            names = _matching(client, location)
            if not names:
                raise SourceError(f"{spec} names no .dbn or .dbn.zst blob")
            out.extend(str(_cached(client, location, name, cache)) for name in names)
        except SourceError:
            raise
        except Exception as err:  # noqa: BLE001 - every SDK failure is one sentence without the credential
            raise SourceError(f"cannot read {spec} from Azure storage ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    return out


def _matching(client: Any, location: BlobLocation) -> list[str]:
    pattern = location.path
    if glob.has_magic(pattern):
        fixed = pattern[:min(pattern.index(c) for c in "*?[" if c in pattern)]
        return sorted(b.name for b in client.list_blobs(name_starts_with=fixed)
                      if fnmatch.fnmatchcase(b.name, pattern) and b.name.endswith(DBN_SUFFIXES))
    exact = [b.name for b in client.list_blobs(name_starts_with=pattern) if b.name == pattern]
    if exact:
        return exact
    prefix = pattern.rstrip("/") + "/" if pattern else ""
    return sorted(b.name for b in client.list_blobs(name_starts_with=prefix)
                  if "/" not in b.name[len(prefix):] and b.name.endswith(DBN_SUFFIXES))


def _cached(client: Any, location: BlobLocation, name: str, cache: Path) -> Path:
    """The local copy of one blob, downloaded unless the cache holds this ETag already."""
    target = cache / location.account / location.container / name
    tag_file = target.with_name(target.name + ".etag")
    blob = client.get_blob_client(name)
    etag = str(blob.get_blob_properties().etag)
    if target.is_file() and tag_file.is_file() and tag_file.read_text() == etag:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as handle:
        blob.download_blob().readinto(handle)
    os.replace(partial, target)
    tag_file.write_text(etag)
    return target
