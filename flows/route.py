"""The stateless steps between the source and the books: validate, then split by book.

Module-level functions (not lambdas), so that the flow can be pickled for multi-process runs.
"""

from __future__ import annotations

import numpy as np

from connectors.dbn.chains import open_interest_rows
from flows.items import BookSlice, ChainEnd, Checked, CheckedChunk, OptionSlice, PartitionNews, book_key
from operators.calendar import calendar_of
from operators.chunks import RecordChunk, SourceEnd, SourceFault, SourceTick
from operators.grouping import among, group_rows, take_records
from operators.instruments import option_ids, underlying_ids
from operators.normalize import split_valid
from operators.options.chain import chain_key, is_chain_key


def check(item: RecordChunk | SourceFault | SourceEnd | SourceTick) -> Checked:
    """Validate MBO chunks and date their records; pass every other item through."""
    if not isinstance(item, RecordChunk) or item.schema != "mbo":
        return item
    valid, letters = split_valid(item)
    calendar = calendar_of(item.dataset)
    days = calendar.trade_date_days(valid.records["ts_recv"]) if valid is not None else np.zeros(0, np.int32)
    return CheckedChunk(item, valid, days, tuple(letters))


def book_slices(item: Checked) -> list[tuple[str, BookSlice | SourceEnd | SourceTick]]:
    """Split a checked chunk by (contract, session); fan a file's end, or a live partition's
    tick, out to the books it fed.

    All come out of this one step so a book always sees its file's end (and a tick) after the
    records that came before it.
    """
    if isinstance(item, SourceEnd | SourceTick):
        return [(key, item) for key in item.book_keys if not is_chain_key(key)]
    if not isinstance(item, CheckedChunk) or item.valid is None:
        return []
    records, days = _current(item)
    options = among(records["instrument_id"], option_ids(item.chunk.instruments))
    if options.any():  # an option's records go to its chain (chain_slices)
        keep = np.flatnonzero(~options)
        records, days = take_records(records, keep), days[keep]
    pair = (records["instrument_id"].astype(np.int64) << 32) | days.astype(np.int64)
    groups = group_rows(pair)
    out: list[tuple[str, BookSlice | SourceEnd | SourceTick]] = []
    for value, index in groups:
        iid, day = value >> 32, value & 0xFFFFFFFF
        info = item.chunk.instruments[iid]
        out.append((book_key(iid, day), BookSlice(item.chunk.source_id, take_records(records, index), info, day)))
    return out


def chain_slices(item: Checked) -> list[tuple[str, OptionSlice | ChainEnd]]:
    """Split a checked chunk's option records by (underlying, session): each chain gets its
    options' records; a source's end goes to the chains it fed."""
    if isinstance(item, SourceEnd):
        return [(key, ChainEnd(key, item.source_id)) for key in item.book_keys if is_chain_key(key)]
    if isinstance(item, RecordChunk) and item.schema == "cmbp-1":  # OPRA's consolidated quotes
        chunk, records = item, item.records
        days = calendar_of(item.dataset).trade_date_days(records["ts_recv"])
    elif isinstance(item, CheckedChunk) and item.valid is not None:
        chunk = item.chunk
        records, days = _current(item)
    else:
        return []
    options = option_ids(chunk.instruments)
    if options.size == 0:
        return []
    return list(_option_slices(chunk, records, days, among(records["instrument_id"], options)))


def _option_slices(chunk: RecordChunk, records: np.ndarray, days: np.ndarray,
                   options: np.ndarray) -> list[tuple[str, OptionSlice]]:
    """The records ``options`` marks, as one slice per chain (underlying, session)."""
    mine = np.flatnonzero(options)
    if mine.size == 0:
        return []
    instruments = chunk.instruments
    records, days = take_records(records, mine), days[mine]
    under = underlying_ids(records["instrument_id"], instruments)
    out: list[tuple[str, OptionSlice]] = []
    for value, index in group_rows((under << 32) | days.astype(np.int64)):
        uid, day = value >> 32, value & 0xFFFFFFFF
        if uid == 0:
            continue  # an option without its underlying: Bronze only
        part = take_records(records, index)
        ids = np.unique(part["instrument_id"])
        key = chain_key(uid, day)
        out.append((key, OptionSlice(key, chunk.source_id, part, {int(i): instruments[int(i)] for i in ids}, day)))
    return out


RELAY_KEY = "options"
"""The option relay's one key (``flows.steps.option_relay``): every partition's news meets there."""


def partition_news(lateness_ns: int, item: Checked) -> list[tuple[str, PartitionNews]]:
    """A topic run: what ``item`` tells the option relay, under its one key (nothing for a fault,
    a session's close, or an item that says nothing).

    The partition's watermark is its latest record's ``ts_recv`` less ``lateness_ns`` (records of
    different instruments on a partition may be that far out of order: ``[source] lateness_s``),
    or a tick's event time; definitions and statistics do not move it (they are reference data,
    published ahead of the records they describe)."""
    if isinstance(item, SourceTick):
        return [(RELAY_KEY, PartitionNews(item.source_id, item.event_ns, idle=item.idle))]
    if isinstance(item, SourceEnd):
        return [(RELAY_KEY, PartitionNews(item.source_id, -1, ended=True))] if item.final else []
    if isinstance(item, CheckedChunk):
        return [(RELAY_KEY, _mbo_news(lateness_ns, item))] if item.valid is not None and len(item.valid.records) else []
    if not isinstance(item, RecordChunk) or not len(item.records):
        return []
    if item.schema == "definition":
        defined = np.unique(item.records["instrument_id"])
        infos = tuple(info for i in defined.tolist() if (info := item.instruments.get(int(i))) is not None
                      and info.instrument_type != "OPT")
        news = PartitionNews(item.source_id, -1, dataset=item.dataset, instruments=infos)
        return [(RELAY_KEY, news)] if infos else []
    if item.schema == "statistics":
        oi = open_interest_rows(item.records)
        news = PartitionNews(item.source_id, -1, dataset=item.dataset, open_interest=oi)
        return [(RELAY_KEY, news)] if len(oi) else []
    if item.schema == "cmbp-1":
        mark = int(item.records["ts_recv"].max()) - lateness_ns
        options = tuple(s for _, s in chain_slices(item) if isinstance(s, OptionSlice))
        return [(RELAY_KEY, PartitionNews(item.source_id, mark, dataset=item.dataset, options=options))]
    return []


def _mbo_news(lateness_ns: int, item: CheckedChunk) -> PartitionNews:
    """An MBO chunk's news: its options by chain and the other books it fed, split once."""
    assert item.valid is not None
    mark = int(item.valid.records["ts_recv"].max()) - lateness_ns
    records, days = _current(item)
    options = among(records["instrument_id"], option_ids(item.chunk.instruments))
    slices = tuple(s for _, s in _option_slices(item.chunk, records, days, options))
    others = ~options
    pairs = np.unique((records["instrument_id"][others].astype(np.int64) << 32) | days[others].astype(np.int64))
    books = tuple(book_key(int(v >> 32), int(v & 0xFFFFFFFF)) for v in pairs.tolist())
    return PartitionNews(item.chunk.source_id, mark, dataset=item.chunk.dataset, options=slices, books=books)


def _current(item: CheckedChunk) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's valid records and their sessions, without those late for a closed session
    (they stay in Bronze only)."""
    assert item.valid is not None
    records, days = item.valid.records, item.session_days
    if item.chunk.closed_before >= 0 and (days < item.chunk.closed_before).any():
        keep = np.flatnonzero(days >= item.chunk.closed_before)
        records, days = take_records(records, keep), days[keep]
    return records, days
