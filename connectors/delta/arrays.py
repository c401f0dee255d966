"""numpy structured rows → Arrow columns that Delta can store.

Delta has no unsigned integers and no fixed-size lists: unsigned fields widen to the next signed
type (u8 is reinterpreted as i8, keeping its bits), booleans stay booleans, and sub-array fields
(a row's vector, a surface's offsets) become ``list<element>`` columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from operators.records import structured_fields

_WIDER = {1: np.int16, 2: np.int32, 4: np.int64}


def signed(column: np.ndarray) -> np.ndarray:
    """A numpy column in a type Delta can hold."""
    if column.dtype.kind == "u":
        return column.view(np.int64) if column.dtype.itemsize == 8 else column.astype(_WIDER[column.dtype.itemsize])
    return column


def arrow_type(dtype: np.dtype) -> pa.DataType:
    """The Delta-compatible Arrow type of one numpy field (sub-arrays become lists)."""
    if dtype.subdtype is not None:
        base, _ = dtype.subdtype
        return pa.list_(arrow_type(base))
    if dtype.kind == "u":
        return pa.from_numpy_dtype(signed(np.zeros(0, dtype)).dtype)
    if dtype.kind == "S":
        return pa.string()
    return pa.from_numpy_dtype(dtype)


def column(rows: np.ndarray, name: str) -> pa.Array:
    values = rows[name]
    if values.ndim == 2:
        flat = pa.array(signed(np.ascontiguousarray(values)).reshape(-1))
        offsets = pa.array(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, flat)
    if values.dtype.kind == "S":
        return pa.array(values, pa.binary()).cast(pa.string())
    return pa.array(signed(values))


def struct_fields(dtype: np.dtype, skip: tuple[str, ...] = ()) -> list[pa.Field]:
    """Arrow fields for every field of a structured dtype (in order), except ``skip``."""
    return [pa.field(name, arrow_type(t)) for name, (t, _) in structured_fields(dtype).items() if name not in skip]


def struct_columns(rows: np.ndarray, skip: tuple[str, ...] = ()) -> dict[str, pa.Array]:
    return {name: column(rows, name) for name in structured_fields(rows.dtype) if name not in skip}
