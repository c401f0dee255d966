"""An independent, deliberately naive order book used to check the simulator's truth.

Plain dicts and lists, written from Databento's documented MBO semantics only, so it shares no
code (and hopefully no bugs) with ``replay/book.py``.
"""

from __future__ import annotations

UNDEF_PRICE = (1 << 63) - 1


class ReferenceBook:
    """One instrument's book: ``orders[oid] = [side, price, size]`` and FIFO queues per level."""

    def __init__(self) -> None:
        self.orders: dict[int, list] = {}
        self.queues: dict[tuple[bytes, int], list[int]] = {}

    def clear(self) -> None:
        self.orders.clear()
        self.queues.clear()

    def _enqueue(self, oid: int, side: bytes, price: int) -> None:
        self.queues.setdefault((side, price), []).append(oid)

    def _dequeue(self, oid: int) -> None:
        side, price, _ = self.orders[oid]
        q = self.queues[(side, price)]
        q.remove(oid)
        if not q:
            del self.queues[(side, price)]

    def apply(self, action: bytes, side: bytes, price: int, size: int, oid: int) -> None:
        if action == b"R":
            self.clear()
        elif action == b"A":
            assert oid not in self.orders
            self.orders[oid] = [side, price, size]
            self._enqueue(oid, side, price)
        elif action == b"C":
            order = self.orders[oid]
            assert order[1] == price and 0 < size <= order[2]
            order[2] -= size
            if order[2] == 0:
                self._dequeue(oid)
                del self.orders[oid]
        elif action == b"M":
            order = self.orders[oid]
            if price != order[1] or size > order[2]:
                self._dequeue(oid)
                order[1], order[2] = price, size
                self._enqueue(oid, side, price)
            else:
                order[2] = size

    def queue(self, side: bytes, price: int) -> list[int]:
        return list(self.queues.get((side, price), []))

    def top(self, side: bytes, n: int = 10) -> list[tuple[int, int, int]]:
        """``n`` best levels as (price, total size, order count), padded with (UNDEF, 0, 0)."""
        prices = sorted({p for (s, p) in self.queues if s == side}, reverse=side == b"B")[:n]
        levels = []
        for p in prices:
            q = self.queues[(side, p)]
            levels.append((p, sum(self.orders[o][2] for o in q), len(q)))
        return levels + [(UNDEF_PRICE, 0, 0)] * (n - len(levels))
