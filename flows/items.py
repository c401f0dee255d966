"""Items that travel between the flow's steps (after the source).

Every type one step emits and another reads lives here, so steps import each other's items, never
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd, SourceFault, SourceTick
from operators.levels import Level, SessionSummary
from operators.normalize import DeadLetter, ValidChunk


@dataclass(frozen=True, slots=True)
class CheckedChunk:
    """An MBO chunk after validation: good records with their session dates, and dead letters."""

    chunk: RecordChunk
    valid: ValidChunk | None
    session_days: np.ndarray  # int32 days since epoch, one per valid record
    letters: tuple[DeadLetter, ...]


@dataclass(frozen=True, slots=True)
class BookSlice:
    """One (contract, session)'s records from one chunk, in source order."""

    source_id: str
    records: np.ndarray
    info: InstrumentInfo
    session_day: int


@dataclass(frozen=True, slots=True)
class BookRows:
    """Closed 1-second rows of one (contract, session) book."""

    key: str
    source_id: str
    rows: np.ndarray
    info: InstrumentInfo
    session_day: int
    anomalies: dict[str, int] | None = None
    """Set only on the book's last rows (its session is closed): the anomaly counts."""

    @property
    def final(self) -> bool:
        return self.anomalies is not None


@dataclass(frozen=True, slots=True)
class OptionSlice:
    """The records of one underlier's options in one session, from one chunk (``flows.route``)."""

    key: str
    """The chain's (``operators.options.chain.chain_key``)."""
    source_id: str
    records: np.ndarray
    instruments: dict[int, InstrumentInfo]
    session_day: int


@dataclass(frozen=True, slots=True)
class UnderlyingSeconds:
    """An underlying's mid at the close of each of its seconds (from its book rows), for the chains
    written on it. ``final``: its session is closed."""

    key: str
    closes: np.ndarray
    mids: np.ndarray
    final: bool


@dataclass(frozen=True, slots=True)
class ChainRows:
    """What one underlier's chain step emits for a stretch of its session."""

    key: str
    source_id: str
    underlier: str
    session_day: int
    tops: np.ndarray
    """``operators.options.chain.OPTION_TOP_DTYPE`` rows of the seconds closed."""
    instruments: dict[int, InstrumentInfo]
    surfaces: list
    """``operators.options.surface.Columns`` per second computed."""
    summaries: list
    """``GexSummary`` per second computed."""
    final: bool
    tables: ChainTables | None
    """The rows above as the chain tables' Arrow rows, built on the chain's thread
    (``flows.steps.option_chain``), so the writes only hand them on. None: a topic run's chain that
    has had no option says how far its session is (``through_ns``), and writes nothing."""
    profiles: tuple = ()
    """``operators.options.profile.GexProfile`` of the same seconds (what setup vectors read)."""
    through_ns: int = 0
    """Every second closing at or before this has had its GEX computed (the last such is in this
    item or an earlier one); the chain's profiles up to it are all out."""
    sources: tuple[str, ...] = ()
    """With ``final``: every source that fed the chain, each of whose streams the end marks (so
    each source's completion check finds its chains done)."""


@dataclass(frozen=True, slots=True)
class ChainTables:
    """``ChainRows`` as ``silver.options_top_1s``, ``silver.gex_surface_1s`` and
    ``silver.gex_summary_1s`` rows, each with its rows' positions (their seconds)."""

    tops: pa.Table
    surface: tuple[pa.Table, np.ndarray]
    summary: tuple[pa.Table, np.ndarray]


@dataclass(frozen=True, slots=True)
class ChainEnd:
    """A source that fed a chain has ended (its ``SourceEnd``, under the chain key)."""

    key: str
    source_id: str
    underlying_book: bool = False
    """From the option relay (a topic run): the run fed the underlying's book for the session, so
    the chain waits for its last mids (a file run knows it up front: ``ChainFacts.books``)."""


@dataclass(frozen=True, slots=True)
class ChainTick:
    """A topic run's options are in for every second of the chain closing before ``clock_ns``
    (``flows.steps.option_relay``): the chain's options clock for ``source_id``."""

    key: str
    source_id: str
    clock_ns: int


@dataclass(frozen=True, slots=True)
class ChainNotice:
    """What a topic run learns about a chain as it reads (``flows.steps.option_relay``): open
    interest published on the topic, and the underlying's definition (its symbol and venue)."""

    key: str
    open_interest: np.ndarray
    """``connectors.dbn.chains.OI_DTYPE`` rows, added to those the chain has."""
    underlying: InstrumentInfo | None = None


@dataclass(frozen=True, slots=True)
class PartitionNews:
    """What one topic partition's item tells the option relay (``flows.route.partition_news``):
    its options' records by chain, how far its event time has gone, the books of instruments that
    are not options it fed, their definitions, and open interest."""

    source_id: str
    watermark_ns: int
    """No record still to come on the partition starts before this (-1: it does not say)."""
    dataset: str = ""
    """The records' dataset: whose calendar dates their sessions."""
    options: tuple[OptionSlice, ...] = ()
    books: tuple[str, ...] = ()
    """``iid:day`` books of the item's MBO records that are not options."""
    instruments: tuple[InstrumentInfo, ...] = ()
    """Instruments that are not options, defined by the item (a definition chunk)."""
    open_interest: np.ndarray | None = None
    ended: bool = False
    """The partition's final end (a bounded read): it says nothing more."""
    idle: bool = False
    """A tailed partition that has heard nothing for its idle timeout: the relay does not wait for
    it until it speaks again."""


@dataclass(frozen=True, slots=True)
class ChainProfiles:
    """A chain's profiles as its underlier's session reads them (keyed by the session: ``book_key``)."""

    key: str
    profiles: tuple
    """``GexProfile`` per second computed, ascending."""
    through_ns: int
    """See ``ChainRows.through_ns``; ``FOREVER`` once the chain has ended."""


Checked = CheckedChunk | RecordChunk | SourceFault | SourceEnd | SourceTick
"""What the check step emits: checked MBO chunks, and everything else passed through."""


def book_key(instrument_id: int, session_day: int) -> str:
    """The state key of a (contract, session) book: ``instrument_id:days-since-epoch``."""
    return f"{instrument_id}:{session_day}"


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """A session's first data arrived: its prior session can be looked for now."""

    key: str
    info: InstrumentInfo
    session_day: int


@dataclass(frozen=True, slots=True)
class SessionSeries:
    """A closed session's summary (what later sessions need of it)."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    summary: SessionSummary


@dataclass(frozen=True, slots=True)
class SessionBars:
    """Bars closed by one batch of seconds, with running context (session VWAP, moving averages)."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    bars: np.ndarray
    context: np.ndarray  # f8[n, 4]: session_vwap, ma_60s, ma_300s, ma_900s
    final: bool


@dataclass(frozen=True, slots=True)
class PriorSession:
    """The summary of the session before ``key``'s session, or None when there is none."""

    key: str
    prior: SessionSummary | None


@dataclass(frozen=True, slots=True)
class SeriesPiece:
    """One batch of a session's seconds (mid, trade range) and the bars they closed."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    ts: np.ndarray
    mid: np.ndarray
    trade_high: np.ndarray
    trade_low: np.ndarray
    bars: np.ndarray
    final: bool


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode with everything the Gold tables need (vector and label filled in as known)."""

    index: int
    episode_id: str
    level_type: str
    level_known_ts: int
    bucket: int
    row: np.ndarray  # one operators.approach EPISODE_DTYPE row
    vector: np.ndarray | None = None
    label: np.ndarray | None = None  # one LABEL_DTYPE row


@dataclass(frozen=True, slots=True)
class EpisodeUpdate:
    """What one step of a session produced; ``final`` carries the levels and closes the session."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    started: tuple[Episode, ...] = ()  # episodes whose vector is now known
    resolved: tuple[Episode, ...] = ()  # episodes whose label is now known
    complete: tuple[Episode, ...] = ()  # episodes with both (for the training view)
    positions: tuple[int, int, int] = (0, 0, 0)  # first position of started, resolved, complete
    final: bool = False
    levels: tuple[Level, ...] = ()
    missing: tuple[str, ...] = ()
    prior_date: date | None = None
    through_ns: int = 0
    """Every episode of this session starting before this instant has been in ``started`` of this
    update or an earlier one (``FOREVER`` once the session is final)."""


SERIES_STEP_NS = 1_000_000_000
"""The episode series is the 1-second book: consecutive rows are at least this far apart."""
BAR_NS = 5 * SERIES_STEP_NS
"""The close grid of the 5-second bars (``session_series``)."""


@dataclass(frozen=True, slots=True)
class SurfaceRows:
    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    wall: np.ndarray
    vacuum: np.ndarray
    bands: np.ndarray
    final: bool
    top: np.ndarray | None = None
    """The same seconds' top of book (``TOP_DTYPE``), for the Eventhouse's Radar."""


TOP_DTYPE = np.dtype([("best_bid_px", np.int64), ("best_ask_px", np.int64), ("mid_px", np.float64),
                      ("bid_sz", np.int64), ("ask_sz", np.int64)])


def top_of_book(rows: np.ndarray) -> np.ndarray:
    """``TOP_DTYPE`` rows of 1-second book rows (``operators.book.second_dtype``)."""
    top = np.empty(len(rows), TOP_DTYPE)
    for name in ("best_bid_px", "best_ask_px", "mid_px"):
        top[name] = rows[name]
    top["bid_sz"], top["ask_sz"] = rows["bid_sz"][:, 0], rows["ask_sz"][:, 0]
    return top
