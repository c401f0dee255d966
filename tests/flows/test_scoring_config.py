"""``[scoring]`` in the TOML file and SPYMASTER_SCORING_* in the environment (flows.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import load_config
from operators.errors import ConfigError


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spymaster.toml"
    path.write_text(text)
    return path


def test_defaults_score_locally_in_100_ms_batches() -> None:
    cfg = load_config({})
    assert (cfg.scoring.backend, cfg.scoring.model_id, cfg.scoring.alias) == ("local", "ES_MODEL", "champion")
    assert (cfg.inference.batch_ms, cfg.inference.neighbours) == (100, 25)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[scoring]\nbackend = "mlflow-http"\nbatch_ms = 50\nneighbours = 10\ntimeout_s = 0.5\n')
    cfg = load_config({"SPYMASTER_SCORING_URL": "http://127.0.0.1:5001", "SPYMASTER_SCORING_BATCH_MS": "0",
                       "SPYMASTER_SCORING_MODEL_ID": "NQ_MODEL"}, path)
    assert (cfg.scoring.backend, cfg.scoring.url) == ("mlflow-http", "http://127.0.0.1:5001")
    assert cfg.scoring.timeout_s == 0.5
    assert (cfg.scoring.model_id, cfg.inference.batch_ms, cfg.inference.neighbours) == ("NQ_MODEL", 0, 10)
    assert load_config({"SPYMASTER_SCORING_BACKEND": "off"}, path).scoring.backend == "off"


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[scoring]\nkey = "s3cret"\n', {}, "secret"),
    ('[scoring]\nbakend = "local"\n', {}, "unknown key [scoring].bakend"),
    ('[scoring]\nbackend = "mlflow-http"\n', {}, "needs a URL"),
    ("", {"SPYMASTER_SCORING_BATCH_MS": "-5"}, "batch_ms must be zero or positive"),
    ("", {"SPYMASTER_SCORING_BACKEND": "gpu"}, "unknown"),
])
def test_bad_scoring_settings_are_one_sentence(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        load_config(env, _toml(tmp_path, text))
    assert "s3cret" not in str(err.value)
