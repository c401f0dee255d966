"""Test helpers for the L3 book: a record builder and a plain-dict reference book (not product)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from operators.records import F_LAST, F_SNAPSHOT, MBO_DTYPE, UNDEF_PRICE

TICK = 250_000_000
NS = 1_000_000_000


def px(ticks: int) -> int:
    """A price ``ticks`` ES ticks above zero, in 1e-9 units."""
    return ticks * TICK


def make_records(rows: Iterable[tuple], instrument_id: int = 7) -> np.ndarray:
    """Records from ``(action, side, order_id, price, size, flags, ts_recv)`` tuples."""
    rows = list(rows)
    rec = np.zeros(len(rows), MBO_DTYPE)
    for i, (action, side, oid, price, size, flags, ts) in enumerate(rows):
        rec[i]["action"] = action.encode()
        rec[i]["side"] = side.encode()
        rec[i]["order_id"] = oid
        rec[i]["price"] = price
        rec[i]["size"] = size
        rec[i]["flags"] = flags
        rec[i]["ts_recv"] = ts
        rec[i]["ts_event"] = ts
        rec[i]["sequence"] = i
    rec["rtype"] = 0xA0
    rec["length"] = 14
    rec["instrument_id"] = instrument_id
    return rec


class RefBook:
    """The same semantics as ``L3Book``, written the obvious way with a dict."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # id -> [side, price, size]
        self.synced = False
        self.in_snap = False
        self.clear_pending = False
        self.anomalies: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.anomalies[name] = self.anomalies.get(name, 0) + 1

    def _place(self, oid: int, side: bytes, price: int, size: int) -> bool:
        if side not in (b"B", b"A"):
            self._count("bad_side")
            return False
        if size == 0:
            self._count("zero_size")
            return False
        self.orders[oid] = [0 if side == b"B" else 1, price, size]
        return True

    def _modify(self, oid: int, price: int, size: int) -> None:
        if size == 0:
            self._count("zero_size")
            del self.orders[oid]
            return
        self.orders[oid][1] = price
        self.orders[oid][2] = size

    def apply(self, r: np.void) -> None:
        act, oid, price, size = r["action"], int(r["order_id"]), int(r["price"]), int(r["size"])
        flags = int(r["flags"])
        if act == b"A":
            if price == UNDEF_PRICE:
                self._count("bad_price")
            elif oid in self.orders:
                self._count("add_duplicate")
                self._modify(oid, price, size)
            else:
                self._place(oid, r["side"], price, size)
        elif act == b"C":
            if oid not in self.orders:
                self._count("cancel_unknown")
            elif size >= self.orders[oid][2]:
                if size > self.orders[oid][2]:
                    self._count("cancel_oversize")
                del self.orders[oid]
            else:
                self.orders[oid][2] -= size
        elif act == b"M":
            if price == UNDEF_PRICE:
                self._count("bad_price")
            elif oid in self.orders:
                self._modify(oid, price, size)
            elif self._place(oid, r["side"], price, size):
                self._count("modify_unknown")
        elif act == b"R":
            self.orders.clear()
            self.synced = False
            self.in_snap = bool(flags & F_SNAPSHOT)
            self.clear_pending = not self.in_snap
        elif act not in (b"T", b"F", b"N"):
            self._count("unknown_action")
        if flags & F_SNAPSHOT:
            if self.in_snap and flags & F_LAST:
                self.in_snap = False
                self.synced = True
        elif self.clear_pending and act != b"R":
            self.clear_pending = False
            self.synced = True

    def levels(self, side: int) -> list[tuple[int, int, int]]:
        agg: dict[int, list[int]] = {}
        for s, p, q in self.orders.values():
            if s == side:
                a = agg.setdefault(p, [0, 0])
                a[0] += q
                a[1] += 1
        keys = sorted(agg, reverse=(side == 0))
        return [(p, agg[p][0], agg[p][1]) for p in keys]

    def crossed(self) -> bool:
        b, a = self.levels(0), self.levels(1)
        return bool(b and a and b[0][0] >= a[0][0])

    def valid(self) -> bool:
        return self.synced and not self.in_snap and not self.crossed()

    def top(self, depth: int = 10) -> tuple:
        out = []
        for side in (0, 1):
            lv = self.levels(side)[:depth]
            lv += [(UNDEF_PRICE, 0, 0)] * (depth - len(lv))
            out.append(tuple(lv))
        return tuple(out)


def reference_tops(records: np.ndarray, depth: int = 10) -> list[tuple]:
    """``(valid, top)`` after every F_LAST record, by ``RefBook``."""
    book = RefBook()
    out = []
    for r in records:
        book.apply(r)
        if int(r["flags"]) & F_LAST:
            if book.crossed():
                book._count("crossed_book")
            out.append((book.valid(), book.top(depth)))
    return out


def rows_as_tops(rows: np.ndarray) -> list[tuple]:
    """``(valid, top)`` of ``TOP_DTYPE``/``SECOND_DTYPE`` rows, comparable with ``reference_tops``."""
    out = []
    for r in rows:
        bid = tuple(zip(r["bid_px"].tolist(), r["bid_sz"].tolist(), r["bid_ct"].tolist(), strict=True))
        ask = tuple(zip(r["ask_px"].tolist(), r["ask_sz"].tolist(), r["ask_ct"].tolist(), strict=True))
        out.append((bool(r["book_valid"]), (bid, ask)))
    return out
