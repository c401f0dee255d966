"""The Spymaster dataflow and everything that runs it.

- What ``python -m bytewax.run flows.main`` needs: ``main`` (the entry point), ``app`` (inputs,
  plan, lake and sinks into a runnable flow), ``graph``, ``config``, ``items`` (what travels
  between steps), ``route`` and ``writes`` (the stateless steps), ``plan`` and ``bronze_plan``,
  ``runner``, ``cluster``, ``sample`` (the built-in sample's first use), ``narration`` (progress and
  the closing summary), and ``steps/``: the stateful steps, one module per step id.
- ``cli/``: the ``spymaster`` command, one module per subcommand.
- ``jobs/``: offline jobs over a lake (integrity, accounting, calibration, training, similar
  setups, MBP top levels, status).
- ``bench/``: the benchmarks; ``services/``: the local processes benchmarks and tests start.

Bytewax's recovery store pickles each step's state under the module path its class had when it was
written; ``_MOVED`` keeps the paths of the layout before steps had a package of their own
importable, so a store written then still resumes.
"""

from __future__ import annotations

import importlib
import sys
import types

from connectors.numba_cache import use_source_keyed_cache

use_source_keyed_cache()  # before any kernel module is imported (see connectors.numba_cache)

_MOVED: dict[str, tuple[str, ...]] = {
    "flows.book_logic": ("flows.steps.book_1s",),
    "flows.analytics": ("flows.steps.session_series", "flows.steps.prior_sessions", "flows.items"),
    "flows.episodes": ("flows.steps.session_episodes", "flows.items"),
    "flows.surfaces": ("flows.steps.radar_1s", "flows.items"),
    "flows.scoring": ("flows.steps.inference_scores",),
}
"""Old module path -> the modules its names live in now."""


class _MovedModule(types.ModuleType):
    """An old module path whose names are looked up, on first use, where they live now."""

    def __init__(self, name: str, homes: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved to {', '.join(homes)}.")
        self._homes = homes

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for home in self._homes:
            module = importlib.import_module(home)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self._homes)}) has no {attr!r}")


for _old, _homes in _MOVED.items():
    sys.modules.setdefault(_old, _MovedModule(_old, _homes))
