"""``spymaster similar``: the historical setups most like an episode, from a model version's memory."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console, JustifyMethod
from rich.table import Table

from flows.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "similar",
        help="print the historical episodes most similar to an episode, and their outcomes",
        description=(
            "Look up the episode's setup vector in gold.setup_vectors, load the retrieval memory that "
            "ships with a registered model version (artifact 'retrieval/' of its run), and print the K "
            "nearest stored episodes of the same level type, direction and time bucket, with their "
            "distances (Euclidean, in the group-weighted z-scored space) and outcomes, and the "
            "BREAK/REJECT/CHOP distribution among them, plain and inverse-distance weighted. The episode "
            "itself is left out of its own neighbours unless --include-self is given."
        ),
    )
    p.add_argument("--episode", required=True, help="episode id (as in silver.level_approach / gold.setup_vectors)")
    p.add_argument("--model-id", help="registered model name (default: the episode's model_id, e.g. ES_MODEL)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", help="registered model version (default: the version --alias names)")
    which.add_argument("--alias", default="champion", help="registry alias to resolve (default champion)")
    p.add_argument("-k", type=int, default=25, help="neighbours to return (default 25)")
    p.add_argument("--include-self", action="store_true",
                   help="keep the episode itself among its neighbours (distance 0 if it is in the memory)")
    p.add_argument("--lake", help="lake root (default: SPYMASTER_LAKE or ./lake)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from connectors.delta.lake import Lake
    from flows.jobs.similar import find_similar

    if args.k < 1:
        from operators.errors import ConfigError

        raise ConfigError(f"-k must be at least 1, got {args.k}")
    cfg = load_config()
    lake = Lake(args.lake or cfg.lake.root, dict(cfg.lake.storage_options))
    answer = find_similar(lake, args.episode, model_id=args.model_id, version=args.version, alias=args.alias,
                          k=args.k, include_self=args.include_self)
    console = Console(width=None if sys.stdout.isatty() else 140)
    q = answer.query
    console.print(f"episode [bold]{q.episode_id}[/bold] ({q.contract_id} {q.session_date} {q.level_type} "
                  f"{q.direction} bucket {q.time_bucket}, outcome {q.outcome or 'unlabelled'}) — "
                  f"model {answer.model_id} version {answer.version}")
    table = Table(title=answer.title())
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"), ("episode", "left"), ("session", "left"), ("contract", "left"), ("level", "left"),
        ("direction", "left"), ("bucket", "right"), ("distance", "right"), ("outcome", "left"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in answer.rows():
        table.add_row(*row)
    console.print(table)
    dist = Table(title="outcome distribution among the neighbours")
    for name in ("", *answer.classes):
        dist.add_column(name, justify="right")
    dist.add_row("share", *answer.formatted(answer.neighbours.distribution))
    dist.add_row("distance-weighted", *answer.formatted(answer.neighbours.weighted))
    console.print(dist)
    return 0
