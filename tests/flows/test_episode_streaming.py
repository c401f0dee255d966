"""The episode step streams: labels come out as they resolve, whatever the batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from connectors.dbn.files import read_mbo_file
from flows.config import AnalyticsConfig
from flows.items import BAR_NS, PriorSession, SeriesPiece
from flows.steps.session_episodes import SessionEpisodesLogic
from flows.steps.session_series import _trade_range
from operators.bars import BarBuilder
from operators.book import L3Book
from operators.chunks import InstrumentInfo
from operators.sessions import trade_date_days
from tests.typed import present


def _session_rows(sample_dir: Path) -> tuple[np.ndarray, InstrumentInfo, int]:
    records, instruments, _ = read_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    front = 42140864
    mine = records[records["instrument_id"] == front]
    book = L3Book(instruments[front].tick)
    rows = np.concatenate([book.apply_seconds(mine), book.close_seconds()])
    return rows, instruments[front], int(trade_date_days(mine["ts_recv"][:1])[0])


def _pieces(rows: np.ndarray, info, day: int, sizes: list[int]) -> list[SeriesPiece]:
    bars = BarBuilder(tick=info.tick)
    out, start = [], 0
    for i, size in enumerate(sizes):
        part = rows[start:start + size]
        start += size
        final = i == len(sizes) - 1
        closed = bars.feed(part)
        if final:
            closed = np.concatenate([closed, bars.close()])
        high, low = _trade_range(part)
        out.append(SeriesPiece("k", "src", info, day, part["ts_recv"].view(np.int64).copy(), part["mid_px"].copy(),
                               high, low, closed, final))
    return out


def _run(pieces: list[SeriesPiece]) -> list:
    logic = SessionEpisodesLogic(AnalyticsConfig(), None)
    updates, _ = logic.on_item(PriorSession("k", None))
    for piece in pieces:
        more, _ = logic.on_item(piece)
        updates += more
    return updates


def test_labels_stream_out_before_the_session_closes_and_batching_does_not_matter(sample_dir: Path) -> None:
    rows, info, day = _session_rows(sample_dir)
    one = _run(_pieces(rows, info, day, [len(rows)]))
    rng = np.random.default_rng(5)
    sizes, left = [], len(rows)
    while left > 0:
        sizes.append(min(left, int(rng.integers(1, 4000))))
        left -= sizes[-1]
    many = _run(_pieces(rows, info, day, sizes))

    def labels(updates: list) -> list[tuple]:
        resolved = [e for u in updates for e in u.resolved]
        return [(e.episode_id, int(e.label["outcome"]), int(e.label["resolved_ts"])) for e in resolved]

    def vectors(updates: list) -> dict[str, bytes]:
        return {e.episode_id: e.vector.tobytes() for u in updates for e in u.started}

    assert len(labels(one)) > 0
    assert sorted(labels(many)) == sorted(labels(one))
    assert vectors(many) == vectors(one)
    resolved_before_close = sum(len(u.resolved) for u in many[:-1])
    assert resolved_before_close > 0  # emitted as they resolved, not at the close
    assert many[-1].final and [lv.level_type for lv in many[-1].levels] == [lv.level_type for lv in one[-1].levels]


def test_a_vector_is_out_in_the_update_of_its_start_on_the_bar_grid_or_off_it(sample_dir: Path) -> None:
    """Fed one second at a time (as live), an episode's vector leaves with the update that fed its
    start second, also when the start sits exactly on a 5-second bar close: that bar comes out
    with the start's own row, not a second later. ``through_ns`` never promises an episode that
    comes later."""
    from flows.items import SERIES_STEP_NS

    rows, info, day = _session_rows(sample_dir)
    updates = _run(_pieces(rows, info, day, [1] * len(rows)))
    fed_to = [int(p) for p in rows["ts_recv"].view(np.int64)]
    on_grid = off_grid = 0
    promised = 0
    for u, last in zip(updates, fed_to, strict=True):
        for e in u.started:
            start = int(e.row["start_ts"])
            assert start >= promised, "an episode arrived after through_ns said none could"
            assert start == last, "a vector waited for a later row"
            if start % BAR_NS:
                off_grid += 1
            else:
                on_grid += 1
        if not u.final:
            assert u.through_ns <= last + SERIES_STEP_NS
        promised = max(promised, u.through_ns)
    assert off_grid > 0 and on_grid > 0


def test_a_resume_from_a_snapshot_mid_session_gives_the_same_updates(sample_dir: Path) -> None:
    """The snapshot keeps only the bar columns vectors read and no spare capacity; a logic resumed
    from it (after a pickle round trip, as the recovery store does) goes on exactly as one that
    never stopped, and its vectors equal those computed from whole bars."""
    import pickle

    from operators.bars import BAR_DTYPE
    from operators.vectors import VECTOR_BAR_FIELDS, setup_vectors

    rows, info, day = _session_rows(sample_dir)
    pieces = _pieces(rows, info, day, [600] * (len(rows) // 600) + [len(rows) % 600])
    whole = _run(pieces)
    cut = len(pieces) // 2
    first = SessionEpisodesLogic(AnalyticsConfig(), None)
    head, _ = first.on_item(PriorSession("k", None))
    for piece in pieces[:cut]:
        head += first.on_item(piece)[0]
    state = first.snapshot()
    session = present(state[3])
    assert session.bars.dtype.names == VECTOR_BAR_FIELDS
    assert session.bars.itemsize < BAR_DTYPE.itemsize / 2
    resumed = SessionEpisodesLogic(AnalyticsConfig(), pickle.loads(pickle.dumps(state)))
    tail = [u for piece in pieces[cut:] for u in resumed.on_item(piece)[0]]

    def view(updates: list) -> list[tuple]:
        return [(tuple((e.episode_id, e.vector.tobytes()) for e in u.started),
                 tuple((e.episode_id, int(e.label["outcome"])) for e in u.resolved), u.through_ns, u.final)
                for u in updates]

    assert view(head + tail) == view(whole)
    started = [e for u in whole for e in u.started]
    assert started
    all_bars = np.concatenate([p.bars for p in pieces])
    ts, mid = rows["ts_recv"].view(np.int64), rows["mid_px"]
    for e in started[:5]:
        full = setup_vectors(np.array([e.row]), (e.level_type,), np.array([e.level_known_ts], np.int64), ts, mid,
                             all_bars, session.clock.rth_start, info.tick / 1e9)
        assert full[0].tobytes() == e.vector.tobytes()


def test_a_snapshot_stays_a_few_minutes_of_rows_however_long_the_session_has_run(sample_dir: Path) -> None:
    """A live flow snapshots this step every epoch: what it holds must not grow with the session.
    Fed a second at a time, the state keeps only the rows and bars a vector can still read and
    the episodes still open, and its pickle is no bigger late in the session than early on."""
    import pickle

    from operators.vectors import LOOKBACK_NS

    rows, info, day = _session_rows(sample_dir)
    pieces = _pieces(rows, info, day, [1] * len(rows))
    logic = SessionEpisodesLogic(AnalyticsConfig(), None)
    logic.on_item(PriorSession("k", None))
    sizes, found = [], 0
    for n, piece in enumerate(pieces[:-1], 1):
        found += sum(len(u.started) for u in logic.on_item(piece)[0])
        if n % 2000 == 0:
            session = present(logic.snapshot()[3])
            span = int(session.ts[-1] - session.ts[0])
            assert span <= LOOKBACK_NS or len(session.ts) == 1 or int(session.ts[1]) > int(session.ts[-1]) - LOOKBACK_NS
            assert len(session.bars) <= LOOKBACK_NS // BAR_NS
            assert all(e.label is None or e.vector is None for e in session.open.values())
            sizes.append(len(pickle.dumps(logic.snapshot())))
    assert found > 0 and len(sizes) >= 4
    assert max(sizes) < 64_000, sizes
    assert max(sizes[len(sizes) // 2:]) <= 2 * max(sizes[: len(sizes) // 2]), sizes
