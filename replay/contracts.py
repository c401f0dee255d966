"""The two simulated ES contracts and their definition and statistics records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import databento_dbn as dbn

TICK_NANO = 250_000_000
"""0.25 index points in Databento's 1e-9 price units."""
PUBLISHER_ID = 1
OPEN_INTEREST_BASE = (2_150_000, 45_000)


@dataclass(frozen=True)
class Contract:
    """Static reference data of one ES future."""

    raw_symbol: str
    instrument_id: int
    expiration_ns: int
    activation_ns: int
    maturity_year: int
    maturity_month: int


def _ns(y: int, m: int, d: int, hh: int = 13, mm: int = 30) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=UTC).timestamp()) * 1_000_000_000


CONTRACTS: tuple[Contract, ...] = (
    Contract("ESZ5", 42140864, _ns(2025, 12, 19), _ns(2024, 12, 20, 23, 0), 2025, 12),
    Contract("ESH6", 42140878, _ns(2026, 3, 20), _ns(2025, 3, 21, 23, 0), 2026, 3),
)
"""Index 0 is the front month (most activity), index 1 the back month."""


def definition(c: Contract, ts_ns: int) -> bytes:
    """The InstrumentDefMsg of ``c`` as DBN v3 bytes."""
    # databento_dbn's stub declares its enums' members as plain `str`/`int` attributes, so passing a
    # member where the stub wants the enum type is flagged; the members are what the API takes
    msg = dbn.InstrumentDefMsg(
        PUBLISHER_ID, c.instrument_id, ts_ns, ts_ns,
        min_price_increment=TICK_NANO, display_factor=1_000_000_000,
        raw_symbol=c.raw_symbol, asset="ES", security_type="FUT",
        instrument_class=dbn.InstrumentClass.FUTURE,  # type: ignore[arg-type]  # see the note above
        security_update_action=dbn.SecurityUpdateAction.ADD,  # type: ignore[arg-type]
        expiration=c.expiration_ns, activation=c.activation_ns,
        unit_of_measure_qty=50 * 1_000_000_000, contract_multiplier=50,
        min_price_increment_amount=12_500_000_000, price_ratio=1_000_000_000,
        market_depth_implied=2, market_depth=10, market_segment_id=0,
        max_trade_vol=3000, min_lot_size=1_000_000_000, min_lot_size_block=1_000_000_000,
        min_lot_size_round_lot=1_000_000_000, min_trade_vol=1, appl_id=0,
        maturity_year=c.maturity_year, maturity_month=c.maturity_month,
        channel_id=0, currency="USD", settl_currency="USD", group="ES", exchange="XCME",
        cfi="FFIXSX", unit_of_measure="IPNT", underlying="ES",
        match_algorithm=dbn.MatchAlgorithm.FIFO, main_fraction=1, price_display_format=0,  # type: ignore[arg-type]
        sub_fraction=0, underlying_product=5, contract_multiplier_unit=0,
        flow_schedule_type=0, tick_rule=0,
    )
    return bytes(msg)


def statistics(c: Contract, index: int, day_index: int, ts_ns: int, ref_ns: int, stats: dict[str, int]) -> list[bytes]:
    """Close-of-day StatMsg records consistent with the day's trades (prices in 1e-9)."""
    no_qty, no_px = dbn.UNDEF_STAT_QUANTITY, dbn.UNDEF_PRICE
    rows = [
        (dbn.StatType.SETTLEMENT_PRICE, stats["settle"], no_qty),
        (dbn.StatType.TRADING_SESSION_HIGH_PRICE, stats["high"], no_qty),
        (dbn.StatType.TRADING_SESSION_LOW_PRICE, stats["low"], no_qty),
        (dbn.StatType.CLEARED_VOLUME, no_px, stats["volume"]),
        (dbn.StatType.OPEN_INTEREST, no_px, OPEN_INTEREST_BASE[index] + 1_000 * day_index),
    ]
    out = []
    for k, (stat_type, price, qty) in enumerate(rows):
        msg = dbn.StatMsg(
            PUBLISHER_ID, c.instrument_id, ts_ns, ts_ns + 1_000 + k, ref_ns, price, qty,
            stat_type,  # type: ignore[arg-type]  # enum members typed as `int` by databento_dbn's stub
            sequence=k + 1, ts_in_delta=800, channel_id=0,
            update_action=dbn.StatUpdateAction.NEW, stat_flags=0,  # type: ignore[arg-type]  # ditto
        )
        out.append(bytes(msg))
    return out
