"""Keep the garbage collector's full passes off the live path.

CPython's full (generation 2) collection walks every object the collector tracks, on whichever
thread happens to allocate: here, the Bytewax worker. A flow process starts with Bytewax,
pyarrow and delta-rs bindings, and once the model is loaded MLflow, scikit-learn and pandas:
so many objects that each full pass is a stall of a large part of a second for every record in
flight. What is alive when start-up ends lives as long as the process, so it is
moved to the permanent generation (``gc.freeze``), which no later pass walks. Garbage made
afterwards is collected as before.
"""

from __future__ import annotations

import gc


def freeze_start_up() -> None:
    """Collect what start-up left behind, then exempt everything still alive from later passes."""
    gc.collect()
    gc.freeze()
