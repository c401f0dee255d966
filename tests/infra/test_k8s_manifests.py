"""The Kubernetes manifests follow the Bytewax StatefulSet conventions, consistently.

``kubernetes-validate`` (offline schema validation) is not installed here, so this checks what
a schema could not anyway: that names, ports, paths and counts agree across the resources, and
that the hostfile the init container writes makes ``bytewax.run`` pick the right process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from flows.cluster import ProcessIdentity, this_process
from flows.config import RECOVERY_EPOCH_S

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"


def _load() -> dict[str, dict]:
    docs = [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    return {d["kind"]: d for d in docs}


def _env(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(name="kinds")
def fixture_kinds() -> dict[str, dict]:
    return _load()


def test_statefulset_service_and_config_agree(kinds: dict[str, dict]) -> None:
    sts, svc, cm = kinds["StatefulSet"], kinds["Service"], kinds["ConfigMap"]
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    main = pod["containers"][0]
    env = _env(main)
    init = {c["name"]: c for c in pod["initContainers"]}

    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == svc["metadata"]["name"] == env["BYTEWAX_STATEFULSET_NAME"] == sts["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports == {"process": 9999, "api": 3030}
    assert env["BYTEWAX_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["BYTEWAX_DATAFLOW_API_PORT"] == str(ports["api"])

    hostfile_env = _env(init["init-hostfile"])
    assert hostfile_env["BYTEWAX_REPLICAS"] == str(spec["replicas"])
    assert hostfile_env["BYTEWAX_STATEFULSET_NAME"] == sts["metadata"]["name"]
    assert hostfile_env["BYTEWAX_SERVICE_NAME"] == svc["metadata"]["name"]
    assert hostfile_env["BYTEWAX_PROCESS_PORT"] == str(ports["process"])
    assert hostfile_env["BYTEWAX_HOSTFILE_PATH"] == env["BYTEWAX_HOSTFILE_PATH"]
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert Path(str(env["BYTEWAX_HOSTFILE_PATH"])).parent == Path(mounts["hostfile"])
    assert {m["name"]: m["mountPath"] for m in init["init-hostfile"]["volumeMounts"]}["hostfile"] == mounts["hostfile"]

    recovery_env = _env(init["init-recovery"])
    assert env["BYTEWAX_RECOVERY_DIRECTORY"] == recovery_env["BYTEWAX_RECOVERY_DIRECTORY"] == mounts["recovery"]
    workers = spec["replicas"] * int(str(env["BYTEWAX_WORKERS_PER_PROCESS"]))
    assert int(str(recovery_env["BYTEWAX_RECOVERY_PARTS"])) == workers
    assert int(str(env["BYTEWAX_SNAPSHOT_INTERVAL"])) == RECOVERY_EPOCH_S  # the epoch the flow is benched at
    assert env["BYTEWAX_RECOVERY_BACKUP_INTERVAL"] is not None
    assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["recovery"]

    sources = main["envFrom"]
    assert {"configMapRef": {"name": cm["metadata"]["name"]}} in sources
    assert {"secretRef": {"name": "spymaster-eventhubs"}} in sources
    assert "EVENTHUBS_CONNECTION_STRING" not in env and "EVENTHUBS_CONNECTION_STRING" not in cm["data"]
    assert str(cm["data"]["SPYMASTER_INPUT"]).startswith("eventhubs://")


def test_init_hostfile_script_makes_bytewax_pick_each_pod(kinds: dict[str, dict], tmp_path: Path) -> None:
    sts = kinds["StatefulSet"]
    init = next(c for c in sts["spec"]["template"]["spec"]["initContainers"] if c["name"] == "init-hostfile")
    hostfile = tmp_path / "hostfile.txt"
    env = {k: str(v) for k, v in _env(init).items() if isinstance(v, str)}
    env |= {"BYTEWAX_HOSTFILE_PATH": str(hostfile), "POD_NAMESPACE": "markets", "PATH": "/usr/bin:/bin"}

    done = subprocess.run([*init["command"], init["args"][0]], env=env, capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert hostfile.read_text().splitlines() == [f"spymaster-{k}.spymaster.markets.svc.cluster.local:9999"
                                                 for k in range(sts["spec"]["replicas"])]
    for k in range(sts["spec"]["replicas"]):
        pod = {"BYTEWAX_POD_NAME": f"spymaster-{k}", "BYTEWAX_STATEFULSET_NAME": "spymaster",
               "BYTEWAX_HOSTFILE_PATH": str(hostfile)}
        assert this_process(["flows.main"], pod) == ProcessIdentity(k, sts["spec"]["replicas"])
