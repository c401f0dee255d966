"""Configuration: defaults < TOML < environment, and one clear sentence per mistake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.config import DateRange, load_config
from operators.errors import ConfigError


def test_defaults_replay_the_sample_into_lake() -> None:
    cfg = load_config({})
    assert (cfg.source.inputs, cfg.lake.root, cfg.source.batch_records, cfg.run.workers) == ((), "lake", 65_536, 1)


def test_environment_overrides_toml(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('[source]\ninputs = ["a.dbn"]\nbatch_records = 100\n[lake]\nroot = "x"\n[run]\nworkers = 3\n')
    cfg = load_config({"SPYMASTER_CONFIG": str(toml), "SPYMASTER_LAKE": "s3://b/l", "SPYMASTER_INPUT": "d1, d2"})
    assert cfg.source.inputs == ("d1", "d2")
    assert cfg.lake.root == "s3://b/l"
    assert (cfg.source.batch_records, cfg.run.workers) == (100, 3)


def test_dates_and_speed_parse() -> None:
    cfg = load_config({"SPYMASTER_DATES": "2025-11-03:2025-11-05", "SPYMASTER_SPEED": "10"})
    assert cfg.source.dates == DateRange(first=date(2025, 11, 3), last=date(2025, 11, 5))
    assert cfg.source.speed == 10.0
    assert load_config({"SPYMASTER_SPEED": "max"}).source.speed is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPYMASTER_BATCH_RECORDS": "many"}, "SPYMASTER_BATCH_RECORDS='many' is not an integer"),
        ({"SPYMASTER_BATCH_RECORDS": "0"}, "batch_records must be positive"),
        ({"SPYMASTER_DATES": "2025-11-05:2025-11-03"}, "end before they start"),
        ({"SPYMASTER_SPEED": "-1"}, "speed must be positive"),
        ({"SPYMASTER_CONFIG": "/nonexistent/spymaster.toml"}, "does not exist"),
    ],
)
def test_mistakes_are_one_sentence(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_analytics_windows_and_thresholds_come_from_toml(tmp_path: Path) -> None:
    from datetime import time

    toml = tmp_path / "s.toml"
    toml.write_text('[sessions]\nsetup = "09:30-12:30"\nbuckets = 3\n[approach]\napproach_ticks = 2\n'
                    'reset_ticks = 6\n[labels]\nhorizon_seconds = 120\n[analytics]\nenabled = false\n')
    cfg = load_config({"SPYMASTER_CONFIG": str(toml)})
    assert cfg.analytics.windows.setup == (time(9, 30), time(12, 30))
    assert cfg.analytics.windows.buckets == 3
    assert (cfg.analytics.approach.approach_ticks, cfg.analytics.approach.reset_ticks) == (2, 6)
    assert cfg.analytics.labels.horizon_seconds == 120
    assert cfg.analytics.enabled is False


def test_bad_analytics_settings_are_one_sentence(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('[approach]\napproach_ticks = 5\nreset_ticks = 3\n')
    with pytest.raises(ConfigError, match="reset_ticks"):
        load_config({"SPYMASTER_CONFIG": str(toml)})
    toml.write_text('[sessions]\nsetup = "9:30 to 13:30"\n')
    with pytest.raises(ConfigError, match="HH:MM-HH:MM"):
        load_config({"SPYMASTER_CONFIG": str(toml)})


def test_commit_lanes_default_to_four_for_files_and_one_for_a_topic() -> None:
    from flows.config import load_config

    assert load_config({}).lake.sink_partitions == 4
    assert load_config({"SPYMASTER_INPUT": "kafka://127.0.0.1:9092/mbo_raw"}).lake.sink_partitions == 1
    assert load_config({"SPYMASTER_INPUT": "eventhubs://ns/mbo_raw"}).lake.sink_partitions == 1
    both = {"SPYMASTER_INPUT": "kafka://127.0.0.1:9092/mbo_raw", "SPYMASTER_SINK_PARTITIONS": "3"}
    assert load_config(both).lake.sink_partitions == 3


def test_a_topic_commits_on_a_clock_and_a_replay_only_when_asked() -> None:
    from flows.config import load_config

    assert load_config({}).lake.commit_every_s is None
    assert load_config({"SPYMASTER_INPUT": "kafka://127.0.0.1:9092/mbo_raw"}).lake.commit_every_s == 2.0
    assert load_config({"SPYMASTER_INPUT": "kafka://127.0.0.1:9092/mbo_raw",
                        "SPYMASTER_COMMIT_EVERY_S": "0.25"}).lake.commit_every_s == 0.25
    with pytest.raises(ConfigError, match="commit_every_s 'soon' is not a number"):
        load_config({"SPYMASTER_COMMIT_EVERY_S": "soon"})
    with pytest.raises(ConfigError, match="must be positive"):
        load_config({"SPYMASTER_COMMIT_EVERY_S": "-1"})


def test_option_chain_settings_come_from_toml_then_the_environment(tmp_path: Path) -> None:
    toml = tmp_path / "o.toml"
    toml.write_text('[options]\nrate = 0.05\nsign_convention = "dealer_short"\nmin_vol = 0.08\nheartbeat_s = 30\n')
    cfg = load_config({"SPYMASTER_CONFIG": str(toml), "SPYMASTER_OPTIONS_MIN_YEARS": "0.001"})
    gex = cfg.options.gex
    assert (gex.rate, gex.sign_convention, gex.min_vol) == (0.05, "dealer_short", 0.08)
    assert (cfg.options.gex.min_years, cfg.options.heartbeat_s) == (0.001, 30)
    assert load_config({}).options.gex.sign_convention == "dealer_long_calls_short_puts"
    with pytest.raises(ConfigError, match="dealer_long_calls_short_puts"):
        load_config({"SPYMASTER_OPTIONS_SIGN_CONVENTION": "dealers_guess"})
    with pytest.raises(ConfigError, match="SPYMASTER_OPTIONS"):
        load_config({"SPYMASTER_OPTIONS_RATE": "four percent"})
