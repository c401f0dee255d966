"""Two halves of a kernel's work on two cores: one on a helper thread, one on the caller's.

A chain's σ solves and zero-gamma searches are independent per option and per second, and their
kernels release the GIL (``nogil=True``), so half of the range can run beside the other half
while a one-worker flow leaves a core to the Delta committers alone. Each half writes its own
slice of the outputs, so the numbers are the same however the range is cut (or not cut).

A thread per call, not a pool: a call is milliseconds of work, a thread costs tens of
microseconds, and a pool's idle thread would not survive a ``fork`` (a child process would wait
on it forever).
"""

from __future__ import annotations

from collections.abc import Callable
from threading import Thread

SPLIT_MIN = 4_096
"""Below this many units of work (options × seconds), the caller's thread does it all."""


def in_halves(n: int, work: Callable[[int, int], None], *, units: int | None = None) -> None:
    """``work(lo, hi)`` over ``[0, n)``: ``[0, n // 2)`` on a helper thread and the rest here,
    when ``units`` (default ``n``) is at least ``SPLIT_MIN`` and ``n`` at least 2."""
    if n < 2 or (units if units is not None else n) < SPLIT_MIN:
        work(0, n)
        return
    half = n // 2
    failed: list[BaseException] = []

    def first() -> None:
        try:
            work(0, half)
        except BaseException as err:  # re-raised on the caller's thread below
            failed.append(err)

    helper = Thread(target=first, name="spymaster-half", daemon=True)
    helper.start()
    try:
        work(half, n)
    finally:
        helper.join()
    if failed:
        raise failed[0]
