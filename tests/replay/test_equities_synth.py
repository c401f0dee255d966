"""``spymaster synth --equities``: the stock's files are real DBN of Nasdaq's shape, deterministic,
and leave the ES files byte for byte as they were."""

from __future__ import annotations

from pathlib import Path

import databento as db
import pytest

from replay.equities import CENT, TSLA
from replay.synth import write_sample


@pytest.fixture(name="written", scope="module")
def fixture_written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, equities in (("a", True), ("b", True), ("futures", False)):
        out[name] = tmp_path_factory.mktemp(name)
        write_sample(out[name], days=2, seed=4, events_per_day=6_000, equities=equities)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_gives_the_same_bytes(written: dict[str, Path]) -> None:
    a, b = _files(written["a"]), _files(written["b"])

    assert a == b
    assert sum(name.startswith(("xnas-itch", "truth/xnas-itch")) for name in a) == 2 * 4


def test_the_futures_files_are_the_same_with_or_without_the_stock(written: dict[str, Path]) -> None:
    with_stock, futures = _files(written["a"]), _files(written["futures"])

    assert {n: v for n, v in with_stock.items() if "xnas-itch" not in n} == futures


def test_the_stock_is_defined_as_nasdaq_defines_a_share(written: dict[str, Path]) -> None:
    store = db.DBNStore.from_file(next(written["a"].glob("xnas-itch-*.definition.dbn.zst")))
    [row] = store.to_ndarray()
    mbo = db.DBNStore.from_file(next(written["a"].glob("xnas-itch-*.mbo.dbn.zst")))
    records = mbo.to_ndarray()

    assert (store.metadata.dataset, mbo.metadata.dataset) == ("XNAS.ITCH", "XNAS.ITCH")
    assert (row["raw_symbol"], row["instrument_class"], row["min_price_increment"]) == (b"TSLA", b"K", CENT)
    assert set(records["instrument_id"].tolist()) == {TSLA.instrument_id}
    assert set(records["publisher_id"].tolist()) == {2}
    prices = records["price"][records["price"] < 2**62]
    assert (prices % CENT == 0).all() and 200 * 10**9 < prices.min() < prices.max() < 350 * 10**9
