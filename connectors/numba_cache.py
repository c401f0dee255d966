"""Where numba keeps compiled kernels: a directory per version of the kernels' source.

Numba's on-disk cache of a kernel is keyed by the kernel's own file. A kernel that calls a
function of another module (``_chain_numbers`` → ``pricing.implied_vol_from``) is compiled with
that callee inlined, and keeps running the old callee after its module changes: a checkout
updated in place (``git pull``) would compute with code it no longer has, silently. So the cache
lives in ``.numba-cache/<fingerprint>`` under the checkout, the fingerprint a hash of every
source file of the packages that hold kernels: any change to them compiles afresh.

An explicit ``NUMBA_CACHE_DIR`` wins (the images set one per container, where the code never
changes). This must run before the first kernel module is imported: ``flows`` calls it on import
(the ``spymaster`` command, ``python -m bytewax.run flows.main``), the tests' conftest first thing.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from connectors.fingerprint import source_fingerprint

ROOT = Path(__file__).resolve().parents[1]
KERNEL_PACKAGES = ("operators", "replay")
"""The packages whose modules define or call numba kernels."""
KEEP = 3
"""Caches of other source versions kept besides the current one (switching branches)."""


def use_source_keyed_cache(root: Path = ROOT) -> Path | None:
    """Point numba's cache at this source version's directory (None: ``NUMBA_CACHE_DIR`` was set)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    base = root / ".numba-cache"
    here = base / source_fingerprint(root, KERNEL_PACKAGES)
    try:
        here.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only checkout: numba's own choice (its cache is then not written either)
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(here)  # numba reads it when imported; child processes inherit it
    numba = sys.modules.get("numba")
    if numba is not None:  # imported already: its config is read as each kernel is decorated
        numba.config.CACHE_DIR = str(here)
    others = sorted((d for d in base.iterdir() if d.is_dir() and d != here), key=lambda d: d.stat().st_mtime)
    for old in others[:max(0, len(others) - KEEP)]:
        shutil.rmtree(old, ignore_errors=True)
    return here
