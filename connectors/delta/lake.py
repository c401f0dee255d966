"""Where the lake lives and how its tables are opened and created."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, Field, QueryBuilder, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.schema import PrimitiveType

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
        table = self.open(spec)
        if table is not None:
            _add_missing_columns(table, spec)
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

    def count(self, spec: TableSpec) -> int:
        """Rows in the table, from the Delta log's file statistics (no data file is read)."""
        table = self.open(spec)
        return 0 if table is None else rows_in(table)

    def read(self, spec: TableSpec, columns: list[str] | None = None, where: str | None = None) -> pa.Table:
        """The whole table (or the named columns); an empty table if it does not exist.

        ``where`` is an optional SQL predicate (delta-rs/DataFusion syntax, column names in double
        quotes, string literals in single quotes with ``'`` doubled) that filters the rows.

        Reads go through delta-rs's own query engine. ``DeltaTable.to_pyarrow_table`` on a
        partitioned table leaves Arrow I/O threads calling into Python, and the interpreter then
        aborts at exit ("terminate called without an active exception") about half the time.
        """
        names = columns or spec.schema.names
        target = pa.schema([spec.schema.field(c) for c in names])
        table = self.open(spec)
        if table is None:
            return target.empty_table()
        select = ", ".join(f'"{c}"' for c in names)
        sql = f"select {select} from t" + (f" where {where}" if where else "")
        result = pa.table(QueryBuilder().register("t", table).execute(sql).read_all())
        if result.num_rows == 0:
            return target.empty_table()
        return result.cast(target)


def _add_missing_columns(table: DeltaTable, spec: TableSpec) -> None:
    """A table made before a column joined its spec gets the column (null in its old rows), so
    appends of the spec's rows fit it. Columns are only ever added at the end of a spec."""
    have = {f.name for f in table.schema().fields}
    missing = [f for f in spec.schema if f.name not in have]
    if missing:
        table.alter.add_columns([Field(f.name, PrimitiveType(_DELTA_TYPES[f.type]), nullable=True) for f in missing])


_DELTA_TYPES = {pa.int64(): "long", pa.int32(): "integer", pa.float64(): "double", pa.string(): "string",
                pa.bool_(): "boolean"}


def rows_in(table: DeltaTable) -> int:
    """Rows in the loaded version of ``table``, from the Delta log's file statistics."""
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pc.sum(actions["num_records"]).as_py() or 0) if actions.num_rows else 0
