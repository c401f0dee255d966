"""Nothing lost, ever: a seeded corpus of damaged DBN files through the file path and the topic path.

Each damaged file goes through the whole flow beside an intact file of another session, and the
lake must obey the conservation law (``flows.jobs.accounting``): every byte of the damaged
file's records is in a Bronze row or a dead letter, exactly once; a file whose header does not
read is one ``bad_header`` dead letter holding its bytes; the intact file lands byte for byte.
The flow always ends normally, the lake passes every integrity check, and a second run over the
same lake is a no-op. Published to a topic, the same corpus obeys the law message by message.
"""

from __future__ import annotations

import shutil
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard

from connectors.delta.tables import ALL_TABLES, SILVER_BOOK_ANOMALIES
from flows.app import prepare
from flows.jobs.accounting import Piece, account_for_file, message_problems, pieces_of
from flows.jobs.integrity import check_lake
from flows.runner import run_flow
from replay.publish import publish_files
from tests.conftest import app_config
from tests.flows.mutants import Mutant, write_mutants
from tests.typed import present

pytestmark = pytest.mark.integration

KINDS = ("byte_flips", "zero_lengths", "huge_lengths", "unknown_rtypes", "truncated_record", "truncated_zst",
         "garbage_appended", "garbage_inserted", "garbage_inserted_mid_record", "block_duplicated",
         "zstd_frame_corrupt", "zstd_silent_damage", "garbage_after_frame", "plain_garbage_inserted",
         "metadata_symbol_flipped", "metadata_length_broken", "empty", "text_named_dbn")
UNREADABLE = {"metadata_length_broken", "empty", "text_named_dbn"}
INTACT_RECORDS = 12_000


@pytest.fixture(name="corpus", scope="module")
def fixture_corpus(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Mutant], list[Path]]:
    """The mutants of the first sample day's MBO file, and the files every run reads beside one:
    both days' definitions and the second day's first 12,000 MBO records (intact)."""
    out = tmp_path_factory.mktemp("mutants")
    days = sorted(sample_dir.glob("*.mbo.dbn.zst"))
    mutants = {m.name: m for m in write_mutants(days[0], out / "corpus")}
    plain = zstandard.ZstdDecompressor().stream_reader(days[1].read_bytes()).read()
    header = int.from_bytes(plain[4:8], "little") + 8
    intact = out / days[1].name
    intact.write_bytes(zstandard.ZstdCompressor().compress(plain[: header + INTACT_RECORDS * 56]))
    return mutants, [*sorted(sample_dir.glob("*.definition.dbn.zst")), intact]


def test_the_corpus_holds_every_kind_of_damage(corpus) -> None:
    mutants, _ = corpus
    assert tuple(mutants) == KINDS
    assert {name for name, m in mutants.items() if not m.header_intact} == UNREADABLE


@pytest.mark.parametrize("kind", KINDS)
def test_file_path_keeps_every_byte(corpus, kind: str, tmp_path: Path) -> None:
    mutants, beside = corpus
    mutant = mutants[kind]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in (mutant.path, *beside):
        shutil.copy(path, inputs / path.name)
    damaged, intact = inputs / mutant.path.name, inputs / beside[-1].name
    cfg = app_config([inputs], tmp_path / "lake")

    first = prepare(cfg)
    run_flow(first)  # raises if the flow fails

    lake = first.lake
    account = account_for_file(lake, damaged)
    assert account.problems == ()
    if not mutant.header_intact:  # then the file as it is, in bad_header dead letters
        assert {p.kind for p in pieces_of(lake, account.source)} == {"bad_header"}
    intact_account = account_for_file(lake, intact)
    assert (intact_account.problems, intact_account.dead_letters) == ((), 0)
    assert [r.name for r in check_lake(lake) if not r.ok] == []
    versions = {spec.name: present(lake.open(spec)).version() for spec in ALL_TABLES}

    again = prepare(cfg)
    run_flow(again)

    assert again.plan.files == () and len(again.plan.skipped) == len(beside) + 1
    assert {spec.name: present(lake.open(spec)).version() for spec in ALL_TABLES} == versions


def test_topic_path_keeps_every_byte_of_every_message(corpus, kafka_broker, tmp_path: Path) -> None:
    """Every mutant and the intact files, published to one topic (the publisher forwards what it
    cannot decode as it is), read by a bounded flow: each message is rebuilt from its pieces."""
    mutants, beside = corpus
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in (*(m.path for m in mutants.values()), *beside):
        shutil.copy(path, inputs / path.name)
    topic = f"mbo_raw_{uuid.uuid4().hex[:10]}"
    report = publish_files([inputs], kafka_broker.bootstrap, topic, None, partitions=2)
    cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], tmp_path / "lake")
    run = prepare(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True)))

    run_flow(run)

    messages = _read_all(kafka_broker.bootstrap, topic)
    assert len(messages) == report.messages and report.faults > 0
    sizes = {"definition": 520, "statistics": 80}
    by_message: dict[tuple[int, int], list[Piece]] = defaultdict(list)
    for partition in {partition for partition, _ in messages}:
        for p in pieces_of(run.lake, f"kafka:{topic}/{partition}"):
            by_message[(partition, p.position >> 20)].append(replace(p, position=p.position & 0xFFFFF))
    problems = []
    for (partition, offset), value in sorted(messages.items()):
        found = message_problems(by_message[(partition, offset)], value, sizes)
        problems += [f"{partition}@{offset}: {p}" for p in found]
    assert problems == []
    # a damaged timestamp a session ahead moves one mutant's remaining records after the next day's
    # in the merged feed: they arrive after their session closed, and land in Bronze only
    late = {(r["contract_id"], str(r["session_date"])) for r in run.lake.read(SILVER_BOOK_ANOMALIES).to_pylist()
            if r["anomaly"] == "late_record"}
    assert late and {day for _, day in late} == {"2025-11-03"}
    assert [r.name for r in check_lake(run.lake) if not r.ok] == []


def _read_all(bootstrap: str, topic: str) -> dict[tuple[int, int], bytes]:
    """Every message of ``topic``, by (partition, offset), read to each partition's end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "mutation-test", "enable.partition.eof": True,
                         "enable.auto.commit": False})
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    out: dict[tuple[int, int], bytes] = {}
    ended: set[int] = set()
    try:
        while len(ended) < len(partitions):
            msg = consumer.poll(10)
            assert msg is not None, "the broker went quiet before every partition's end"
            if msg.error() is not None:
                assert present(msg.error()).code() == KafkaError._PARTITION_EOF, msg.error()
                ended.add(present(msg.partition()))
                continue
            out[(present(msg.partition()), present(msg.offset()))] = present(msg.value())
    finally:
        consumer.close()
    return out
