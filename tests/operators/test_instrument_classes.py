"""Which definitions describe an instrument: every class Databento defines does, anything else is a
dead letter (``operators.instruments.definition_fault``)."""

from __future__ import annotations

import databento_dbn as dbn
import pytest

from operators.instruments import DATABENTO_CLASSES, definition_fault
from tests.connectors.dbn_files import definition_records


def test_the_classes_we_accept_are_exactly_databentos() -> None:
    assert {str(v.value) for v in dbn.InstrumentClass.variants()} == set(DATABENTO_CLASSES)


@pytest.mark.parametrize("code", sorted(DATABENTO_CLASSES - {"C", "P"}))
def test_a_definition_of_any_databento_class_is_usable(code: str) -> None:
    [row] = definition_records([{"instrument_id": 7, "raw_symbol": b"X", "instrument_class": code.encode()}])

    assert definition_fault(row) is None


def test_a_class_databento_does_not_define_is_a_fault_naming_the_known_ones() -> None:
    [row] = definition_records([{"instrument_id": 7, "raw_symbol": b"SPX", "instrument_class": b"Z"}])

    assert definition_fault(row) == ("unknown_instrument_class",
                                     "instrument 7 (SPX): instrument_class 'Z' is none of Databento's "
                                     "(B, C, F, I, K, M, P, S, T, X, Y)")
