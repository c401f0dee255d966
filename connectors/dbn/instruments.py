"""Instrument facts for a DBN file: definitions from sibling files, else the file's symbology."""

from __future__ import annotations

import logging
from pathlib import Path

import databento_dbn as dbn

from connectors.dbn.reader import BadHeader, DbnFileReader, upgrade_to_v3
from operators.chunks import InstrumentInfo
from operators.instruments import definition_fault, instrument_from_definition, instrument_from_symbology

log = logging.getLogger(__name__)

_BATCH = 4096


def definitions_in(path: Path) -> dict[int, InstrumentInfo]:
    """Every usable InstrumentDefMsg a definition file holds, by instrument id (a later record
    wins; ``operators.instruments.definition_fault`` names the unusable ones).

    Reads what decodes; a damaged file gives what came before the damage (its own partition
    reports the fault).
    """
    out: dict[int, InstrumentInfo] = {}
    try:
        reader = DbnFileReader(path)
    except BadHeader:
        return out
    try:
        h = reader.header
        if h.schema != "definition":
            return out
        while len(rows := reader.read(_BATCH)):
            for row in upgrade_to_v3(rows, "definition", h.version, h.ts_out):
                if definition_fault(row) is not None:
                    continue  # dead-lettered by the flow; the instrument keeps what its symbology says
                info = instrument_from_definition(row, h.dataset)
                out[info.instrument_id] = info
    finally:
        reader.close()
    return out


def symbology_of(metadata: dbn.Metadata) -> dict[int, InstrumentInfo]:
    """Instrument ids named by the metadata's raw_symbol → instrument_id mappings."""
    out: dict[int, InstrumentInfo] = {}
    # databento_dbn's stub declares SType's members as plain `str` attributes (not members)
    if metadata.stype_out != dbn.SType.INSTRUMENT_ID:  # type: ignore[comparison-overlap]
        return out
    for raw_symbol, intervals in (metadata.mappings or {}).items():
        for interval in intervals:
            symbol = str(interval["symbol"]).strip()
            if symbol.isdigit():
                out[int(symbol)] = instrument_from_symbology(int(symbol), raw_symbol, str(metadata.dataset or ""))
    return out


def _overlaps(a: dbn.Metadata, b: dbn.Metadata) -> bool:
    a_end = a.end if a.end is not None else 2**64  # None when the file has no end (the stub says int)
    b_end = b.end if b.end is not None else 2**64
    return a.start < b_end and b.start < a_end


def sibling_definition_files(path: Path, metadata: dbn.Metadata) -> list[Path]:
    """Definition files beside ``path`` (``*definition*.dbn[.zst]``) of the same dataset whose
    metadata time range overlaps it."""
    found = []
    for candidate in sorted(path.parent.iterdir()):
        name = candidate.name
        if candidate == path or "definition" not in name or not name.endswith((".dbn", ".dbn.zst")):
            continue
        try:
            reader = DbnFileReader(candidate)
        except (BadHeader, OSError):
            continue
        try:
            other = reader.header.metadata
            same_dataset = other.dataset == metadata.dataset
            if reader.header.schema == "definition" and same_dataset and _overlaps(other, metadata):
                found.append(candidate)
        finally:
            reader.close()
    return found


def instruments_for(path: Path, schema: str, metadata: dbn.Metadata) -> dict[int, InstrumentInfo]:
    """The instrument map a partition carries on every chunk.

    A definition file maps its own definitions. Other files get the symbology in their metadata
    (``source="symbology"``), overridden by definitions from overlapping sibling definition files.
    """
    if schema == "definition":
        return definitions_in(path)
    out = symbology_of(metadata)
    for sibling in sibling_definition_files(path, metadata):
        out.update(definitions_in(sibling))
    return out
