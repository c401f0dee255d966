"""``[calendars]``: half days and early closes per venue from the TOML file, with clear errors."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from flows.config import load_config
from operators.errors import ConfigError


def _load(tmp_path: Path, text: str):
    path = tmp_path / "spymaster.toml"
    path.write_text(text)
    return load_config({}, path)


def test_half_days_reach_the_calendar_an_instrument_follows(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[calendars.us_equities]\nhalf_days = ["2026-11-27", "2026-12-24"]\nearly_close = "13:00"\n'
                          '[calendars.cme_globex]\nhalf_days = ["2026-11-27"]\n')

    equities, cme = cfg.analytics.calendar("XNAS"), cfg.analytics.calendar("GLBX")

    assert (equities.name, equities.half_days, equities.early_close) == (
        "us_equities", frozenset({date(2026, 11, 27), date(2026, 12, 24)}), time(13, 0))
    assert (cme.name, cme.half_days, cme.early_close) == ("cme_globex", frozenset({date(2026, 11, 27)}), time(13, 15))


def test_no_section_means_no_half_days(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "")

    assert [c.half_days for c in cfg.analytics.calendars] == [frozenset(), frozenset()]


@pytest.mark.parametrize(("text", "message"), [
    ('[calendars.lse]\nhalf_days = []\n', r"unknown calendar \[calendars.lse\]; known: cme_globex, us_equities"),
    ('[calendars.us_equities]\nhalfdays = []\n', r"unknown key \[calendars.us_equities\].halfdays"),
    ('[calendars.us_equities]\nhalf_days = ["27/11/2026"]\n', r"half_days are YYYY-MM-DD dates"),
    ('[approach]\ntick = 0.25\n', r"\[approach\].tick is not a setting: each instrument's tick is its definition's"),
])
def test_a_calendar_section_that_cannot_work_is_refused_in_one_sentence(tmp_path: Path, text: str,
                                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)
