"""``spymaster status`` on a live input: how far the lake is behind the topic, per partition.

A day of the sample is published (with the producer's own batching, so that tansu's ListOffsets
answer lags the real end: ``test_bounded_end``) and read by a bounded run: the lake is level with
the topic. Then the next day is published and not read: the lake is behind by exactly its messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flows.jobs.status import live_lag
from replay.publish import publish_files
from tests.kafka.test_bounded_end import broker_ends

PARTITIONS = 2


def _day(sample_dir: Path, day: str) -> list[Path]:
    return sorted(p for p in sample_dir.glob(f"*{day}*.dbn.zst"))


def test_lag_is_the_messages_the_lake_has_not_read(sample_dir: Path, kafka_broker, topic: str, kafka_replay,
                                                    tmp_path: Path) -> None:
    url = f"kafka://{kafka_broker.bootstrap}/{topic}"
    first = publish_files(_day(sample_dir, "20251103"), kafka_broker.bootstrap, topic, None, partitions=PARTITIONS,
                          window_ms=1_000.0)
    lake = kafka_replay(topic, tmp_path / "lake")

    level = live_lag(lake, url)

    ends = [eof for _listed, eof in broker_ends(kafka_broker.bootstrap, topic, PARTITIONS)]
    assert level.error is None
    assert [(p.partition, p.end_offset, p.lake_offset, p.behind) for p in level.partitions] == [
        (i, ends[i], ends[i], 0) for i in range(PARTITIONS)]
    assert sum(ends) == first.messages and level.behind == 0

    second = publish_files(_day(sample_dir, "20251104"), kafka_broker.bootstrap, topic, None, partitions=PARTITIONS,
                           window_ms=1_000.0)
    behind = live_lag(lake, url)

    assert behind.error is None and behind.behind == second.messages
    assert [p.lake_offset for p in behind.partitions] == ends
    assert sum(p.end_offset for p in behind.partitions) == first.messages + second.messages

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}"}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "status", "--lake", lake.root, "--topic", url, "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    live = json.loads(done.stdout)["live"]
    assert live == {"input": url, "error": None, "behind": second.messages,
                    "partitions": {str(p.partition): {"end_offset": p.end_offset, "lake_offset": p.lake_offset,
                                                      "behind": p.behind} for p in behind.partitions}}


def test_an_unreachable_broker_is_one_sentence(tmp_path: Path) -> None:
    from connectors.delta.lake import Lake
    from tests.services.kafka_broker import free_port

    url = f"kafka://127.0.0.1:{free_port()}/mbo_raw"

    lag = live_lag(Lake(str(tmp_path / "lake")), url, timeout=1.0)

    assert lag.partitions == () and lag.behind == 0 and lag.error is not None
    assert lag.error.startswith(f"the Kafka broker {url[8:-8]} for {url} is not reachable")
    assert "\n" not in lag.error
