"""``python -m flows.cli`` runs the ``spymaster`` command."""

import sys

from flows.cli import main

sys.exit(main())
