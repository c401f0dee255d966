"""Where the lake lives and how its tables are opened and created."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from connectors.delta.tables import ALL_TABLES, TableSpec


@dataclass(frozen=True, slots=True)
class Lake:
    """A lake root: a local path or any URI delta-rs accepts (``s3://``, ``abfss://`` …)."""

    root: str
    storage_options: dict[str, str] = field(default_factory=dict)

    def uri(self, spec: TableSpec) -> str:
        return f"{self.root.rstrip('/')}/{spec.relative_path}"

    def open(self, spec: TableSpec) -> DeltaTable | None:
        """The table, or ``None`` when it has not been created yet."""
        try:
            return DeltaTable(self.uri(spec), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    def ensure(self, spec: TableSpec) -> None:
        """Create an empty table with the spec's schema and partitioning if it does not exist.

        Creating every table before the flow starts means workers only ever append, and
        concurrent appends under distinct app ids never conflict.
        """
        if self.open(spec) is not None:
            return
        try:
            write_deltalake(
                self.uri(spec),
                spec.schema.empty_table(),
                mode="append",
                partition_by=list(spec.partition_by) or None,
                storage_options=self.storage_options or None,
            )
        except Exception:  # another process created it first: fine if it now opens
            if self.open(spec) is None:
                raise

    def ensure_all(self, specs: tuple[TableSpec, ...] = ALL_TABLES) -> None:
        for spec in specs:
            self.ensure(spec)

    def read(self, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
        """The whole table (or the named columns); an empty table if it does not exist."""
        table = self.open(spec)
        if table is None:
            return spec.schema.empty_table() if columns is None else spec.schema.empty_table().select(columns)
        return table.to_pyarrow_table(columns=columns)
