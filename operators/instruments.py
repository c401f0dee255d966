"""What an instrument id is: futures symbol parsing and ``InstrumentInfo`` from DBN facts.

Pure (stdlib + numpy scalars): the connector reads definitions and symbology from files and hands
the rows and strings here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal

import numpy as np

from operators.chunks import InstrumentInfo, InstrumentType
from operators.records import UNDEF_PRICE

UNDEF_TIMESTAMP: Final = int(np.iinfo(np.uint64).max)
"""Databento's "no timestamp" sentinel (u64 max)."""
UNDEF_I32: Final = int(np.iinfo(np.int32).max)
"""Databento's "no value" sentinel for i32 fields such as ``contract_multiplier``."""

MONTH_CODES: Final = "FGHJKMNQUVXZ"
"""CME month codes, January (F) to December (Z)."""

_FUTURE = re.compile(rf"^([A-Z0-9]*[A-Z])([{MONTH_CODES}])(\d{{1,2}})$")
_OPTION = re.compile(r"^(\S+)\s+([CP])(\d+(?:\.\d+)?)$")

_CLASS_TYPES: Final[dict[str, InstrumentType]] = {
    "F": "FUT",
    "C": "OPT",
    "P": "OPT",
    "K": "STK",
    "S": "SPREAD",  # future spread
    "T": "SPREAD",  # option spread
    "M": "SPREAD",  # mixed spread
}
"""Databento ``InstrumentClass`` codes to our types; the rest (bond, FX, commodity spot) are UNKNOWN."""
DATABENTO_CLASSES: Final = frozenset("BCFIKMPSTXY")
"""Every ``InstrumentClass`` Databento defines (bond, call, future, index, stock, mixed spread,
put, future spread, option spread, FX spot, commodity spot)."""


def parse_future_symbol(raw: str) -> tuple[str, str, int] | None:
    """``"ESZ5"`` → ``("ES", "Z", 5)``; ``"ESH26"`` → ``("ES", "H", 26)``; ``None`` if not an outright."""
    m = _FUTURE.match(raw.strip())
    if m is None:
        return None
    return m.group(1), m.group(2), int(m.group(3))


def _spread_legs(raw: str) -> list[str] | None:
    """Legs of a calendar spread (``"ESZ5-ESH6"``) or of a strategy (``"ES:BF Z5-H6-M6"``)."""
    s = raw.strip()
    if ":" in s:
        return [s.split(":", 1)[0]]
    if "-" in s:
        legs = s.split("-")
        return legs if all(legs) else None
    return None


def underlier_of(raw_symbol: str) -> str:
    """The product a symbol trades: the futures root (``"ESZ5"`` → ``"ES"``), the root of an
    option's or spread's first leg, or the symbol itself (a stock)."""
    s = raw_symbol.strip()
    if (fut := parse_future_symbol(s)) is not None:
        return fut[0]
    if (opt := _OPTION.match(s)) is not None:
        return underlier_of(opt.group(1))
    if (legs := _spread_legs(s)) is not None:
        return underlier_of(legs[0])
    return s


def instrument_type_of(raw_symbol: str, instrument_class: bytes | str | None = None) -> InstrumentType:
    """The instrument type: from Databento's ``instrument_class`` when given, else the symbol's shape.

    By shape: an outright future (``ESZ5``) is FUT, ``"<symbol> C4500"``/``"P4500"`` is OPT, a
    symbol with ``-`` or ``:`` legs is SPREAD, anything else UNKNOWN (a bare ``MSFT`` could be many
    things).
    """
    if instrument_class is not None:
        code = instrument_class.decode("ascii", "replace") if isinstance(instrument_class, bytes) else instrument_class
        code = code.strip("\x00 ")
        if code:
            return _CLASS_TYPES.get(code, "UNKNOWN")
    s = raw_symbol.strip()
    if parse_future_symbol(s) is not None:
        return "FUT"
    if _OPTION.match(s) is not None:
        return "OPT"
    if _spread_legs(s) is not None:
        return "SPREAD"
    return "UNKNOWN"


def _text(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return str(value).strip()


def _multiplier(row: Any) -> float:
    """Contract size: ``unit_of_measure_qty`` (1e-9 fixed point) if set, else ``contract_multiplier``."""
    names = row.dtype.names
    if "unit_of_measure_qty" in names:
        qty = int(row["unit_of_measure_qty"])
        if qty != UNDEF_PRICE:
            return qty / 1e9
    if "contract_multiplier" in names:
        mult = int(row["contract_multiplier"])
        if mult != UNDEF_I32:
            return float(mult)
    return 0.0


def venue_of(dataset: str) -> str:
    """The venue code of a Databento dataset: ``"XNAS.ITCH"`` → ``"XNAS"``."""
    return dataset.split(".", 1)[0].strip().upper()


def instrument_from_definition(row: Any, dataset: str = "") -> InstrumentInfo:
    """``InstrumentInfo`` from one row of Databento's InstrumentDefMsg numpy array (any DBN version).

    ``tick`` is ``min_price_increment`` in 1e-9 units (0 when undefined); ``underlier`` is ``asset``
    when set, else the parsed root of ``raw_symbol``; sentinel expirations and strikes become 0;
    ``venue`` is the dataset's (the feed's calendar), else the definition's exchange.
    """
    raw_symbol = _text(row["raw_symbol"])
    asset = _text(row["asset"])
    tick = int(row["min_price_increment"])
    expiration = int(row["expiration"])
    strike = int(row["strike_price"])
    return InstrumentInfo(
        instrument_id=int(row["instrument_id"]),
        raw_symbol=raw_symbol,
        underlier=asset or underlier_of(raw_symbol),
        instrument_type=instrument_type_of(raw_symbol, bytes(row["instrument_class"])),
        tick=0 if tick == UNDEF_PRICE else tick,
        multiplier=_multiplier(row),
        expiration_ns=0 if expiration == UNDEF_TIMESTAMP else expiration,
        strike_price=0 if strike == UNDEF_PRICE else strike,
        source="definition",
        underlying_id=int(row["underlying_id"]) if "underlying_id" in row.dtype.names else 0,
        option_right=_right(row["instrument_class"]),
        venue=venue_of(dataset) if dataset else _text(row["exchange"]) if "exchange" in row.dtype.names else "",
    )


def definition_fault(row: Any) -> tuple[str, str] | None:
    """Why one InstrumentDefMsg row cannot describe its instrument, as (reason, detail); None
    when it can. A class Databento does not define says nothing we could trust about the rest of
    the record; an option that names no underlying has no chain to price it in."""
    code = _text(row["instrument_class"])
    iid, symbol = int(row["instrument_id"]), _text(row["raw_symbol"])
    if code not in DATABENTO_CLASSES:
        return ("unknown_instrument_class",
                f"instrument {iid} ({symbol}): instrument_class {code!r} is none of Databento's "
                f"({', '.join(sorted(DATABENTO_CLASSES))})")
    underlying = int(row["underlying_id"]) if "underlying_id" in row.dtype.names else 0
    if code in ("C", "P") and underlying == 0:
        return ("missing_underlying",
                f"option {iid} ({symbol}) names no underlying (underlying_id 0): its records stay in "
                "bronze.mbo and feed no chain")
    return None


def _right(instrument_class: Any) -> Literal["C", "P", ""]:
    code = _text(instrument_class)
    return "C" if code == "C" else "P" if code == "P" else ""


def instrument_from_symbology(instrument_id: int, raw_symbol: str, dataset: str = "") -> InstrumentInfo:
    """``InstrumentInfo`` from a symbology mapping alone: no tick, type from the symbol's shape."""
    return InstrumentInfo(
        instrument_id=int(instrument_id),
        raw_symbol=raw_symbol,
        underlier=underlier_of(raw_symbol),
        instrument_type=instrument_type_of(raw_symbol),
        tick=0,
        source="symbology",
        venue=venue_of(dataset),
    )


def option_ids(instruments: Mapping[int, InstrumentInfo]) -> np.ndarray:
    """The ids of the options among ``instruments`` (sorted): their records are kept in Bronze but
    feed no futures book, levels or episodes (an option's own path reads them)."""
    return np.array(sorted(i for i, info in instruments.items() if info.instrument_type == "OPT"), np.int64)


def underlying_ids(ids: np.ndarray, instruments: Mapping[int, InstrumentInfo]) -> np.ndarray:
    """Each record's underlying instrument id (0 when its instrument names none), one look-up per
    distinct instrument."""
    uniq, inverse = np.unique(ids, return_inverse=True)
    table = np.array([getattr(instruments.get(int(i)), "underlying_id", 0) for i in uniq], np.int64)
    return table[inverse.ravel()]


def book_tick(info: InstrumentInfo, first_second: np.ndarray) -> int:
    """The tick a book's analytics count on: the definition's ``min_price_increment``, else the
    grid its first sampled second shows (the gcd of the steps between its bid and ask levels:
    the same whatever the chunking, since that second is), else 1 (a one-price book)."""
    if info.tick:
        return info.tick
    if len(first_second) == 0:
        return 1
    prices = np.concatenate([first_second["bid_px"].ravel(), first_second["ask_px"].ravel()])
    return tick_of_prices(prices) or 1


def tick_of_prices(prices: np.ndarray) -> int:
    """A price grid from prices alone (a book with no definition): the gcd of the steps between
    the distinct prices, empty and undefined prices left out; 0 when it cannot be told."""
    px = np.unique(np.asarray(prices, np.int64))
    px = px[(px > 0) & (px < UNDEF_PRICE)]
    steps = np.diff(px)
    return int(np.gcd.reduce(steps)) if steps.size else 0
