"""``spymaster hud``: the heads-up display, a page served with its frames over a WebSocket."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING

from flows.config import load_config
from operators.errors import ConfigError

if TYPE_CHECKING:  # the server (aiohttp) is imported when the command runs, not when --help is built
    from flows.services.hud import FrameSource


def _clock(text: str) -> dtime:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM (New York time), got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hud",
        help="the heads-up display: the live flow, or a recorded session, in a browser page (heatmap, ladder, "
             "levels, setup)",
        description="Serves the page at / and Arrow IPC frames over a WebSocket at /ws (docs/hud.md): per contract "
                    "and second the top-10 ladder, the wall and vacuum surfaces, the physics bands, the six key "
                    "levels and the newest setup with the model's and the nearest setups' outcome shares. "
                    "Live (the default): follows the flow's output topics, SPYMASTER_OUTPUT_BOOTSTRAP and "
                    "SPYMASTER_OUTPUT_TOPICS as the flow has them, which must tee the eight tables a frame is made "
                    "of (the error says which to add). Replay (--lake or --session): plays one session of the "
                    "lake at real time x --speed. A page that connects gets the last --history-minutes, then every "
                    "new second. Open the printed URL in a browser.",
    )
    p.add_argument("--lake", help="replay this lake (default for --session: SPYMASTER_LAKE or ./lake)")
    p.add_argument("--session", type=date.fromisoformat,
                   help="replay this session YYYY-MM-DD (with --lake alone: the lake's latest)")
    p.add_argument("--speed", type=float, default=1.0, help="replay: real time x SPEED (default 1)")
    p.add_argument("--from", dest="start", type=_clock,
                   help="replay: start at this New York time HH:MM of the session (default: its first second)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--history-minutes", type=float, default=15.0,
                   help="minutes a page gets on (re)connecting, and the most a slow page is kept behind (default 15)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.services.hud import HudSettings, serve

    if args.history_minutes <= 0:
        raise ConfigError(f"--history-minutes must be > 0, got {args.history_minutes}")
    settings = HudSettings(args.host, args.port, args.history_minutes)
    if args.lake is None and args.session is None:
        serve(_live(), settings)
    else:
        serve(_replay(args), settings)
    return 0


def _live() -> FrameSource:
    from connectors.hud.topics import TopicRows, hud_topics
    from flows.services.hud import LiveSource, live_schemas

    outputs = load_config().outputs
    topics = hud_topics(outputs)
    chains = "gex_summary" in topics
    print(f"following {len(topics)} topics on {outputs.bootstrap} from their beginning"
          f"{'' if chains else ' (no GEX: tee silver.gex_summary_1s and silver.gex_surface_1s to show it)'}"
          "; Ctrl-C to stop", file=sys.stderr, flush=True)
    return LiveSource(TopicRows(outputs, topics), live_schemas(gex=chains))


def _replay(args: argparse.Namespace) -> FrameSource:
    from connectors.delta.lake import Lake
    from connectors.hud.lake import sessions
    from flows.services.hud import ReplaySource

    lake_cfg = load_config().lake
    lake = Lake(args.lake or lake_cfg.root, dict(lake_cfg.storage_options))
    session = args.session
    if session is None:
        recorded = sessions(lake)
        if not recorded:
            raise ConfigError(f"the lake at {lake.root} has no book rows: run `make sample` or `spymaster replay` "
                              "first, or pass --lake")
        session = recorded[-1]
    print(f"loading session {session.isoformat()} from {lake.root} ...", file=sys.stderr, flush=True)
    source = ReplaySource(lake, session, speed=args.speed, start=args.start)
    names = ", ".join(f"{c.contract} ({c.events:,} events)" for c in source.contracts())
    print(f"replaying {names} at x{args.speed:g}; Ctrl-C to stop", file=sys.stderr, flush=True)
    return source
