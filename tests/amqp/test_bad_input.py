"""Bad events on an event hub read over AMQP land in bronze.mbo_dlq with the reason and
``<hub>/<partition>@<sequence number>``; the rest of the hub is processed (SPEC §2.3). The same
eight messages as the Kafka test, sent to partition 0 in order (sequence numbers 0-7)."""

from __future__ import annotations

from pathlib import Path

from connectors.kafka.codec import encode_headers
from tests.amqp.helpers import send_to_partition
from tests.kafka.test_bad_input import assert_bad_messages_handled, bad_messages
from tests.services.eventhubs_amqp import StandIn


def test_bad_events_become_dead_letters_and_the_rest_is_processed(
        sample_dir: Path, eventhubs: StandIn, amqp_replay, tmp_path: Path) -> None:
    _front, mine, unknown, messages = bad_messages(sample_dir)
    headers = {k: v.decode() for k, v in encode_headers(3, "GLBX.MDP3")}
    send_to_partition(eventhubs.connection_string(), "bad", "0", [v for v, _ in messages],
                      [None if i in (4, 6) else headers for i in range(len(messages))])  # JSON: a foreign producer

    lake = amqp_replay("bad", tmp_path / "lake")

    assert_bad_messages_handled(lake, "eventhubs:bad/0", "bad/0", mine, unknown, messages)
