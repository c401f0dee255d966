"""Narrowing helpers for tests: each checks what a test relies on and tells the type checker.

An ``X | None`` a test knows is set, a batch that must hold one kind of item, the headers of a
consumed Kafka message: instead of a silent ``AttributeError`` on ``None`` (or a ``type: ignore``),
the test says what it expects and fails with the value when it is not so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from confluent_kafka import Message

T = TypeVar("T")


def present(value: T | None) -> T:
    """``value``, which must not be ``None``."""
    assert value is not None
    return value


def only(kind: type[T], items: Iterable[object]) -> list[T]:
    """``items``, every one of which must be a ``kind``."""
    items = list(items)
    found = [item for item in items if isinstance(item, kind)]
    assert found == items, items
    return found


def one(kind: type[T], item: object) -> T:
    """``item``, which must be a ``kind``."""
    assert isinstance(item, kind), item
    return item


def headers_of(msg: Message) -> dict[str, bytes]:
    """A consumed message's headers by name (librdkafka hands them over as (name, bytes) pairs)."""
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {name: one(bytes, value) for name, value in pairs}
