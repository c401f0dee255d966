"""The Azure ML CLI v2 specs load with ``azure-ai-ml``'s own offline loaders, agree with each other,
point at files that exist, and the backfill job's command parses with the ``spymaster`` tool (no
Azure here to deploy them). ``make`` installs ``azure-ai-ml`` into its own virtualenv
(``.venv/azureml``): its OpenTelemetry and storage pins differ from this project's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from flows.cli import _parser

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
    environment = _load("environment.yml")
    assert deployment["environment"].split(":", 1)[1] == f"{environment['name']}@latest"
    assert (INFRA / environment["conda_file"]).is_file()
    assert deployment["environment_variables"]["MLFLOW_MODEL_FOLDER"]
    assert deployment["instance_count"] >= 1
    assert deployment["request_settings"]["request_timeout_ms"] > 0


def test_conda_environment_pins_what_score_py_imports() -> None:
    conda = _load("conda.yml")
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    names = {p.split("==")[0].split("<")[0] for p in pip}
    assert {"azureml-inference-server-http", "mlflow-skinny", "scikit-learn", "skops", "pandas", "numpy"} <= names


LOADERS = """
import json, sys
from azure.ai.ml import load_environment, load_job, load_online_deployment, load_online_endpoint
root = sys.argv[1]
endpoint = load_online_endpoint(f"{root}/endpoint.yml")
deployment = load_online_deployment(f"{root}/deployment.yml")
scoring = load_environment(f"{root}/environment.yml")
flow = load_environment(f"{root}/train-environment.yml")
job = load_job(f"{root}/job.yml")
print(json.dumps({
    "endpoint": [endpoint.name, endpoint.auth_mode],
    "deployment": [deployment.name, deployment.endpoint_name, deployment.model, str(deployment.environment)],
    "scoring": [scoring.name, scoring.image, bool(scoring.conda_file)],
    "flow": [flow.name, flow.build.path, flow.build.dockerfile_path],
    "job": [type(job).__name__, job.command, str(job.environment), str(job.compute), sorted(job.inputs),
            sorted(job.outputs)],
}))
"""
AZUREML = Path(__file__).resolve().parents[2] / ".venv" / "azureml" / "bin" / "python"


def test_the_specs_load_with_azure_ai_mls_offline_loaders_and_agree() -> None:
    assert AZUREML.exists(), f"{AZUREML} is missing; `make` installs azure-ai-ml into its own virtualenv"
    done = subprocess.run([str(AZUREML), "-c", LOADERS, str(INFRA)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["endpoint"] == ["spymaster-es", "key"]
    assert got["deployment"][:3] == ["blue", "spymaster-es", "ES_MODEL:1"]
    assert got["deployment"][3] == f"{got['scoring'][0]}@latest" and got["scoring"][2]
    assert got["flow"][0] == "spymaster-flow" and (INFRA / got["flow"][1] / got["flow"][2]).is_file()
    kind, command, environment, compute, inputs, outputs = got["job"]
    assert (kind, environment, compute, inputs, outputs) == ("Command", "spymaster-flow@latest", "cpu-cluster",
                                                             ["dates", "raw", "trials"], ["lake"])
    filled = (command.replace("${{inputs.raw}}", "/mnt/raw").replace("${{inputs.dates}}", "2025-11-03:2025-11-28")
              .replace("${{outputs.lake}}", "/mnt/lake").replace("${{inputs.trials}}", "20"))
    args = _parser().parse_args(filled.split()[1:])
    assert (args.command, args.paths, args.lake, args.model_id, args.trials) == (
        "backfill", ["/mnt/raw"], "/mnt/lake", "ES_MODEL", 20)
