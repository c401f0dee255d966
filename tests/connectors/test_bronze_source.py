"""The Bronze source: a (session, contract) of ``bronze.mbo`` is a partition that gives back the
records of its contract exactly as the original source gave them, resumes after its last item,
and takes turns with the other partitions of its worker.

The Bronze tables here are real Delta tables written the way the flow writes them (``mbo_rows``),
from the simulated sample's first MBO file, committed in shuffled blocks as lanes and crashes
leave them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from connectors.bronze.catalog import BronzeSlice, bronze_slices, instruments_for, pinned_bronze
from connectors.bronze.records import read_group
from connectors.bronze.source import ENDED, BronzeReplaySource
from connectors.delta.lake import Lake
from connectors.delta.rows import mbo_rows
from connectors.delta.tables import BRONZE_DEFINITIONS, BRONZE_MBO
from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd
from operators.errors import SourceError
from operators.normalize import split_valid
from operators.options.chain import chain_key
from operators.records import MBO_DTYPE
from operators.sessions import trade_date_days

ESZ5 = InstrumentInfo(42140864, "ESZ5", "ES", "FUT", tick=250_000_000, multiplier=50.0)
ESH6 = InstrumentInfo(42140878, "ESH6", "ES", "FUT", tick=250_000_000, multiplier=50.0)


def _sample_records(sample_dir: Path) -> np.ndarray:
    import databento as db

    first = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    records = db.DBNStore.from_file(first).to_ndarray()
    return np.frombuffer(records.tobytes(), MBO_DTYPE)


def write_bronze(lake: Lake, records: np.ndarray, source: str, *, block: int = 5_000, seed: int = 0,
                 instruments: tuple[InstrumentInfo, ...] = (ESZ5, ESH6),
                 edit: Callable[[pa.Table], pa.Table] | None = None) -> None:
    """Append ``records`` as ``bronze.mbo`` rows of ``source`` (offsets 0…n-1), one commit per
    block of ``block`` records, the commits in a shuffled order; ``edit`` changes the rows first."""
    lake.ensure(BRONZE_MBO)
    chunk = RecordChunk(source, 0, "mbo", "GLBX.MDP3", records, {i.instrument_id: i for i in instruments})
    valid, letters = split_valid(chunk)  # as the flow's check step does
    assert valid is not None and not letters
    rows = mbo_rows(valid, trade_date_days(records["ts_recv"]))
    rows = edit(rows) if edit is not None else rows
    starts = np.random.default_rng(seed).permutation(np.arange(0, len(records), block))
    for start in starts:
        write_deltalake(lake.uri(BRONZE_MBO), rows.slice(int(start), block), mode="append",
                        partition_by=list(BRONZE_MBO.partition_by))


@pytest.fixture(name="sample_records", scope="module")
def fixture_sample_records(sample_dir: Path) -> np.ndarray:
    return _sample_records(sample_dir)


@pytest.fixture(name="bronze_lake", scope="module")
def fixture_bronze_lake(sample_records: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("bronze")))
    write_bronze(lake, sample_records, "dbn:glbx-mdp3-20251103.mbo.dbn.zst")
    return lake


def _source(lake: Lake, batch_records: int = 4_096) -> BronzeReplaySource:
    table = pinned_bronze(lake)
    slices = bronze_slices(table)
    return BronzeReplaySource(table, slices, instruments_for(lake, slices), batch_records=batch_records)


def _drain(part) -> list:
    items = []
    try:
        while True:
            items += part.next_batch()
    except StopIteration:
        return items


def test_a_partition_gives_its_contracts_records_in_the_original_order(bronze_lake: Lake,
                                                                        sample_records: np.ndarray) -> None:
    source = _source(bronze_lake)
    version = pinned_bronze(bronze_lake).version
    assert source.list_parts() == ["bronze:2025-11-03/ESH6", "bronze:2025-11-03/ESZ5"]

    for part_id, info in zip(source.list_parts(), (ESH6, ESZ5), strict=True):
        items = _drain(source.build_part("in", part_id, None))

        chunks, end = items[:-1], items[-1]
        want = sample_records[sample_records["instrument_id"] == info.instrument_id]
        assert np.concatenate([c.records for c in chunks]).tobytes() == want.tobytes()
        assert [c.first_record for c in chunks] == list(range(0, len(want), 4_096))
        assert all(c.source_id == part_id and c.schema == "mbo" and c.dataset == "GLBX.MDP3" for c in chunks)
        assert chunks[0].instruments[info.instrument_id].raw_symbol == info.raw_symbol
        assert isinstance(end, SourceEnd)
        assert (end.schema, end.records, end.book_keys) == ("bronze.mbo", len(want), (f"{info.instrument_id}:20395",))
        assert (end.first_ts_recv, end.last_ts_recv) == (int(want["ts_recv"].min()), int(want["ts_recv"].max()))
        assert end.path == f"{bronze_lake.uri(BRONZE_MBO)}#version={version}"
    assert source.records_read == len(sample_records)


def test_a_partition_resumes_after_the_last_item_it_emitted(bronze_lake: Lake) -> None:
    source = _source(bronze_lake)
    part_id = "bronze:2025-11-03/ESZ5"
    whole = _drain(source.build_part("in", part_id, None))
    first = source.build_part("in", part_id, None)
    first.next_batch()
    first.next_batch()
    at = first.snapshot()
    first.close()

    resumed = _drain(source.build_part("in", part_id, at))

    assert at == 2 * 4_096
    assert resumed[0].first_record == at
    assert [c.first_record for c in resumed[:-1]] == [c.first_record for c in whole[2:-1]]
    assert np.concatenate([c.records for c in resumed[:-1]]).tobytes() == \
        np.concatenate([c.records for c in whole[2:-1]]).tobytes()
    last = source.build_part("in", part_id, whole[-1].records)
    assert _drain(last) == [whole[-1]] and last.snapshot() == ENDED
    assert _drain(source.build_part("in", part_id, ENDED)) == []


def test_the_partitions_of_a_worker_take_turns_and_share_one_scan(bronze_lake: Lake,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The first partition's scan reads both contracts (one table partition); the second waits
    for its turn until the first has ended, then takes its records without a scan."""
    import connectors.bronze.reads as reads

    scans: list[list[str]] = []

    def counted(table, members):
        scans.append([m.contract_id for m in members])
        return read_group(table, members)

    monkeypatch.setattr(reads, "read_group", counted)
    source = _source(bronze_lake, batch_records=1_000_000)
    first, second = (source.build_part("in", p, None) for p in source.list_parts())

    assert isinstance(first.next_batch()[0], RecordChunk)
    assert second.next_batch() == [] and second.next_awake() is not None
    assert isinstance(first.next_batch()[0], SourceEnd)
    assert isinstance(second.next_batch()[0], RecordChunk)
    assert second.next_awake() is None
    assert scans == [["ESH6", "ESZ5"]]


def test_a_worker_gives_its_turn_to_a_partition_whose_records_are_ready(bronze_lake: Lake,
                                                                         sample_records: np.ndarray,
                                                                         tmp_path: Path) -> None:
    """Records read for a partition are held only until it takes them: it goes before a
    partition of another session that would start a new scan."""
    lake = Lake(str(tmp_path))
    days = trade_date_days(sample_records["ts_recv"])
    write_bronze(lake, sample_records, "dbn:day1")
    shifted = sample_records.copy()
    shifted["ts_recv"] += np.uint64(86_400 * 10**9)  # the same records a session later
    write_bronze(lake, shifted, "dbn:day2")
    source = _source(lake, batch_records=1_000_000)
    assert len(set(days)) == 1 and source.list_parts() == [
        "bronze:2025-11-03/ESH6", "bronze:2025-11-03/ESZ5", "bronze:2025-11-04/ESH6", "bronze:2025-11-04/ESZ5"]
    parts = {p: source.build_part("in", p, None) for p in source.list_parts()}

    assert isinstance(parts["bronze:2025-11-03/ESH6"].next_batch()[0], RecordChunk)  # reads 11-03, both contracts
    assert isinstance(parts["bronze:2025-11-03/ESH6"].next_batch()[0], SourceEnd)
    assert parts["bronze:2025-11-04/ESH6"].next_batch() == []  # 11-03 ESZ5 is ready: it goes first
    assert isinstance(parts["bronze:2025-11-03/ESZ5"].next_batch()[0], RecordChunk)


def test_partitions_listed_as_done_are_not_read(bronze_lake: Lake) -> None:
    table = pinned_bronze(bronze_lake)
    slices = bronze_slices(table)
    source = BronzeReplaySource(table, slices[1:], instruments_for(bronze_lake, slices[1:]),
                                done=(slices[0].source_id,))

    assert source.list_parts() == [s.source_id for s in slices]
    assert _drain(source.build_part("in", slices[0].source_id, 7)) == []


def test_a_slice_from_two_sources_replays_the_earlier_source_first(sample_records: np.ndarray,
                                                                   tmp_path: Path) -> None:
    """A day split over two files: the morning's file is named after the afternoon's, and its
    rows are appended last, yet its records come first."""
    lake = Lake(str(tmp_path))
    mine = sample_records[sample_records["instrument_id"] == ESH6.instrument_id]
    half = len(mine) // 2
    write_bronze(lake, mine[half:], "dbn:a-afternoon.mbo.dbn", block=700, seed=1)
    write_bronze(lake, mine[:half], "dbn:b-morning.mbo.dbn", block=700, seed=2)
    source = _source(lake)

    [part] = bronze_slices(pinned_bronze(lake))
    items = _drain(source.build_part("in", part.source_id, None))

    assert part.sources == ("dbn:a-afternoon.mbo.dbn", "dbn:b-morning.mbo.dbn")
    assert np.concatenate([c.records for c in items[:-1]]).tobytes() == mine.tobytes()


def test_the_catalog_says_in_one_sentence_what_is_missing(bronze_lake: Lake, sample_records: np.ndarray,
                                                          tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"has no bronze.mbo table to replay"):
        pinned_bronze(Lake(str(tmp_path / "empty")))
    with pytest.raises(SourceError, match=r"has no rows in sessions 2025-12-01 to 2025-12-02 to replay"):
        bronze_slices(pinned_bronze(bronze_lake), date(2025, 12, 1), date(2025, 12, 2))
    renamed = Lake(str(tmp_path / "renamed"))
    some = sample_records[sample_records["instrument_id"] == ESH6.instrument_id][:500]
    write_bronze(renamed, some, "dbn:one", instruments=(ESH6,))
    write_bronze(renamed, some, "dbn:two", instruments=(InstrumentInfo(ESH6.instrument_id, "ESM6", "ES", "FUT"),))
    with pytest.raises(SourceError, match=r"names instrument 42140878 both ESH6 and ESM6 on 2025-11-03"):
        bronze_slices(pinned_bronze(renamed))


def _definition(info: InstrumentInfo, ts_recv: int, source: str) -> dict:
    return {"instrument_id": info.instrument_id, "raw_symbol": info.raw_symbol, "underlier": info.underlier,
            "instrument_class": "F", "instrument_type": info.instrument_type, "strike_price": 0,
            "expiration": info.expiration_ns, "tick_size": info.tick, "multiplier": info.multiplier,
            "ts_recv": ts_recv, "dataset": "GLBX.MDP3", "source": source, "source_offset": 0, "ts_ingest": None}


def test_instruments_are_the_definition_in_force_at_the_session(bronze_lake: Lake, tmp_path: Path) -> None:
    """The latest definition dated the session or before (else the earliest); an instrument never
    defined is what its Bronze rows say, with no tick (as a file replay without definitions takes it)."""
    lake = Lake(str(tmp_path))
    day_before, session_day, day_after = 1762074000 * 10**9, 1762160400 * 10**9, 1762246800 * 10**9  # 04:00 ET
    rows = [_definition(InstrumentInfo(ESZ5.instrument_id, "ESZ5", "ES", "FUT", tick=t), ts, s) for t, ts, s in
            ((1, day_before, "d1"), (250_000_000, session_day, "d2"), (7, day_after, "d3"))]
    write_deltalake(lake.uri(BRONZE_DEFINITIONS), pa.Table.from_pylist(rows, BRONZE_DEFINITIONS.schema))
    slices = bronze_slices(pinned_bronze(bronze_lake))

    found = instruments_for(lake, slices)

    assert found["bronze:2025-11-03/ESZ5"][ESZ5.instrument_id].tick == 250_000_000
    assert found["bronze:2025-11-03/ESH6"][ESH6.instrument_id] == InstrumentInfo(
        ESH6.instrument_id, "ESH6", "ES", "FUT", source="symbology", venue="GLBX")
    earlier = [BronzeSlice(date(2025, 11, 1), "ESZ5", "ES", "FUT", (ESZ5.instrument_id,), ("x",), "GLBX.MDP3")]
    assert instruments_for(lake, earlier)["bronze:2025-11-01/ESZ5"][ESZ5.instrument_id].tick == 1  # the earliest


def test_a_lake_made_before_underlying_id_gains_it_and_an_option_slice_feeds_its_chain(tmp_path: Path) -> None:
    """An old ``bronze.instrument_definitions`` (no ``underlying_id``) gets the column at the next
    ``ensure``: its rows read null there (no chain), rows written since carry it, and a slice of
    an option that names its underlying feeds the chain, not a book of its own."""
    lake = Lake(str(tmp_path))
    old = pa.schema([f for f in BRONZE_DEFINITIONS.schema if f.name != "underlying_id"])
    session = 1762160400 * 10**9
    call = InstrumentInfo(7001, "ESZ5 C6800", "ES", "OPT", tick=50_000_000, multiplier=50.0,
                          underlying_id=ESZ5.instrument_id, option_right="C")
    put = InstrumentInfo(7002, "ESZ5 P6800", "ES", "OPT", tick=50_000_000, multiplier=50.0)
    before = {**_definition(put, session, "old"), "instrument_class": "P"}
    write_deltalake(lake.uri(BRONZE_DEFINITIONS), pa.Table.from_pylist([before], old))

    lake.ensure(BRONZE_DEFINITIONS)
    after = {**_definition(call, session, "new"), "instrument_class": "C", "underlying_id": ESZ5.instrument_id}
    write_deltalake(lake.uri(BRONZE_DEFINITIONS), pa.Table.from_pylist([after], BRONZE_DEFINITIONS.schema),
                    mode="append")
    slices = [BronzeSlice(date(2025, 11, 3), symbol, "ES", "OPT", (iid,), ("x",), "GLBX.MDP3")
              for symbol, iid in (("ESZ5 C6800", 7001), ("ESZ5 P6800", 7002))]
    found = instruments_for(lake, slices)

    assert lake.read(BRONZE_DEFINITIONS, ["instrument_id", "underlying_id"]).sort_by("instrument_id").to_pylist() == [
        {"instrument_id": 7001, "underlying_id": ESZ5.instrument_id}, {"instrument_id": 7002, "underlying_id": None}]
    got_call, got_put = found[slices[0].source_id][7001], found[slices[1].source_id][7002]
    assert (got_call.underlying_id, got_call.option_right) == (ESZ5.instrument_id, "C")
    assert (got_put.underlying_id, got_put.option_right) == (0, "P")
    day = slices[0].session_day
    assert slices[0].fed_keys(found[slices[0].source_id]) == (chain_key(ESZ5.instrument_id, day),)
    assert slices[1].fed_keys(found[slices[1].source_id]) == (f"7002:{day}",)
