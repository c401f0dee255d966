"""A chain fed by several sources (a Bronze replay: one slice per option) gives the rows of the
same options read from one file, whatever order the sources arrive in, and across a snapshot and
a resume; it waits for every source the plan names."""

from __future__ import annotations

import pickle
from dataclasses import astuple
from pathlib import Path

import databento
import numpy as np
import pyarrow as pa
import pytest

from connectors.dbn.chains import ChainFacts
from connectors.dbn.files import read_mbo_file
from connectors.delta.option_rows import gex_summary_rows, gex_surface_rows, options_top_rows
from flows.items import ChainEnd, ChainRows, OptionSlice, UnderlyingSeconds, book_key
from flows.steps.option_chain import ChainLogic
from operators.options.chain import NS, ChainGexConfig, chain_key
from operators.sessions import date_to_day
from replay.contracts import CONTRACTS
from replay.synth import SampleManifest, write_sample

ESZ5 = CONTRACTS[0].instrument_id
SOURCES = ("bronze:a", "bronze:b", "bronze:c")


@pytest.fixture(name="day", scope="module")
def fixture_day(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("sources"), days=1, seed=4, events_per_day=20_000, options=True)


def _underlying(sample: SampleManifest) -> tuple[np.ndarray, np.ndarray]:
    """ESZ5's true mid at the close of each second it had an event."""
    truth = databento.DBNStore.from_file(sample.days[0].truth).to_ndarray()
    mine = truth[truth["instrument_id"] == ESZ5]
    close = (mine["ts_recv"].astype(np.int64) // NS + 1) * NS
    last = np.flatnonzero(np.r_[close[1:] != close[:-1], True])
    return close[last], (mine["bid_px_00"][last].astype(np.float64) + mine["ask_px_00"][last]) / 2e9


def _items(sample: SampleManifest, split: bool, chunk: int) -> tuple[str, list, ChainFacts]:
    options = sample.days[0].options
    assert options is not None
    records, instruments, _ = read_mbo_file(Path(options.mbo))
    day = date_to_day(sample.days[0].trade_date)
    key = chain_key(ESZ5, day)
    closes, mids = _underlying(sample)
    half = len(closes) // 2
    items: list = [UnderlyingSeconds(key, closes[:half], mids[:half], False)]  # the underlying runs ahead
    if split:  # each source holds the options whose id falls to it, and is read whole before the next
        parts = [(sid, records[records["instrument_id"] % len(SOURCES) == n]) for n, sid in enumerate(SOURCES)]
    else:
        parts = [("dbn:one", records)]
    for sid, mine in parts:
        for at in range(0, len(mine), chunk):
            piece = mine[at:at + chunk]
            ids = {int(i) for i in np.unique(piece["instrument_id"])}
            items.append(OptionSlice(key, sid, piece, {i: instruments[i] for i in ids}, day))
        items.append(ChainEnd(key, sid))
        if sid == parts[0][0]:
            items.append(UnderlyingSeconds(key, closes[half:], mids[half:], True))
    facts = ChainFacts(underlyings=frozenset({ESZ5}), books=frozenset({book_key(ESZ5, day)}),
                       symbols={ESZ5: "ESZ5"}, sessions=frozenset({book_key(ESZ5, day)}),
                       feeds={key: frozenset(SOURCES)} if split else {})
    return key, items, facts


def _run(facts: ChainFacts, items: list, *, resume_after: int | None = None) -> list[ChainRows]:
    logic, out = ChainLogic(facts, ChainGexConfig(), None), []
    for n, item in enumerate(items):
        rows, _ = logic.on_item(item)
        out += rows
        if n == resume_after:  # a snapshot as the recovery store keeps it, and a new logic from it
            logic = ChainLogic(facts, ChainGexConfig(), pickle.loads(pickle.dumps(logic.snapshot())))
    return out


def _tables(out: list[ChainRows]) -> tuple[np.ndarray, list[tuple], np.ndarray]:
    tops = np.concatenate([o.tops for o in out])
    summaries = [astuple(s) for o in out for s in o.summaries]
    net = np.concatenate([np.asarray(s["net_gex"]) for o in out for s in o.surfaces])
    return tops, summaries, net


def test_many_sources_give_the_one_file_rows_in_any_order_and_across_a_resume(day: SampleManifest) -> None:
    _, one_items, one_facts = _items(day, split=False, chunk=4_000)
    _, many_items, many_facts = _items(day, split=True, chunk=1_500)

    want = _run(one_facts, one_items)
    got = _run(many_facts, many_items)
    resumed = _run(many_facts, many_items, resume_after=len(many_items) // 2)

    want_tops, want_summaries, want_net = _tables(want)
    assert len(want_tops) > 1_000 and len(want_summaries) > 100
    for rows in (got, resumed):
        tops, summaries, net = _tables(rows)
        assert np.array_equal(tops, want_tops)
        assert repr(summaries) == repr(want_summaries)  # NaN zero-gamma levels compare by their text
        assert np.array_equal(net, want_net)
        assert rows[-1].final and rows[-1].sources == SOURCES and rows[-1].source_id == SOURCES[0]
        assert [r.final for r in rows].count(True) == 1
    # nothing of the GEX, and no option top, before the last source has spoken
    last_heard = next(n for n, item in enumerate(many_items) if getattr(item, "source_id", "") == SOURCES[-1])
    early = _run(many_facts, many_items[:last_heard])
    assert not early or not any(len(r.tops) or r.summaries for r in early)
    assert want[-1].sources == ("dbn:one",)  # one unnamed source: the one heard


def test_every_row_the_chain_thread_computes_comes_out_as_the_writers_would_build_it(day: SampleManifest) -> None:
    """The chain's numbers run on its own thread: rows still in flight when the input ends come
    out at ``on_eof``, the same rows a step that waits at every item gives, and the Arrow rows
    built there are the ones ``ChainWrites`` would build."""
    _, items, facts = _items(day, split=False, chunk=4_000)
    cut = items[: 2 * len(items) // 3]  # the input ends before the chain does
    logic, late = ChainLogic(facts, ChainGexConfig(), None), []
    for item in cut:
        late += logic.on_item(item)[0]
    late += logic.on_eof()[0]
    waited_logic, waited = ChainLogic(facts, ChainGexConfig(), None), []
    for item in cut:
        waited += waited_logic.on_item(item)[0]
        waited_logic.snapshot()  # waits for the rows asked so far; they come out with the next call
    waited += waited_logic.on_eof()[0]

    tops, summaries, net = _tables(late)
    assert len(tops) > 100 and len(summaries) > 10 and not any(r.final for r in late)
    want_tops, want_summaries, want_net = _tables(waited)
    assert np.array_equal(tops, want_tops) and repr(summaries) == repr(want_summaries)
    assert np.array_equal(net, want_net)
    for rows in late:
        assert rows.tables is not None
        uid, when = ESZ5, day.days[0].trade_date
        assert _same(rows.tables.tops, options_top_rows(rows.tops, rows.instruments, rows.underlier, uid, when))
        surface, seconds = gex_surface_rows(rows.surfaces, uid, when)
        assert _same(rows.tables.surface[0], surface) and np.array_equal(rows.tables.surface[1], seconds)
        assert _same(rows.tables.summary[0], gex_summary_rows(rows.summaries, uid, when)[0])


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN (Arrow's own ``equals`` has NaN unequal to itself)."""
    if not a.schema.equals(b.schema) or a.num_rows != b.num_rows:
        return False
    for x, y in zip(a.columns, b.columns, strict=True):
        if pa.types.is_floating(x.type):
            if not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True) or x.null_count != y.null_count:
                return False
        elif not x.equals(y):
            return False
    return True
