"""DbnReplaySource contract: official files decode exactly, resume, faults, dataflow, inputs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import bytewax.operators as op
import databento as db
import databento_dbn as dbn
import numpy as np
import pytest
import zstandard
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, cluster_main, run_main

from connectors.dbn.reader import record_dtype
from connectors.dbn.source import DbnReplaySource, SourceError, resolve_inputs
from operators.chunks import InstrumentInfo, RecordChunk, SourceFault
from operators.instruments import (
    instrument_from_symbology,
    instrument_type_of,
    parse_future_symbol,
    underlier_of,
)
from operators.records import MBO_DTYPE, structured_fields
from tests.connectors.dbn_files import START_NS, definition_records, mbo_records, metadata_bytes, write_dbn
from tests.typed import one, only

OFFICIAL_FILES = [
    "test_data.mbo.dbn",
    "test_data.mbo.v1.dbn.zst",
    "test_data.mbo.v2.dbn.zst",
    "test_data.mbo.v3.dbn",
    "test_data.mbo.v3.dbn.zst",
    "test_data.definition.dbn",
    "test_data.definition.v1.dbn.zst",
    "test_data.definition.v2.dbn.zst",
    "test_data.definition.v3.dbn.zst",
    "test_data.statistics.dbn",
]


def drain(src: DbnReplaySource, part_key: str | None = None, resume: int | None = None) -> list:
    part = src.build_part("in", part_key or src.list_parts()[0], resume)
    items: list = []
    try:
        while True:
            items += part.next_batch()
    except StopIteration:
        pass
    part.close()
    return items


def records_of(items: list) -> np.ndarray:
    return np.concatenate([c.records for c in items if isinstance(c, RecordChunk)])


def upgraded_reference(path: Path) -> np.ndarray:
    """Databento's own decode of ``path`` upgraded to the current DBN version, as an array."""
    store = db.DBNStore.from_file(path)
    raw = b"".join(bytes(r) for r in store)
    return np.frombuffer(raw, dtype=record_dtype(str(store.schema), dbn.DBN_VERSION))


# --- official files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", OFFICIAL_FILES)
def test_official_file_gives_databentos_records(name: str, dbn_path: Callable[[str], Path]) -> None:
    path = dbn_path(name)
    items = drain(DbnReplaySource([path], batch_records=1))
    got = records_of(items)
    assert [c.first_record for c in items] == [0, 1]
    assert all(isinstance(c, RecordChunk) and len(c.records) == 1 for c in items)
    expected = upgraded_reference(path)
    assert got.dtype == expected.dtype
    for field in structured_fields(expected.dtype):
        np.testing.assert_array_equal(got[field], expected[field], err_msg=field)
    # fields that exist unchanged in the file's own layout equal DBNStore.to_ndarray exactly
    as_written = db.DBNStore.from_file(path).to_ndarray()
    shared = [f for f in structured_fields(as_written.dtype)
              if f in structured_fields(got.dtype) and got.dtype[f] == as_written.dtype[f]]
    assert len(shared) >= 10
    for field in shared:
        if field.startswith("_") or field == "length":  # length grows with the layout
            continue
        np.testing.assert_array_equal(got[field], as_written[field], err_msg=field)


@pytest.mark.parametrize("name", [n for n in OFFICIAL_FILES if ".mbo." in n] + ["test_data.definition.v3.dbn.zst"])
def test_current_layout_files_equal_to_ndarray_bytes(name: str, dbn_path: Callable[[str], Path]) -> None:
    """MBO (same layout in every version) and v3 files: byte-identical to DBNStore.to_ndarray."""
    path = dbn_path(name)
    got = records_of(drain(DbnReplaySource([path])))
    assert got.tobytes() == db.DBNStore.from_file(path).to_ndarray().tobytes()


@pytest.mark.parametrize("name", [n for n in OFFICIAL_FILES if ".mbo." in n])
def test_official_mbo_exact_values(name: str, dbn_path: Callable[[str], Path]) -> None:
    [chunk] = drain(DbnReplaySource([dbn_path(name)]))
    assert chunk.source_id == f"dbn:{name}"
    assert (chunk.schema, chunk.dataset, chunk.first_record) == ("mbo", "GLBX.MDP3", 0)
    assert chunk.records.dtype == MBO_DTYPE
    r = chunk.records
    assert r["instrument_id"].tolist() == [5482, 5482]
    assert r["order_id"].tolist() == [647784973705, 647784973631]
    assert r["price"].tolist() == [3722750000000, 3723000000000]
    assert r["action"].tolist() == [b"C", b"C"]
    assert r["side"].tolist() == [b"A", b"A"]
    assert r["ts_recv"].tolist() == [1609160400000704060, 1609160400000711344]
    assert r["sequence"].tolist() == [1170352, 1170353]
    # no sibling definitions for GLBX.MDP3 in that directory: symbology from the metadata
    assert chunk.instruments == {
        5482: InstrumentInfo(5482, "ESH1", "ES", "FUT", tick=0, multiplier=0.0, source="symbology", venue="GLBX")
    }


@pytest.mark.parametrize("name", [n for n in OFFICIAL_FILES if ".definition." in n])
def test_official_definitions_map_to_instruments(name: str, dbn_path: Callable[[str], Path]) -> None:
    items = drain(DbnReplaySource([dbn_path(name)]))
    [chunk] = items
    assert chunk.schema == "definition"
    assert chunk.dataset == "XNAS.ITCH"
    assert chunk.records["instrument_id"].tolist() == [6819, 6830]
    assert chunk.records["raw_symbol"].tolist() == [b"MSFT", b"MSFT"]
    assert chunk.records["ts_recv"].tolist() == [1633331241618029519, 1633417621703120931]
    assert chunk.records.dtype.itemsize == 520  # always the v3 layout
    msft = InstrumentInfo(0, raw_symbol="MSFT", underlier="MSFT", instrument_type="STK", tick=0, multiplier=0.0,
                          venue="XNAS")  # a Nasdaq feed: the US equities calendar
    assert chunk.instruments == {
        6819: replace(msft, instrument_id=6819),
        6830: replace(msft, instrument_id=6830),
    }


def test_official_statistics_upgraded_to_current_layout(dbn_path: Callable[[str], Path]) -> None:
    [chunk] = drain(DbnReplaySource([dbn_path("test_data.statistics.dbn")]))
    r = chunk.records
    assert chunk.schema == "statistics"
    assert r.dtype.itemsize == 80  # v2 files hold 64-byte records; v3 widened quantity to i64
    assert r["instrument_id"].tolist() == [146945, 146945]
    assert r["price"].tolist() == [100000000000, 100000000000]
    assert r["stat_type"].tolist() == [7, 5]
    assert r["quantity"].tolist() == [dbn.UNDEF_STAT_QUANTITY] * 2  # v2's i32 sentinel, upgraded
    assert chunk.instruments == {}  # stype_in instrument_id: no symbology to fall back on


def test_same_instruments_dict_on_every_chunk(dbn_path: Callable[[str], Path]) -> None:
    a, b = drain(DbnReplaySource([dbn_path("test_data.mbo.v3.dbn.zst")], batch_records=1))
    assert a.instruments is b.instruments


def test_unsupported_schema_rejected_at_construction(dbn_path: Callable[[str], Path]) -> None:
    path = dbn_path("test_data.mbp-10.v3.dbn.zst")
    with pytest.raises(SourceError) as err:
        DbnReplaySource([path])
    assert str(err.value) == (f"{path} holds mbp-10 records; "
                              "the DBN replay reads only mbo, definition, statistics, cmbp-1 files.")


# --- instruments from sibling definition files -----------------------------------------------


def test_sibling_definitions_give_ticks_and_multipliers(tmp_path: Path) -> None:
    mbo = write_dbn(tmp_path / "glbx-mdp3-20231114.mbo.dbn.zst", mbo_records(3), symbols={"ESZ3": 42})
    defs = definition_records(
        [
            dict(
                instrument_id=42,
                ts_recv=START_NS,
                raw_symbol=b"ESZ3",
                asset=b"ES",
                instrument_class=b"F",
                min_price_increment=250_000_000,
                unit_of_measure_qty=50_000_000_000,
                expiration=1_702_647_000_000_000_000,
            )
        ]
    )
    write_dbn(tmp_path / "glbx-mdp3-20231114.definition.dbn.zst", defs,
              schema=dbn.Schema.DEFINITION)  # type: ignore[arg-type]  # databento_dbn's stub: members as `str`
    [chunk] = drain(DbnReplaySource([mbo]))
    assert chunk.instruments == {
        42: InstrumentInfo(42, "ESZ3", "ES", "FUT", 250_000_000, 50.0, 1_702_647_000_000_000_000, 0, "definition",
                           venue="GLBX")
    }


# --- resume ----------------------------------------------------------------------------------


def test_partition_resumes_after_last_record(dbn_path: Callable[[str], Path]) -> None:
    path = dbn_path("test_data.mbo.v3.dbn.zst")
    src = DbnReplaySource([path], batch_records=1)
    part = src.build_part("in", src.list_parts()[0], None)
    [first] = only(RecordChunk, part.next_batch())
    assert part.snapshot() == 1
    resumed = src.build_part("in", src.list_parts()[0], part.snapshot())
    [second] = only(RecordChunk, resumed.next_batch())
    assert second.first_record == first.first_record + 1 == 1
    assert second.records["order_id"].tolist() == [647784973631]
    with pytest.raises(StopIteration):
        resumed.next_batch()
    assert resumed.snapshot() == 2


@pytest.mark.parametrize("resume_at", [0, 192, 200, 999, 1000, 1500])
def test_resume_on_generated_file(tmp_path: Path, resume_at: int) -> None:
    ref = mbo_records(1000)
    path = write_dbn(tmp_path / "gen.mbo.dbn.zst", ref, symbols={"ESZ3": 42})
    src = DbnReplaySource([path], batch_records=64)
    items = drain(src, resume=resume_at)
    start = min(resume_at, 1000)
    expected_firsts = list(range(start, 1000, 64))
    assert [c.first_record for c in items] == expected_firsts
    got = records_of(items) if items else np.empty(0, MBO_DTYPE)
    assert got.tobytes() == ref[start:].tobytes()


def test_snapshot_after_three_batches_then_resume(tmp_path: Path) -> None:
    ref = mbo_records(1000)
    path = write_dbn(tmp_path / "gen.mbo.dbn", ref, symbols={"ESZ3": 42})
    src = DbnReplaySource([path], batch_records=64)
    part = src.build_part("in", "dbn:gen.mbo.dbn", None)
    for _ in range(3):
        part.next_batch()
    state = part.snapshot()
    part.close()
    rest = drain(src, resume=state)
    assert state == 192
    assert rest[0].first_record == 192
    assert records_of(rest).tobytes() == ref[192:].tobytes()


# --- faults ----------------------------------------------------------------------------------


def test_truncated_plain_file_ends_with_fault(tmp_path: Path) -> None:
    ref = mbo_records(11)
    path = tmp_path / "cut.mbo.dbn"
    path.write_bytes(metadata_bytes() + ref.tobytes()[: 10 * 56 + 20])
    items = drain(DbnReplaySource([path], batch_records=4))
    assert [type(i).__name__ for i in items] == ["RecordChunk"] * 3 + ["SourceFault"]
    assert [c.first_record for c in items[:3]] == [0, 4, 8]
    assert records_of(items).tobytes() == ref[:10].tobytes()
    assert items[3] == SourceFault(
        "dbn:cut.mbo.dbn", 10, "truncated_file", "the file ends 20 bytes into a record of 56 bytes",
        ref.tobytes()[560:580],
    )


def test_zstd_cut_inside_a_frame_ends_with_fault(tmp_path: Path) -> None:
    ref = mbo_records(20)
    c = zstandard.ZstdCompressor()
    frame1 = c.compress(metadata_bytes() + ref[:10].tobytes())
    frame2 = c.compress(ref[10:].tobytes())
    path = tmp_path / "cut.mbo.dbn.zst"
    path.write_bytes(frame1 + frame2[: len(frame2) // 2])
    items = drain(DbnReplaySource([path]))
    assert len(items) == 2
    assert records_of(items).tobytes() == ref[:10].tobytes()
    assert items[1] == SourceFault(
        "dbn:cut.mbo.dbn.zst", 10, "truncated_compression",
        f"the file ends inside the zstd block at byte {len(frame1) + 7}; the compressed bytes from byte {len(frame1)} "
        "to the end of the file are kept as they are (whole records before them: 10)",  # 7: the frame header
        frame2[: len(frame2) // 2],
    )


def test_zstd_frame_holding_a_partial_record(tmp_path: Path) -> None:
    ref = mbo_records(11)
    path = tmp_path / "cut.mbo.dbn.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(metadata_bytes() + ref.tobytes()[:580]))
    items = drain(DbnReplaySource([path]))
    assert records_of(items).tobytes() == ref[:10].tobytes()
    assert items[-1] == SourceFault(
        "dbn:cut.mbo.dbn.zst", 10, "truncated_file", "the file ends 20 bytes into a record of 56 bytes",
        ref.tobytes()[560:580],
    )


def test_garbage_tail_passes_whole_records_on_and_faults_the_rest(tmp_path: Path) -> None:
    ref = mbo_records(5)
    garbage = b"\xff" * 100
    path = write_dbn(tmp_path / "tail.mbo.dbn", ref, tail=garbage)
    items = drain(DbnReplaySource([path]))
    assert records_of(items).tobytes() == ref.tobytes()
    fault = items[-1]
    assert (fault.source_id, fault.record_offset, fault.reason) == ("dbn:tail.mbo.dbn", 5, "garbage")
    assert fault.raw == garbage
    assert fault.detail == "100 bytes at byte 280 of the records are not mbo records, to the end of the file"


def test_garbage_after_zstd_frame_is_corrupt_compression(tmp_path: Path) -> None:
    ref = mbo_records(5)
    path = tmp_path / "tail.mbo.dbn.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(metadata_bytes() + ref.tobytes()) + b"not zstd at all")
    items = drain(DbnReplaySource([path]))
    assert records_of(items).tobytes() == ref.tobytes()
    fault = items[-1]
    assert (fault.record_offset, fault.reason, fault.raw) == (5, "corrupt_compression", b"not zstd at all")
    frame = path.stat().st_size - len(b"not zstd at all")
    assert fault.detail == (f"the bytes at {frame} do not start a zstd frame; "
                            f"the compressed bytes from byte {frame} to "
                            "the end of the file are kept as they are (whole records before them: 5)")


@pytest.mark.parametrize("name", ["bad.mbo.dbn", "bad.mbo.dbn.zst"])
def test_record_with_a_damaged_header_is_a_fault_and_reading_goes_on(tmp_path: Path, name: str) -> None:
    ref = mbo_records(8)
    bad = ref.copy()
    bad[3]["rtype"] = 0x77
    path = write_dbn(tmp_path / name, bad)
    items = drain(DbnReplaySource([path], batch_records=2))
    assert [(type(i).__name__, getattr(i, "first_record", getattr(i, "record_offset", None))) for i in items] == [
        ("RecordChunk", 0), ("RecordChunk", 2), ("SourceFault", 3), ("RecordChunk", 4), ("RecordChunk", 6)]
    assert records_of(items).tobytes() == ref[:3].tobytes() + ref[4:].tobytes()
    assert (items[2].reason, items[2].raw) == ("unknown_rtype", bad[3:4].tobytes())


def test_corrupt_definition_record_is_a_fault_and_reading_goes_on(tmp_path: Path) -> None:
    ref = definition_records([{"instrument_id": i, "raw_symbol": f"ESH{i}".encode()} for i in range(1, 5)])
    bad = ref.copy()
    bad[2]["rtype"] = 0x77
    path = write_dbn(tmp_path / "bad.definition.dbn", bad,
                     schema=dbn.Schema.DEFINITION)  # type: ignore[arg-type]  # databento_dbn's stub: members as `str`
    items = drain(DbnReplaySource([path]))
    assert records_of(items).tobytes() == ref[:2].tobytes() + ref[3:].tobytes()
    [fault] = [i for i in items if isinstance(i, SourceFault)]
    assert (fault.record_offset, fault.reason, fault.raw) == (2, "unknown_rtype", bad[2:3].tobytes())


@pytest.mark.parametrize("content", [b"hello, this is not a DBN file at all", b""])
@pytest.mark.parametrize("compress", [False, True])
def test_not_a_dbn_file_is_a_bad_header_fault(tmp_path: Path, content: bytes, compress: bool) -> None:
    path = tmp_path / "junk.dbn"
    path.write_bytes(zstandard.ZstdCompressor().compress(content) if compress else content)
    items = drain(DbnReplaySource([path]))
    assert items == [  # the file's bytes as they are: nothing of it is lost
        SourceFault(
            "dbn:junk.dbn", 0, "bad_header", "not a DBN file: it does not start with the 'DBN' magic bytes",
            path.read_bytes()
        )
    ]


def test_fault_has_a_position_of_its_own(tmp_path: Path) -> None:
    ref = mbo_records(3)
    path = write_dbn(tmp_path / "t.mbo.dbn", ref, tail=b"\x00" * 10)
    src = DbnReplaySource([path])
    part = src.build_part("in", "dbn:t.mbo.dbn", None)
    part.next_batch()
    assert part.snapshot() == 3
    [fault] = only(SourceFault, part.next_batch())
    assert (fault.record_offset, part.snapshot()) == (3, 4)
    assert drain(src, resume=3) == [fault]  # a snapshot taken before the fault gives it again
    assert drain(src, resume=4) == []


# --- pacing (injected clock, no wall-clock asserts) ------------------------------------------


def test_speed_releases_records_by_ts_recv(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "p.mbo.dbn", mbo_records(10, step_ns=10_000_000))  # 10 ms apart
    now = [100.0]
    src = DbnReplaySource([path], speed=2.0, clock=lambda: now[0])
    part = src.build_part("in", "dbn:p.mbo.dbn", None)
    [a] = only(RecordChunk, part.next_batch())
    assert (a.first_record, len(a.records)) == (0, 1)
    assert part.next_awake() is not None
    assert part.next_batch() == []  # nothing due yet
    now[0] = 100.012  # 12 ms of wall time = 24 ms of data at 2x
    [b] = only(RecordChunk, part.next_batch())
    assert (b.first_record, len(b.records)) == (1, 2)
    now[0] = 200.0
    [c] = only(RecordChunk, part.next_batch())
    assert (c.first_record, len(c.records)) == (3, 7)
    assert part.next_awake() is None
    with pytest.raises(StopIteration):
        part.next_batch()


# --- in a dataflow ---------------------------------------------------------------------------


def _order_rows(item: RecordChunk | SourceFault) -> list[tuple[str, int, int]]:
    c = one(RecordChunk, item)  # these files are sound: chunks only
    return [(c.source_id, c.first_record + i, int(o)) for i, o in enumerate(c.records["order_id"])]


def _flow(src: DbnReplaySource, out: list) -> Dataflow:
    flow = Dataflow("dbn_replay_test")
    items = op.input("dbn_in", flow, src)
    rows = op.flat_map(
        "rows",
        items,
        _order_rows,
    )
    op.output("out", rows, TestingSink(out))
    return flow


def test_dataflow_reads_every_record(tmp_path: Path, dbn_path: Callable[[str], Path]) -> None:
    official = shutil.copy(dbn_path("test_data.mbo.v3.dbn.zst"), tmp_path / "a.mbo.dbn.zst")
    gen = write_dbn(tmp_path / "b.mbo.dbn.zst", mbo_records(1000), symbols={"ESZ3": 42})
    paths = resolve_inputs([str(tmp_path)])
    expected = sorted(
        [("dbn:a.mbo.dbn.zst", i, o) for i, o in enumerate([647784973705, 647784973631])]
        + [("dbn:b.mbo.dbn.zst", i, i + 1) for i in range(1000)]
    )
    assert paths == [Path(official).resolve(), gen.resolve()]

    one: list = []
    run_main(_flow(DbnReplaySource(paths, batch_records=100), one))
    assert sorted(one) == expected

    two: list = []
    cluster_main(_flow(DbnReplaySource(paths, batch_records=100), two), [], 0, worker_count_per_proc=2)
    assert sorted(two) == expected


# --- resolve_inputs --------------------------------------------------------------------------


def test_resolve_inputs_dirs_globs_files(tmp_path: Path) -> None:
    for name in ["b.mbo.dbn.zst", "a.mbo.dbn", "notes.txt", "sub/c.mbo.dbn"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    a, b = (tmp_path / "a.mbo.dbn").resolve(), (tmp_path / "b.mbo.dbn.zst").resolve()
    assert resolve_inputs([str(tmp_path)]) == [a, b]
    assert resolve_inputs([str(tmp_path / "*.zst"), str(b), tmp_path]) == [a, b]
    assert resolve_inputs([str(tmp_path / "**" / "*.dbn")]) == [a, (tmp_path / "sub" / "c.mbo.dbn").resolve()]
    assert resolve_inputs([tmp_path / "notes.txt"]) == [(tmp_path / "notes.txt").resolve()]


def test_resolve_inputs_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError) as err:
        resolve_inputs([str(tmp_path / "missing.dbn")])
    assert str(err.value) == f"The DBN input {tmp_path / 'missing.dbn'} does not exist."
    with pytest.raises(SourceError) as err:
        resolve_inputs([str(tmp_path / "*.dbn")])
    assert str(err.value) == f"No DBN file matches the pattern {str(tmp_path / '*.dbn')!r}."
    with pytest.raises(SourceError) as err:
        resolve_inputs([str(tmp_path / "empty")])
    assert str(err.value) == f"The directory {tmp_path / 'empty'} holds no .dbn or .dbn.zst file."


def test_partition_keys_are_stable_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    p1 = write_dbn(tmp_path / "d2" / "x.mbo.dbn", mbo_records(1))
    p2 = write_dbn(tmp_path / "d1" / "x.mbo.dbn", mbo_records(1))
    assert DbnReplaySource([p1, p2], root=tmp_path).list_parts() == ["dbn:d1/x.mbo.dbn", "dbn:d2/x.mbo.dbn"]
    with pytest.raises(SourceError):
        DbnReplaySource([p1, p2])


# --- operators.instruments -------------------------------------------------------------------


def test_parse_future_symbol() -> None:
    assert parse_future_symbol("ESZ5") == ("ES", "Z", 5)
    assert parse_future_symbol("ESH26") == ("ES", "H", 26)
    assert parse_future_symbol("MESM4") == ("MES", "M", 4)
    assert parse_future_symbol("6EU5") == ("6E", "U", 5)
    assert parse_future_symbol("MSFT") is None
    assert parse_future_symbol("ESZ5-ESH6") is None
    assert parse_future_symbol("ESA5") is None


def test_symbol_shapes() -> None:
    assert [instrument_type_of(s) for s in ["ESZ5", "ESZ5 C4500", "ESZ5-ESH6", "MSFT"]] == [
        "FUT",
        "OPT",
        "SPREAD",
        "UNKNOWN",
    ]
    assert instrument_type_of("MSFT", b"K") == "STK"
    assert instrument_type_of("ESZ5-ESH6", b"S") == "SPREAD"
    assert [underlier_of(s) for s in ["ESZ5", "ESZ5 P4000", "ESZ5-ESH6", "MSFT"]] == ["ES", "ES", "ES", "MSFT"]
    assert instrument_from_symbology(5482, "ESH1") == InstrumentInfo(5482, "ESH1", "ES", "FUT", source="symbology")
