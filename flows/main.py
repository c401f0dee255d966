"""Entry point: ``python -m bytewax.run flows.main``.

With no configuration it replays the built-in sample (generated on first use) into ``./lake``.
On first use the sample's earlier sessions are replayed and a model is trained and registered on
them (``flows.sample``), so the run over its last session scores every episode with that
champion; it prints a line per table as rows are committed and ends with a summary
(``flows.narration``).
``SPYMASTER_CONFIG``, ``SPYMASTER_INPUT``, ``SPYMASTER_LAKE`` and friends (see ``flows.config``)
choose inputs, lake and batching; Bytewax's own ``-w/-i/-a/-r`` flags choose workers, processes
and recovery.
"""

from __future__ import annotations

import logging
import warnings

from connectors.recovery import discard_aborted_snapshots
from flows.app import prepare
from flows.cluster import recovery_directory, refuse_racing_overwrite, this_process
from flows.config import load_config
from flows.sample import is_built_in_sample, prepare_history

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build of FAISS loaded is not news
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mlflow\.")  # MLflow's own SQLAlchemy use

_cfg = load_config()
_me = this_process()
_recovery = recovery_directory()
if _recovery is not None and _me.count == 1:  # a local cluster's launcher has done this before starting us
    discard_aborted_snapshots(_recovery)
refuse_racing_overwrite(_cfg, _me)  # several processes must not each plan an overwrite
_cfg = prepare_history(_cfg, _me)  # the built-in sample: its history and a champion, on first use
_run = prepare(_cfg)
_run.sinks.keep_snapshots(_recovery is not None)  # without a store, an epoch's end need not wait for commits
flow = _run.flow
if is_built_in_sample(_cfg) and _me.count == 1:
    from flows.narration import narrate

    narrate(_run)
