"""Azurite, Microsoft's Azure Storage emulator (npm ``azurite``, installed from this directory's
lockfile by ``make``), serving the Blob API on 127.0.0.1 for the tests, stopped by PID.

Both readers of Azure storage find it the same way: delta-rs (the lake, ``use_emulator``) and
``connectors.blob_files`` (the raw files) read ``AZURITE_BLOB_STORAGE_URL``; the account is
``devstoreaccount1`` with Azurite's published key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connectors.blob_files import EMULATOR_ACCOUNT, EMULATOR_KEY
from flows.services.local_process import free_port, listening_process

AZURITE = Path(__file__).resolve().parent / "azurite" / "node_modules" / ".bin" / "azurite-blob"
STORAGE_OPTIONS = {"account_name": EMULATOR_ACCOUNT, "account_key": EMULATOR_KEY, "use_emulator": "true",
                   "allow_http": "true"}


@dataclass(frozen=True, slots=True)
class Azurite:
    url: str
    """``http://127.0.0.1:PORT`` (the value of AZURITE_BLOB_STORAGE_URL)."""
    pid: int

    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_KEY};"
                f"BlobEndpoint={self.url}/{EMULATOR_ACCOUNT};")

    def upload(self, container: str, files: dict[str, Path]) -> None:
        """``files``: blob name -> local file, into ``container`` (created if missing)."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(self.connection_string())
        try:
            service.create_container(container)
        except ResourceExistsError:
            pass
        client = service.get_container_client(container)
        for name, path in files.items():
            with path.open("rb") as handle:
                client.upload_blob(name, handle, overwrite=True)

    def create_container(self, container: str) -> None:
        self.upload(container, {})


@contextmanager
def running_azurite(data: Path) -> Iterator[Azurite]:
    if not AZURITE.exists():
        msg = f"{AZURITE} is missing; `make` installs it (npm ci --prefix tests/services/azurite)"
        raise RuntimeError(msg)
    port = free_port()
    cmd = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
           "--skipApiVersionCheck", "--disableTelemetry", "--silent"]
    with listening_process(cmd, port, data.parent / "azurite.log", "azurite", timeout_s=60) as pid:
        yield Azurite(f"http://127.0.0.1:{port}", pid)
