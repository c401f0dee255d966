"""Fault injection on the HTTP backends: late answers, 5xx, garbage, dropped connections, a server
that hangs, and a server killed between batches and brought back. Every request still gets exactly
one result with a status saying what happened, and scoring recovers when the server does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.scoring import ScoringConfig, make_scorer
from connectors.scoring.http import HttpScorer
from tests.scoring.checks import one_each, statuses
from tests.scoring.conftest import ScoringEnv, requests
from tests.services.fault_proxy import FaultProxy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="proxy")
def fixture_proxy(scoring_env: ScoringEnv) -> Iterator[FaultProxy]:
    proxy = FaultProxy(scoring_env.mlflow.base_url)
    yield proxy
    proxy.close()


def _scorer(url: str, clock: Clock | None = None, **overrides: Any) -> HttpScorer:
    cfg = ScoringConfig(**{"backend": "mlflow-http", "url": url, "served_version": "1", "timeout_s": 2.0,
                           "retries": 2, "backoff_s": 0.01, "breaker_failures": 3, "breaker_reset_s": 5.0,
                           **overrides})
    scorer = make_scorer(cfg, clock=clock or Clock(), seed=1)
    assert isinstance(scorer, HttpScorer)
    return scorer


def test_late_answers_time_out_then_scoring_goes_on(proxy: FaultProxy) -> None:
    scorer = _scorer(proxy.base_url, retries=1, timeout_s=1.0)
    batch = requests(3)
    proxy.inject("delay:1.5", times=2)
    late = scorer.score(batch)
    one_each(batch, late)
    assert statuses(late) == ["timeout"] * 3 and {r.attempts for r in late} == {2}
    assert late[0].detail == "no answer within 1.0 s" and late[0].model_version == "1"
    assert late[0].latency_ns >= 2.0e9
    proxy.inject("delay:1.5")                          # one late answer: the retry succeeds
    retried = scorer.score(batch)
    assert statuses(retried) == ["ok"] * 3 and {r.attempts for r in retried} == {2}


def test_5xx_is_retried_4xx_is_not(proxy: FaultProxy) -> None:
    scorer = _scorer(proxy.base_url)
    batch = requests(4)
    proxy.inject("status:503")
    assert [(r.status, r.attempts) for r in scorer.score(batch)] == [("ok", 2)] * 4
    proxy.inject("status:503", times=3)
    failed = scorer.score(batch)
    one_each(batch, failed)
    assert statuses(failed) == ["http_error"] * 4 and {r.attempts for r in failed} == {3}
    assert failed[0].detail.startswith("503 ")
    proxy.inject("status:400")
    rejected = scorer.score(batch)
    assert statuses(rejected) == ["http_error"] * 4 and {r.attempts for r in rejected} == {1}
    assert rejected[0].detail.startswith("400 ")
    assert statuses(scorer.score(batch)) == ["ok"] * 4


def test_malformed_answers_are_named_per_row(proxy: FaultProxy) -> None:
    scorer = _scorer(proxy.base_url)
    batch = requests(5)
    proxy.inject("not_json")
    garbage = scorer.score(batch)
    one_each(batch, garbage)
    assert statuses(garbage) == ["malformed_response"] * 5 and {r.attempts for r in garbage} == {1}
    proxy.inject("rows:3")
    short = scorer.score(batch)
    assert statuses(short) == ["malformed_response"] * 5 and short[0].detail == "200 answer has 3 rows for 5 requests"
    proxy.inject("bad_row:2")
    one_bad = scorer.score(batch)
    one_each(batch, one_bad)
    assert statuses(one_bad) == ["ok", "ok", "malformed_response", "ok", "ok"]
    assert one_bad[2].detail == "row 2 of the answer is not 3 probabilities"


def test_dropped_connections_are_unreachable_and_open_the_breaker(proxy: FaultProxy) -> None:
    clock = Clock()
    scorer = _scorer(proxy.base_url, clock, retries=1, breaker_failures=2)
    batch = requests(2)
    assert statuses(scorer.score(batch)) == ["ok"] * 2
    proxy.inject("close", times=8)
    for _ in range(2):
        dropped = scorer.score(batch)
        one_each(batch, dropped)
        assert statuses(dropped) == ["unreachable"] * 2 and {r.attempts for r in dropped} == {2}
    assert scorer.breaker_state == "open"
    seen = proxy.requests
    refused = scorer.score(batch)
    one_each(batch, refused)
    assert statuses(refused) == ["circuit_open"] * 2 and {r.attempts for r in refused} == {0}
    assert proxy.requests == seen                      # not attempted
    proxy.clear()
    clock.now += 5.0                                   # breaker_reset_s later: one probe, it succeeds
    assert [(r.status, r.attempts) for r in scorer.score(batch)] == [("ok", 1)] * 2
    assert scorer.breaker_state == "closed"


def test_a_hung_server_times_out_and_answers_again_when_resumed(scoring_env: ScoringEnv) -> None:
    """SIGSTOP the real azmlinfsrv: it still accepts connections (the kernel does) but never answers."""
    cfg = ScoringConfig(backend="azureml", url=f"{scoring_env.azureml.base_url}/score", served_version="1",
                        timeout_s=1.0, retries=1, backoff_s=0.01)
    scorer = make_scorer(cfg, clock=Clock())
    batch = requests(3)
    assert statuses(scorer.score(batch)) == ["ok"] * 3
    scoring_env.azureml.pause()
    try:
        hung = scorer.score(batch)
    finally:
        scoring_env.azureml.resume()
    one_each(batch, hung)
    assert statuses(hung) == ["timeout"] * 3 and {r.attempts for r in hung} == {2}
    assert statuses(scorer.score(batch)) == ["ok"] * 3


def test_server_killed_between_batches_then_restarted(scoring_env: ScoringEnv) -> None:
    """Kill the real azmlinfsrv (its whole process group: gunicorn and its worker) mid-stream and
    restart it on the same port: refused connections, then an open breaker, then ``ok`` again once
    ``breaker_reset_s`` has passed."""
    clock = Clock()
    server = scoring_env.azureml
    scorer = _scorer(f"{server.base_url}/score", clock, backend="azureml", retries=1, breaker_failures=2,
                     breaker_reset_s=5.0)
    batch = requests(4)
    assert statuses(scorer.score(batch)) == ["ok"] * 4
    server.kill()
    try:
        for _ in range(2):
            gone = scorer.score(batch)
            one_each(batch, gone)
            assert statuses(gone) == ["unreachable"] * 4 and {r.attempts for r in gone} == {2}
            assert "ConnectionRefusedError" in gone[0].detail
        assert statuses(scorer.score(batch)) == ["circuit_open"] * 4
    finally:
        server.start()
    assert statuses(scorer.score(batch)) == ["circuit_open"] * 4   # back, but the breaker has not reset yet
    clock.now += 5.0
    back = scorer.score(batch)
    one_each(batch, back)
    assert statuses(back) == ["ok"] * 4 and {r.model_version for r in back} == {"1"}
    assert scorer.breaker_state == "closed"
