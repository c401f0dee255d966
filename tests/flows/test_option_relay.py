"""The option relay of a topic run (``flows.steps.option_relay``): each chain gets its options'
records in ``ts_recv`` order, only once every partition has passed them, whatever order the
partitions' news arrive in; ticks, notices and ends in the order the chain needs them."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from datetime import date
from itertools import pairwise

import numpy as np
import pytest

from connectors.dbn.chains import OI_DTYPE, ChainFacts
from flows.items import ChainEnd, ChainNotice, ChainTick, OptionSlice, PartitionNews
from flows.steps.option_relay import FOREVER, OptionRelayLogic, Relayed
from operators.calendar import calendar_of
from operators.chunks import InstrumentInfo
from operators.options.chain import NS, chain_key
from operators.records import MBO_DTYPE
from operators.sessions import date_to_day

P0, P1, P2 = "kafka:t/0", "kafka:t/1", "kafka:t/2"
DAY = date(2025, 11, 3)
UNDERLYING = InstrumentInfo(100, "ESZ5", "ES", "FUT", tick=250_000_000, venue="GLBX")
KEY = chain_key(100, date_to_day(DAY))
END = calendar_of("GLBX.MDP3").session_end_ns(DAY)
T0 = END - 3_600 * NS  # an hour before the close


def _option(iid: int) -> InstrumentInfo:
    return InstrumentInfo(iid, f"ESZ5 C{iid}", "ES", "OPT", tick=50_000_000, multiplier=50.0,
                          strike_price=6_000 * 10**9, underlying_id=100, option_right="C", venue="GLBX")


def _records(iid: int, seconds: list[float]) -> np.ndarray:
    out = np.zeros(len(seconds), MBO_DTYPE)
    out["ts_recv"] = [T0 + round(s * NS) for s in seconds]
    out["instrument_id"] = iid
    out["sequence"] = np.arange(len(seconds))
    return out


def _news(source: str, iid: int, seconds: list[float], lateness_s: float = 1.0) -> PartitionNews:
    records = _records(iid, seconds)
    part = OptionSlice(KEY, source, records, {iid: _option(iid)}, date_to_day(DAY))
    mark = int(records["ts_recv"].max()) - round(lateness_s * NS)
    return PartitionNews(source, mark, dataset="GLBX.MDP3", options=(part,))


def _relay(partitions: tuple[str, ...] = (P0, P1), oi: np.ndarray | None = None) -> OptionRelayLogic:
    return OptionRelayLogic(ChainFacts(partitions=partitions, open_interest=oi if oi is not None
                                       else np.zeros(0, OI_DTYPE)), None)


def _feed(relay: OptionRelayLogic, news: list[PartitionNews]) -> list[Relayed]:
    out: list[Relayed] = []
    for item in news:
        out += relay.on_item(item)[0]
    return out


def _sent(out: Sequence[tuple[str, object]]) -> np.ndarray:
    parts = [v.records for _, v in out if isinstance(v, OptionSlice)]
    return np.concatenate(parts) if parts else np.zeros(0, MBO_DTYPE)


PARTITION_0 = [_news(P0, 201, [0.1, 0.2, 2.5]), _news(P0, 201, [4.0, 6.0]), _news(P0, 203, [7.5, 9.0])]
PARTITION_1 = [_news(P1, 202, [0.05, 1.5]), _news(P1, 202, [3.0, 3.2, 5.5]), _news(P1, 202, [8.0])]
ENDS = [PartitionNews(P0, -1, ended=True), PartitionNews(P1, -1, ended=True)]


@pytest.mark.parametrize("order", ["one_then_other", "interleaved", "other_then_one"])
def test_every_interleaving_of_the_partitions_gives_the_chain_the_same_records_in_time_order(order: str) -> None:
    news = {"one_then_other": PARTITION_0 + PARTITION_1,
            "interleaved": [n for pair in zip(PARTITION_0, PARTITION_1, strict=True) for n in pair],
            "other_then_one": PARTITION_1 + PARTITION_0}[order]
    relay = _relay()
    marks: dict[str, int] = {}
    for item in news:  # nothing goes out before both partitions have passed it
        out = relay.on_item(item)[0]
        marks[item.source_id] = item.watermark_ns
        clock = min(marks.get(p, -1) for p in (P0, P1))
        sent = _sent(out)
        assert (sent["ts_recv"].astype(np.int64) < clock).all()
        held = relay.snapshot().held.get(KEY, ())
        assert all((p.records["ts_recv"].astype(np.int64) >= clock).all() for p in held)
    out = _feed(relay, ENDS)
    whole = _sent(_feed(_relay(), news + ENDS))
    every = np.concatenate([n.options[0].records for n in PARTITION_0 + PARTITION_1])
    assert whole.tobytes() == every[np.argsort(every["ts_recv"], kind="stable")].tobytes()
    assert out[-1] == (KEY, ChainEnd(KEY, "kafka:t", underlying_book=False))


def test_the_chain_hears_of_itself_before_its_records_then_ticks_then_its_end() -> None:
    oi = np.zeros(1, OI_DTYPE)
    oi["instrument_id"], oi["quantity"], oi["stat_type"] = 201, 1_234, 9
    relay = _relay(oi=oi)
    out = _feed(relay, [PartitionNews(P1, -1, dataset="GLBX.MDP3", instruments=(UNDERLYING,)),
                        PartitionNews(P1, -1, dataset="GLBX.MDP3", books=(f"100:{date_to_day(DAY)}",)),
                        PARTITION_0[0], PARTITION_1[0]])
    kinds = [type(v).__name__ for _, v in out]
    assert kinds == ["ChainNotice", "OptionSlice", "ChainTick"]
    notice = out[0][1]
    assert isinstance(notice, ChainNotice) and notice.underlying == UNDERLYING
    assert notice.open_interest.tobytes() == oi.tobytes()
    later = np.zeros(2, OI_DTYPE)
    later["instrument_id"] = [202, 203]
    out = _feed(relay, [PartitionNews(P0, -1, open_interest=later), PARTITION_1[1], PARTITION_0[1]])
    assert isinstance(out[0][1], ChainNotice) and out[0][1].open_interest.tobytes() == later.tobytes()
    ticks = [v for _, v in out if isinstance(v, ChainTick)]
    assert ticks and all(t.source_id == "kafka:t" and t.clock_ns == relay.snapshot().clock for t in ticks[-1:])
    assert [type(v).__name__ for _, v in out][-1] == "ChainTick"  # the records of a step, then its clock
    closing = PartitionNews(P0, END + NS), PartitionNews(P1, END + 2 * NS)  # both past the session's end
    out = _feed(relay, list(closing))
    assert out[-1] == (KEY, ChainEnd(KEY, "kafka:t", underlying_book=True))
    assert not any(isinstance(v, ChainTick) for _, v in out)  # an end is the chain's last clock
    assert KEY not in relay.snapshot().ends and KEY in relay.snapshot().closed


def test_late_option_records_after_the_chains_end_are_counted_not_sent() -> None:
    relay = _relay()
    _feed(relay, [PARTITION_0[0], PARTITION_1[0], PartitionNews(P0, END), PartitionNews(P1, END)])
    out = _feed(relay, [_news(P0, 201, [3_000.0]), PartitionNews(P1, END + 5 * NS), PartitionNews(P0, END + 5 * NS)])
    assert out == [] and relay.snapshot().late == 1


def test_a_partition_that_has_not_spoken_holds_the_clock_until_it_says_it_is_idle() -> None:
    relay = _relay((P0, P1, P2))
    out = _feed(relay, PARTITION_0 + PARTITION_1)
    assert [type(v).__name__ for _, v in out] == ["ChainNotice"] and relay.snapshot().clock == -1
    out = _feed(relay, [PartitionNews(P2, -1, idle=True)])  # a tailed partition with nothing to read
    assert len(_sent(out)) == 10 and relay.snapshot().clock == PARTITION_1[-1].watermark_ns  # before 7 s
    assert _feed(relay, [PartitionNews(P2, T0 + 2 * NS)]) == []  # once it speaks it counts again
    assert relay.snapshot().clock == PARTITION_1[-1].watermark_ns
    assert _feed(relay, [PartitionNews(P0, FOREVER - 1)]) == []


def test_a_resumed_relay_sends_what_the_uninterrupted_one_does() -> None:
    news = [n for pair in zip(PARTITION_0, PARTITION_1, strict=True) for n in pair] + ENDS
    whole = _feed(_relay(), news)
    first = _relay()
    before = _feed(first, news[:3])
    state = pickle.loads(pickle.dumps(first.snapshot()))
    after = _feed(OptionRelayLogic(ChainFacts(partitions=(P0, P1)), state), news[3:])
    assert [(k, type(v).__name__) for k, v in before + after] == [(k, type(v).__name__) for k, v in whole]
    assert _sent(before + after).tobytes() == _sent(whole).tobytes()


def test_ticks_come_when_the_last_close_before_the_clock_moves() -> None:
    relay = _relay()
    _feed(relay, [_news(P0, 201, [0.0, 10.0], 0.0), _news(P1, 202, [0.5, 10.0], 0.0)])  # clock: T0 + 10 s
    clocks = [relay.snapshot().clock]
    for at in (10.0, 10.000001, 10.5, 11.0, 11.2):
        out = _feed(relay, [PartitionNews(P0, T0 + round(at * NS) + 1), PartitionNews(P1, T0 + round(at * NS) + 1)])
        clocks.append(relay.snapshot().clock)
        ticked = [v.clock_ns for _, v in out if isinstance(v, ChainTick)]
        last_close = [(c - 1) // NS for c in clocks[-2:]]
        assert bool(ticked) == (last_close[1] > last_close[0]), at
    assert all(a <= b for a, b in pairwise(clocks))


def test_an_idle_partition_is_not_waited_for_and_when_all_are_idle_nothing_is_in_flight() -> None:
    """A tailed partition whose data stopped trails the others by as much as its event time does;
    once it says it is idle the clock follows the others, and once they are idle too, the greatest
    watermark (every record read is in)."""
    relay = _relay((P0, P1, P2))
    _feed(relay, [_news(P0, 201, [0.1, 9.0]), _news(P1, 202, [0.2, 8.0]), _news(P2, 204, [0.3, 2.0])])
    assert relay.snapshot().clock == T0 + 1 * NS  # P2's 2 s less a second of lateness
    _feed(relay, [PartitionNews(P2, T0 + round(2.5 * NS), idle=True)])
    assert relay.snapshot().clock == T0 + 7 * NS  # P1's
    out = _feed(relay, [PartitionNews(P0, T0 + 9 * NS, idle=True), PartitionNews(P1, T0 + 8 * NS, idle=True)])
    assert relay.snapshot().clock == T0 + 9 * NS and len(_sent(out)) == 1  # P1's record at 8 s went out
    assert _feed(relay, [_news(P2, 204, [9.5])]) == []  # P2 speaks again: its watermark holds the clock
    assert relay.snapshot().idle == frozenset({P0, P1})
