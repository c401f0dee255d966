"""Positions of a topic's records: ``offset << 20 | index`` (the record's index in its message).

They grow monotonically along a partition, survive any re-batching by the consumer, and give the
offset back as ``position >> 20``: they are what the exactly-once Delta sink deduplicates on.
"""

from __future__ import annotations

import numpy as np

from operators.chunks import RecordChunk, SourceEnd, SourceFault, SourceTick

Item = RecordChunk | SourceFault | SourceEnd | SourceTick
"""What a topic partition emits."""

INDEX_BITS = 20
"""Low bits of a position: a record's index within its message (messages hold < 2^20 records)."""
_MAX_INDEX = (1 << INDEX_BITS) - 1


def coalesce(items: list[Item], max_records: int) -> list[Item]:
    """Join runs of adjacent chunks of one schema (and one instrument map) into single chunks
    with explicit positions: the graph's cost is per item, a live message is often small."""
    out: list[Item] = []
    run: list[RecordChunk] = []

    def close() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first = run[0]
            out.append(RecordChunk(first.source_id, first.first_record, first.schema, first.dataset,
                                   np.frombuffer(b"".join([c.records.tobytes() for c in run]),
                                                 dtype=first.records.dtype), first.instruments,
                                   np.concatenate([c.record_positions() for c in run]),
                                   closed_before=first.closed_before))
        run.clear()

    size = 0
    for item in items:
        joinable = (isinstance(item, RecordChunk) and run and item.schema == run[0].schema
                    and item.instruments is run[0].instruments and item.dataset == run[0].dataset
                    and item.closed_before == run[0].closed_before and size + len(item.records) <= max_records)
        if not joinable:
            close()
            size = 0
        if isinstance(item, RecordChunk):
            run.append(item)
            size += len(item.records)
        else:
            out.append(item)
    close()
    return out


def position(offset: int, index: int) -> int:
    """The monotonic position of record ``index`` of the message at ``offset``."""
    return (offset << INDEX_BITS) | index


def offset_of(pos: int) -> int:
    """The Kafka offset of the message a position belongs to."""
    return pos >> INDEX_BITS
