"""``spymaster``: the one command-line tool for everything a user does by hand."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from operators.errors import SpymasterError


def _parser() -> argparse.ArgumentParser:
    from flows.cli import (
        azure_env,
        backfill,
        bench,
        book,
        calibrate,
        check,
        eventhouse,
        hud,
        ingest,
        publish,
        replay,
        similar,
        snapshot,
        status,
        synth,
        train,
    )

    parser = argparse.ArgumentParser(
        prog="spymaster",
        description="Replay or stream Databento MBO through one Bytewax dataflow into Bronze/Silver/Gold Delta "
                    "tables; train, score and retrieve level-approach setups with MLflow and FAISS.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (synth, replay, status, check, calibrate, book, bench, snapshot, train, backfill, similar, publish,
                   ingest, eventhouse, hud, azure_env):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except SpymasterError as err:
        print(f"spymaster {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

