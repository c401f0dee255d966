"""Two halves of a kernel's work on two cores: one on a helper thread, one on the caller's.

A chain's σ solves and zero-gamma searches are independent per option and per second, and their
kernels release the GIL (``nogil=True``), so half of the range can run beside the other half
where the machine has a core to spare (``SPLIT_CORES``). Each half writes its own
slice of the outputs, so the numbers are the same however the range is cut (or not cut).

Each calling thread (a Bytewax worker) has one helper of its own, started at its first call and
then handed each first half through a queue; it ends after ``IDLE_S`` without work. A thread per
call cost about 0.9 s of a worker's time on the options bench day (starting one waits until it
runs, behind whatever holds the GIL). A forked child starts its own helpers (a parent's thread
does not survive a ``fork``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue

SPLIT_MIN = 4_096
"""Below this many units of work (options × seconds), the caller's thread does it all."""
SPLIT_CORES = 3
"""Nor with fewer cores: the chain step runs on a thread of its own beside the worker, so on two
cores a helper only takes turns with both (the options bench's flow ran 0.3 s slower with it, in
four pairs of six)."""


def affinity_cores() -> int:
    """The cores this process may run on (its CPU affinity; the CPU count where there is none)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


CORES = affinity_cores()
"""The cores a worker may keep busy: the process's CPU affinity until the flow says (``use_cores``:
``flows.app`` gives a container's CPU quota shared among the process's workers,
``connectors.machine.cores_per_worker``)."""


def use_cores(cores: int) -> None:
    global CORES
    CORES = max(1, int(cores))


class _Half:
    """One first half handed to a helper, and how it went."""

    __slots__ = ("done", "failed", "hi", "work")

    def __init__(self, work: Callable[[int, int], None], hi: int) -> None:
        self.work, self.hi = work, hi
        self.done = threading.Event()
        self.failed: BaseException | None = None


class _Helper:
    """A thread that runs first halves until it has been idle ``IDLE_S`` (a worker that stops
    calling, or ends, leaves no thread behind for long)."""

    def __init__(self) -> None:
        self._halves: SimpleQueue[_Half] = SimpleQueue()
        self._lock = threading.Lock()
        self._alive = True
        threading.Thread(target=self._serve, name="spymaster-half", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                half = self._halves.get(timeout=IDLE_S)
            except Empty:
                with self._lock:  # nothing can be put once it is marked gone
                    if self._halves.empty():
                        self._alive = False
                        return
                continue
            try:
                half.work(0, half.hi)
            except BaseException as err:  # re-raised on the caller's thread
                half.failed = err
            finally:
                half.done.set()

    def run(self, half: _Half) -> bool:
        """Hand ``half`` over; False when this helper has gone (the caller starts another)."""
        with self._lock:
            if not self._alive:
                return False
            self._halves.put(half)
            return True


IDLE_S = 2.0
_helpers = threading.local()


def _reset_after_fork() -> None:
    global _helpers
    _helpers = threading.local()


os.register_at_fork(after_in_child=_reset_after_fork)


def _hand_over(half: _Half) -> None:
    helper = getattr(_helpers, "helper", None)
    if helper is None or not helper.run(half):
        helper = _helpers.helper = _Helper()
        helper.run(half)


def in_halves(n: int, work: Callable[[int, int], None], *, units: int | None = None) -> None:
    """``work(lo, hi)`` over ``[0, n)``: ``[0, n // 2)`` on a helper thread and the rest here,
    when ``units`` (default ``n``) is at least ``SPLIT_MIN``, ``n`` at least 2 and the machine
    has ``SPLIT_CORES``."""
    if n < 2 or CORES < SPLIT_CORES or (units if units is not None else n) < SPLIT_MIN:
        work(0, n)
        return
    half = _Half(work, n // 2)
    _hand_over(half)
    try:
        work(half.hi, n)
    finally:
        half.done.wait()
    if half.failed is not None:
        raise half.failed
