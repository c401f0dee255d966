"""MBO records rebuilt from Bronze-style columns are byte for byte the records they came from."""

from __future__ import annotations

import numpy as np

from operators.mbo_columns import MBO_FIELDS, MBO_WORDS, pack_columns, records_in_order
from operators.records import MBO_DTYPE


def _records() -> np.ndarray:
    r = np.zeros(4, MBO_DTYPE)
    r["length"], r["rtype"] = 14, 0xA0
    r["publisher_id"] = [1, 65_535, 2, 3]
    r["instrument_id"] = [42140864, 2**32 - 1, 7, 8]
    r["ts_event"] = [1, 2**64 - 2, 3, 4]
    r["order_id"] = [2**63 + 5, 0, 2**64 - 1, 17]  # u64 ids above i64 max come back from their i64 bits
    r["price"] = [5_000_250_000_000, -1, np.iinfo(np.int64).max, 0]
    r["size"] = [1, 2**32 - 1, 0, 3]
    r["flags"] = [128, 32 | 8, 0, 255]
    r["channel_id"] = [0, 255, 1, 2]
    r["action"] = [b"A", b"C", b"T", b"R"]
    r["side"] = [b"B", b"A", b"N", b"B"]
    r["ts_recv"] = [10, 2**63 + 1, 30, 40]
    r["ts_in_delta"] = [-5, 2**31 - 1, -(2**31), 0]
    r["sequence"] = [0, 2**32 - 1, 9, 10]
    return r


def _bronze_columns(r: np.ndarray) -> dict[str, np.ndarray]:
    """The columns as ``bronze.mbo`` stores and the Bronze reader gets them: signed, widened."""
    wide = {"publisher_id": np.int32, "instrument_id": np.int64, "size": np.int64, "flags": np.int32,
            "channel_id": np.int32, "ts_in_delta": np.int32, "sequence": np.int64}
    columns = {name: r[name].astype(dtype) for name, dtype in wide.items()}
    columns |= {name: r[name].view(np.int64) for name in ("ts_event", "order_id", "ts_recv")}
    columns["price"] = r["price"].copy()
    columns |= {name: r[name].view(np.uint8).astype(np.int32) for name in ("action", "side")}
    assert set(columns) == set(MBO_FIELDS)
    return columns


def test_records_rebuilt_from_columns_are_the_same_bytes() -> None:
    want = _records()
    words = np.zeros((len(want), MBO_WORDS), np.uint64)

    pack_columns(words, 0, _bronze_columns(want))
    got = records_in_order(words, np.arange(len(want)))

    assert got.dtype == MBO_DTYPE
    assert got.tobytes() == want.tobytes()
    assert int(got["order_id"][0]) == 2**63 + 5 and int(got["ts_in_delta"][2]) == -(2**31)


def test_records_are_packed_at_an_offset_and_gathered_in_the_given_order() -> None:
    want = np.concatenate([_records()] * 3)  # 12 records: a permutation with cycles of several lengths
    words = np.zeros((len(want) + 2, MBO_WORDS), np.uint64)
    shuffled = np.random.default_rng(5).permutation(len(want))

    pack_columns(words, 2, _bronze_columns(want[shuffled]))
    got = records_in_order(words[2:], np.argsort(shuffled))

    assert got.tobytes() == want.tobytes()
    assert not words[:2].any()
