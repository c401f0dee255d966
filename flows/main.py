"""Entry point: ``python -m bytewax.run flows.main``.

With no configuration it replays the built-in sample (generated on first use) into ``./lake``.
``SPYMASTER_CONFIG``, ``SPYMASTER_INPUT``, ``SPYMASTER_LAKE`` and friends (see ``flows.config``)
choose inputs, lake and batching; Bytewax's own ``-w/-i/-a/-r`` flags choose workers, processes
and recovery.
"""

from __future__ import annotations

import logging

from flows.app import prepare
from flows.cluster import refuse_racing_overwrite, this_process
from flows.config import load_config

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

_cfg = load_config()
refuse_racing_overwrite(_cfg, this_process())  # several processes must not each plan an overwrite
flow = prepare(_cfg).flow
