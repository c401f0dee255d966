"""The Azure ML CLI v2 specs parse and point at files that exist (no Azure here to deploy them)."""

from __future__ import annotations

from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra" / "azureml"


def _load(name: str) -> dict:
    data = yaml.safe_load((INFRA / name).read_text())
    assert isinstance(data, dict)
    return data


def test_endpoint_and_deployment_specs_agree() -> None:
    endpoint, deployment = _load("endpoint.yml"), _load("deployment.yml")
    assert endpoint["$schema"].endswith("/managedOnlineEndpoint.schema.json")
    assert deployment["$schema"].endswith("/managedOnlineDeployment.schema.json")
    assert endpoint["auth_mode"] == "key"
    assert deployment["endpoint_name"] == endpoint["name"]
    assert deployment["model"].startswith("azureml:ES_MODEL:")
    code = INFRA / deployment["code_configuration"]["code"]
    assert (code / deployment["code_configuration"]["scoring_script"]).is_file()
    assert (INFRA / deployment["environment"]["conda_file"]).is_file()
    assert deployment["environment_variables"]["MLFLOW_MODEL_FOLDER"]
    assert deployment["instance_count"] >= 1
    assert deployment["request_settings"]["request_timeout_ms"] > 0


def test_conda_environment_pins_what_score_py_imports() -> None:
    conda = _load("conda.yml")
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    names = {p.split("==")[0].split("<")[0] for p in pip}
    assert {"azureml-inference-server-http", "mlflow-skinny", "scikit-learn", "skops", "pandas", "numpy"} <= names
