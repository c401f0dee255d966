"""What the main job tells a person: a line per table as its rows are committed, and a closing
summary to read at a glance (tables, episodes, scores, dead letters, and what to try next).

``bytewax.run`` owns the main thread: it imports ``flows.main``, then runs the flow. So the lines
come from a daemon thread that watches the sinks' counters, and the summary from an ``atexit``
handler, which runs once ``cli_main`` has returned. A run that ends in an exception prints no
summary (``sys.excepthook`` saw it): its traceback is the last word.
"""

from __future__ import annotations

import atexit
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table

from connectors.delta.lake import Lake
from connectors.delta.sink import DeltaAppendSink
from connectors.delta.tables import (
    ALL_TABLES,
    GOLD_INFERENCE_SCORES,
    GOLD_LABELS,
    GOLD_SETUP_VECTORS,
    SILVER_BOOK_ANOMALIES,
    SILVER_LEVEL_APPROACH,
)
from flows.app import PreparedRun
from flows.config import DEFAULT_LAKE
from flows.jobs.status import dead_letters
from operators.learning.classes import CLASSES

POLL_S = 0.5
"""How often the watcher reads the sinks' counters: a commit shows within half a second."""


def narrate(run: PreparedRun, console: Console | None = None, out: Console | None = None) -> None:
    """Say what the run will do, a line per commit while it runs (on ``console``, stderr), and the
    closing summary on ``out`` (stdout) at exit."""
    console = console or Console(stderr=True)
    out = out or Console()
    console.print(opening_line(run), soft_wrap=True)
    watcher = CommitWatcher(run, console)
    watcher.start()
    failed = _failure_flag()
    started = time.perf_counter()

    def close() -> None:
        watcher.stop()
        if not failed():
            out.print(closing_summary(run, time.perf_counter() - started, committed=watcher.committed()))
            out.print(next_steps(run), soft_wrap=True, markup=False, highlight=False)  # a command copies as one line

    atexit.register(close)


def opening_line(run: PreparedRun) -> str:
    plan, dates = run.plan, run.cfg.source.dates
    which = f" of {_span(dates.first.isoformat(), dates.last.isoformat())}" if dates else ""
    if not plan.files:
        return f"nothing to replay: the {len(plan.skipped)} file(s){which} are already in {run.lake.root}"
    skipped = f" ({len(plan.skipped)} already there)" if plan.skipped else ""
    return f"replaying {len(plan.files)} file(s){which} into {run.lake.root}{skipped}"


def delta_sinks(run: PreparedRun) -> dict[str, DeltaAppendSink]:
    """The run's Delta sinks by table (tests may swap in others, which count nothing)."""
    out: dict[str, DeltaAppendSink] = {}
    for name, sink in run.sinks.by_table.items():
        if isinstance(sink, DeltaAppendSink):
            out[name] = sink
    return out


def committed_rows(run: PreparedRun) -> dict[str, int]:
    """Rows this process's Delta sinks have committed so far, per table."""
    return {name: sink.stats.rows for name, sink in delta_sinks(run).items()}


class CommitWatcher:
    """A daemon thread that prints a line per table whenever more of its rows are committed."""

    def __init__(self, run: PreparedRun, console: Console) -> None:
        self._sinks = delta_sinks(run)
        self._console = console
        self._seen = dict.fromkeys(self._sinks, 0)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spymaster-commits", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._report()

    def committed(self) -> dict[str, int]:
        """Rows committed per table by this process so far."""
        return {name: sink.stats.rows for name, sink in self._sinks.items()}

    def _loop(self) -> None:
        while not self._done.wait(POLL_S):
            self._report()

    def _report(self) -> None:
        for name, rows in self.committed().items():
            if rows > self._seen[name]:
                self._console.print(f"  committed {rows - self._seen[name]:>10,} rows to {name}", highlight=False)
                self._seen[name] = rows


def closing_summary(run: PreparedRun, seconds: float, *, title: str | None = None,
                    committed: dict[str, int] | None = None) -> RenderableType:
    """Tables and rows, episodes by level type and outcome, scores by status, dead letters and
    book anomalies. ``committed``: rows this process's sinks wrote per table, shown beside the
    totals (None when the run's sinks were in other processes)."""
    lake = run.lake
    letters = dead_letters(lake)
    heading = title or f"[bold]{lake.root}[/bold] after this run ({seconds:,.1f} s)"
    return Group(Rule(heading), _tables(run, committed), _episodes(lake), _scores(lake),
                 counts_table("dead letters", letters, "reason"),
                 counts_table("book anomalies", book_anomalies(lake), "kind"))


def book_anomalies(lake: Lake) -> dict[str, int]:
    """Anomalies the books counted, by kind, over the whole lake."""
    counts: Counter[str] = Counter()
    for row in lake.read(SILVER_BOOK_ANOMALIES, ["anomaly", "count"]).to_pylist():
        counts[row["anomaly"]] += row["count"]
    return dict(sorted(counts.items()))


def _tables(run: PreparedRun, committed: dict[str, int] | None) -> Table:
    table = Table(title="tables with rows", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    if committed is not None:
        table.add_column("written by this run", justify="right")
    for spec in ALL_TABLES:
        rows = run.lake.count(spec)
        if rows:
            mine = () if committed is None else (f"{committed.get(spec.name, 0):,}",)
            table.add_row(spec.name, f"{rows:,}", *mine)
    return table


def _episodes(lake: Lake) -> RenderableType:
    starts = Counter(lake.read(SILVER_LEVEL_APPROACH, ["level_type"])["level_type"].to_pylist())
    if not starts:
        return "episodes: none"
    labels = lake.read(GOLD_LABELS, ["level_type", "outcome"]).to_pylist()
    outcomes = Counter((r["level_type"], r["outcome"]) for r in labels)
    table = Table(title=f"episodes ({sum(starts.values()):,}) by level and outcome", title_justify="left")
    for name in ("level", *CLASSES, "unlabelled", "all"):
        table.add_column(name, justify="left" if name == "level" else "right")
    for level, count in sorted(starts.items()):
        labelled = [outcomes[(level, c)] for c in CLASSES]
        table.add_row(level, *(f"{n:,}" for n in labelled), f"{count - sum(labelled):,}", f"{count:,}")
    return table


def _scores(lake: Lake) -> RenderableType:
    rows = lake.read(GOLD_INFERENCE_SCORES, ["status", "model_id", "model_version"]).to_pylist()
    if not rows:
        return "inference scores: none"
    counts = Counter((r["status"], r["model_id"], r["model_version"]) for r in rows)
    table = Table(title=f"scores ({len(rows):,}) by status", title_justify="left")
    table.add_column("status")
    table.add_column("model")
    table.add_column("rows", justify="right")
    for (status, model, version), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][2]))):
        table.add_row(status, f"{model} version {version}" if version else "-", f"{n:,}")
    return table


def counts_table(what: str, counts: dict[str, int], key: str) -> RenderableType:
    """``counts`` (``key`` → rows) as a table titled with their total, or "``what``: none"."""
    if not counts:
        return f"{what}: none"
    table = Table(title=f"{what} ({sum(counts.values()):,}) by {key}", title_justify="left")
    table.add_column(key)
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    return table


def next_steps(run: PreparedRun) -> str:
    """Three commands to try next, with this lake's path and a real episode id in them."""
    root = run.lake.root
    lake_arg = "" if root == DEFAULT_LAKE else f" --lake {shlex.quote(root)}"
    tool, python = _tool("spymaster"), _tool("python")
    lines = ["try next:", f"  {tool} status{lake_arg}"]
    episode = example_episode(run.lake)
    if episode is not None:
        lines.append(f"  {tool} similar --episode {episode}{lake_arg}")
    lines.append(f"  {python} -c \"{read_snippet(Path(root) / 'gold' / 'inference_scores')}\"")
    return "\n".join(lines)


def read_snippet(table: Path) -> str:
    """Python that prints a table's scores with delta-rs alone. Through its query engine:
    ``DeltaTable.to_pandas`` on a partitioned table can abort the interpreter at exit
    (``connectors.delta.lake.Lake.read``)."""
    path = table.as_posix().replace("'", "\\'")
    return ("import pyarrow as pa; from deltalake import DeltaTable, QueryBuilder; "
            f"t = DeltaTable('{path}'); print(pa.table(QueryBuilder().register('scores', t).execute("
            "'select episode_id, level_type, direction, p_break, p_reject, p_chop from scores')"
            ".read_all()).to_pandas())")


def example_episode(lake: Lake) -> str | None:
    """The first episode scored ``ok`` (in event time), else the first with a vector."""
    scores = lake.read(GOLD_INFERENCE_SCORES, ["episode_id", "status", "vector_time"]).to_pylist()
    ok = sorted((r["vector_time"], r["episode_id"]) for r in scores if r["status"] == "ok")
    if ok:
        return str(ok[0][1])
    vectors = lake.read(GOLD_SETUP_VECTORS, ["episode_id", "vector_time"]).to_pylist()
    return str(min((r["vector_time"], r["episode_id"]) for r in vectors)[1]) if vectors else None


def _tool(name: str) -> str:
    """The command as this interpreter's environment has it (``.venv/bin/spymaster``), relative to
    the working directory when inside it; the bare name when it is not there."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        return name
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def _span(first: str, last: str) -> str:
    return first if first == last else f"{first}..{last}"


def _failure_flag() -> Callable[[], bool]:
    """Whether an uncaught exception has reached ``sys.excepthook`` since this was called."""
    seen = threading.Event()
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        seen.set()
        previous(kind, value, tb)

    sys.excepthook = hook
    return seen.is_set
