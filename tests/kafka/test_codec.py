"""The mbo_raw message codec: DBN records, whole DBN streams and JSON envelopes, good and bad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zstandard

from connectors.dbn.reader import DbnFileReader
from connectors.kafka.codec import (
    Records,
    Undecodable,
    batches,
    decode_message,
    encode_headers,
    encode_records,
    instrument_key,
    json_envelope,
    published_ns,
)
from operators.records import MBO_DTYPE, UNDEF_PRICE
from tests.typed import one, only


def _read(sample_dir: Path, schema: str, day: int = 0) -> np.ndarray:
    reader = DbnFileReader(sorted(sample_dir.glob(f"*.{schema}.dbn.zst"))[day])
    try:
        return reader.read(1_000_000)
    finally:
        reader.close()


@pytest.fixture(name="mbo", scope="module")
def fixture_mbo(sample_dir: Path) -> np.ndarray:
    return _read(sample_dir, "mbo")[:500]


def test_mbo_records_round_trip_with_their_dataset(mbo: np.ndarray) -> None:
    pieces = decode_message(encode_records(mbo), encode_headers(3, "GLBX.MDP3", published_ns=123))
    assert len(pieces) == 1
    piece = pieces[0]
    assert isinstance(piece, Records)
    assert (piece.index, piece.schema, piece.dataset) == (0, "mbo", "GLBX.MDP3")
    assert piece.records.dtype == MBO_DTYPE
    assert piece.records.tobytes() == mbo.tobytes()


def test_schemas_share_a_message_as_consecutive_runs(sample_dir: Path, mbo: np.ndarray) -> None:
    definitions, statistics = _read(sample_dir, "definition"), _read(sample_dir, "statistics")
    value = encode_records(definitions) + encode_records(mbo[:10]) + encode_records(statistics)
    pieces = decode_message(value, encode_headers(3, "GLBX.MDP3"))
    assert [(p.index, p.schema, len(p.records)) for p in only(Records, pieces)] == [
        (0, "definition", len(definitions)),
        (len(definitions), "mbo", 10),
        (len(definitions) + 10, "statistics", len(statistics)),
    ]
    assert one(Records, pieces[0]).records.tobytes() == definitions.tobytes()
    assert one(Records, pieces[2]).records.tobytes() == statistics.tobytes()


def test_truncated_dbn_keeps_the_whole_records_and_reports_the_rest(mbo: np.ndarray) -> None:
    value = encode_records(mbo[:3])[: 56 * 2 + 20]
    pieces = decode_message(value, encode_headers(3, "X"))
    assert isinstance(pieces[0], Records) and len(one(Records, pieces[0]).records) == 2
    bad = pieces[1]
    assert isinstance(bad, Undecodable)
    assert (bad.index, bad.reason, bad.raw) == (2, "truncated_record", value[112:])
    assert "20 bytes into a 56-byte mbo record" in bad.detail


@pytest.mark.parametrize(("value", "reason"), [
    (b"\x03\x77" + bytes(40), "unknown_rtype"),
    (b"\x0a\xa0" + bytes(54), "bad_length"),
    (b"\x0e", "truncated_record"),
    (b"", "empty_message"),
])
def test_garbage_is_undecodable_with_a_reason(value: bytes, reason: str) -> None:
    pieces = decode_message(value, None)
    assert len(pieces) == 1
    assert isinstance(pieces[0], Undecodable)
    assert (pieces[0].index, one(Undecodable, pieces[0]).reason) == (0, reason)
    assert one(Undecodable, pieces[0]).raw == value


def test_one_damaged_record_inside_a_run_is_dead_lettered_alone(mbo: np.ndarray) -> None:
    damaged = bytearray(encode_records(mbo[4:5]))
    damaged[1] = 0x55  # its rtype byte
    value = encode_records(mbo[:4]) + bytes(damaged) + encode_records(mbo[5:8])
    pieces = decode_message(value, None)
    assert [(type(p).__name__, p.index) for p in pieces] == [("Records", 0), ("Undecodable", 4), ("Records", 5)]
    assert one(Undecodable, pieces[1]).reason == "unknown_rtype" and one(Undecodable, pieces[1]).raw == bytes(damaged)
    assert np.array_equal(one(Records, pieces[2]).records, mbo[5:8])

    damaged[1], damaged[0] = mbo[4]["rtype"], 3  # a damaged length byte, as the last record
    pieces = decode_message(encode_records(mbo[:4]) + bytes(damaged), None)
    assert [(type(p).__name__, p.index) for p in pieces] == [("Records", 0), ("Undecodable", 4)]
    assert one(Undecodable, pieces[1]).reason == "bad_length" and one(Undecodable, pieces[1]).raw == bytes(damaged)


def test_damaged_records_back_to_back_are_each_their_own_dead_letter(mbo: np.ndarray) -> None:
    """As in a file: every damaged slot of a run is one dead letter, however many follow each other."""
    first, second = bytearray(encode_records(mbo[4:5])), bytearray(encode_records(mbo[5:6]))
    first[1], second[0] = 0x55, 3                       # a bad rtype, then a bad length
    value = encode_records(mbo[:4]) + bytes(first) + bytes(second) + encode_records(mbo[6:9])
    pieces = decode_message(value, None)
    assert [(type(p).__name__, p.index) for p in pieces] == [
        ("Records", 0), ("Undecodable", 4), ("Undecodable", 5), ("Records", 6)]
    assert [p.reason for p in only(Undecodable, pieces[1:3])] == ["unknown_rtype", "bad_length"]
    assert one(Undecodable, pieces[1]).raw == bytes(first) and one(Undecodable, pieces[2]).raw == bytes(second)
    assert np.array_equal(one(Records, pieces[3]).records, mbo[6:9])


def test_a_bad_record_that_breaks_the_alignment_stops_the_walk_at_its_index(mbo: np.ndarray) -> None:
    value = encode_records(mbo[:4]) + b"\x0e\x55" + bytes(60) + encode_records(mbo[4:6])
    pieces = decode_message(value, None)
    assert [(type(p).__name__, p.index) for p in pieces] == [("Records", 0), ("Undecodable", 4)]
    assert one(Undecodable, pieces[1]).reason == "unknown_rtype"


def test_unsupported_version_header_is_a_dead_letter(mbo: np.ndarray) -> None:
    pieces = decode_message(encode_records(mbo[:1]), [("dbn-version", b"9")])
    assert [(p.reason) for p in pieces if isinstance(p, Undecodable)] == ["bad_dbn_version"]


def test_a_whole_dbn_stream_decodes_with_its_metadata(sample_dir: Path) -> None:
    path = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    pieces = decode_message(raw, None)
    assert len(pieces) == 1 and isinstance(pieces[0], Records)
    assert one(Records, pieces[0]).dataset == "GLBX.MDP3"
    assert one(Records, pieces[0]).records.tobytes() == _read(sample_dir, "mbo").tobytes()


def test_json_envelope_round_trips_and_bad_lines_split_the_runs(mbo: np.ndarray) -> None:
    lines = json_envelope(mbo[:6], "GLBX.MDP3").decode().splitlines()
    broken = json.loads(lines[2])
    del broken["size"], broken["side"]
    lines[2] = json.dumps(broken)
    lines[4] = "{not json"
    pieces = decode_message("\n".join(lines).encode(), None)
    assert [(type(p).__name__, p.index) for p in pieces] == [
        ("Records", 0), ("Undecodable", 2), ("Records", 3), ("Undecodable", 4), ("Records", 5)]
    missing = one(Undecodable, pieces[1])
    assert missing.reason == "json_missing_field" and missing.detail == "the JSON envelope lacks side, size"
    assert one(Undecodable, pieces[3]).reason == "bad_json"
    assert one(Records, pieces[0]).dataset == "GLBX.MDP3"
    got = np.concatenate([one(Records, pieces[i]).records for i in (0, 2, 4)])
    assert got.tobytes() == mbo[[0, 1, 3, 5]].tobytes()


def test_one_json_object_with_null_price_means_undefined() -> None:
    obj = {"ts_event": 1, "ts_recv": 2, "instrument_id": 7, "action": "C", "side": "B", "price": None,
           "size": 3, "order_id": 2**64 - 1}
    (piece,) = decode_message(json.dumps(obj).encode(), None)
    assert isinstance(piece, Records)
    r = piece.records[0]
    assert (int(r["price"]), int(r["order_id"]), r["action"], int(r["length"]), int(r["rtype"])) == (
        UNDEF_PRICE, 2**64 - 1, b"C", 14, 0xA0)


def test_json_with_a_wrong_type_is_a_dead_letter() -> None:
    obj = {"ts_event": 1, "ts_recv": 2, "instrument_id": -7, "action": "A", "side": "B", "price": 1,
           "size": 3, "order_id": 1}
    (piece,) = decode_message(json.dumps(obj).encode(), None)
    assert isinstance(piece, Undecodable) and piece.reason == "json_bad_field"


def test_publish_time_header_round_trips() -> None:
    headers = encode_headers(3, "GLBX.MDP3", published_ns=1_700_000_000_123_456_789)
    assert published_ns(headers) == 1_700_000_000_123_456_789
    assert published_ns([]) is None
    assert instrument_key(42140864) == b"42140864"


def test_batches_hold_one_instrument_within_a_window_and_a_size() -> None:
    r = np.zeros(10, MBO_DTYPE)
    r["ts_recv"] = [0, 1, 2, 3, 4, 10, 11, 12, 30, 31]
    r["instrument_id"] = [1, 2, 1, 1, 2, 1, 1, 1, 2, 2]
    r["order_id"] = np.arange(10)
    got = [(iid, b["order_id"].tolist()) for iid, b in batches(r, window_ns=10, max_bytes=56 * 2)]
    assert got == [(1, [0, 2]), (1, [3]), (2, [1, 4]), (1, [5, 6]), (1, [7]), (2, [8, 9])]
