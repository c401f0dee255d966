"""The Kubernetes manifests: valid against the Kubernetes schema, consistent with each other, and
startable — the ConfigMap with the workloads' own environment loads the flow's configuration, the
scorer's and the HUD's topics, and each container's arguments parse.

``kubernetes-validate`` checks every resource against the API's schema offline; the rest checks
what a schema cannot: names, ports, paths and counts agree across the resources, and the hostfile
the init container writes makes ``bytewax.run`` pick the right process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.hud.topics import hud_topics
from connectors.scoring import ScoringConfig
from connectors.secrets import SECRETS
from flows.cli import _parser
from flows.cluster import ProcessIdentity, this_process
from flows.config import RECOVERY_EPOCH_S, load_config

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _load() -> dict[str, dict]:
    """Each resource under its kind, and under ``kind/name`` too (there are two Deployments)."""
    docs = [d for f in MANIFESTS for d in yaml.safe_load_all(f.read_text()) if d]
    by_name = {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}
    return {**{d["kind"]: d for d in docs if sum(e["kind"] == d["kind"] for e in docs) == 1}, **by_name}


def _env(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(name="kinds")
def fixture_kinds() -> dict[str, dict]:
    return _load()


def test_statefulset_service_and_config_agree(kinds: dict[str, dict]) -> None:
    sts, svc, cm = kinds["StatefulSet"], kinds["Service/spymaster"], kinds["ConfigMap"]
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    main = pod["containers"][0]
    env = _env(main)
    init = {c["name"]: c for c in pod["initContainers"]}

    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == svc["metadata"]["name"] == env["BYTEWAX_STATEFULSET_NAME"] == sts["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
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
    assert {"secretRef": {"name": "spymaster-secrets", "optional": True}} in sources
    assert not set(SECRETS) & (set(env) | set(cm["data"]))  # secrets come from Key Vault, never a manifest
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


def test_every_resource_passes_the_kubernetes_schema() -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("kubernetes-validate")), "--strict",
                           *map(str, MANIFESTS)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in (done.stdout + done.stderr).splitlines() if " passed for resource " in line]
    assert len(passed) == 13, passed  # ConfigMap, ServiceAccount, StatefulSet, 2 Deployments, 2 Services, Job,
    # CronJob, PersistentVolumeClaim, 3 NetworkPolicies


def _workloads(kinds: dict[str, dict]) -> dict[str, dict]:
    pods = {name: kinds[name]["spec"]["template"] for name in
            ("StatefulSet/spymaster", "Deployment/spymaster-ingestor", "Deployment/spymaster-hud", "Job")}
    return pods | {"CronJob": kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]}


def test_every_pod_runs_as_the_workload_identity_and_reads_the_one_config_map(kinds: dict[str, dict]) -> None:
    account = kinds["ServiceAccount"]
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    for name, template in _workloads(kinds).items():
        pod = template["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"], name
        assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true", name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert {"configMapRef": {"name": kinds["ConfigMap"]["metadata"]["name"]}} in container["envFrom"], name
    hud, service = kinds["Deployment/spymaster-hud"], kinds["Service/spymaster-hud"]
    assert service["spec"]["selector"].items() <= hud["spec"]["template"]["metadata"]["labels"].items()
    assert kinds["Deployment/spymaster-ingestor"]["spec"]["replicas"] == 1  # two would publish every record twice


def test_the_config_map_starts_the_flow_the_scorer_the_hud_and_the_ingestor(kinds: dict[str, dict]) -> None:
    """What each pod's process reads at start, from the ConfigMap and the pod's own env, with the
    secrets as the optional Secret gives them (so the vault is not asked here)."""
    data = {k: str(v) for k, v in kinds["ConfigMap"]["data"].items()}
    secrets = {"EVENTHUBS_CONNECTION_STRING": "Endpoint=sb://spymaster-events.servicebus.windows.net/;"
                                              "SharedAccessKeyName=app;SharedAccessKey=a2V5",
               "DATABENTO_API_KEY": "db-test"}
    sts_env = {k: str(v) for k, v in _env(kinds["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]).items()
               if isinstance(v, str)}
    env = {**data, **sts_env, **secrets}

    cfg = load_config(env)
    assert cfg.source.inputs == (data["SPYMASTER_INPUT"],) and cfg.lake.root == data["SPYMASTER_LAKE"]
    scoring = ScoringConfig.from_env(env)
    assert (scoring.backend, scoring.model_id, scoring.alias, scoring.url) == ("local", "ES_MODEL", "champion", None)
    assert set(hud_topics(cfg.outputs)) and cfg.outputs.bootstrap.endswith(":9093")
    assert {table for table, _ in cfg.outputs.topics} >= {"gold.feature_series", "gold.inference_scores"}

    parser = _parser()
    ingestor = kinds["Deployment/spymaster-ingestor"]["spec"]["template"]["spec"]["containers"][0]
    args = parser.parse_args(["ingest", *ingestor["args"]])
    assert (args.eventhubs, args.topic, args.symbols) == (True, "mbo_raw", "ES.FUT")
    hud = kinds["Deployment/spymaster-hud"]["spec"]["template"]["spec"]["containers"][0]
    assert hud["command"][0] == "spymaster"
    hud_args = parser.parse_args(hud["command"][1:])
    assert (hud_args.host, hud_args.port) == ("0.0.0.0", hud["ports"][0]["containerPort"])


def test_the_backfill_job_and_the_nightly_cron_job_run_the_backfill_command(kinds: dict[str, dict]) -> None:
    parser = _parser()
    job = kinds["Job"]["spec"]["template"]["spec"]
    cron = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    for pod in (job, cron):
        command = pod["containers"][0]["command"]
        assert command[:2] == ["spymaster", "backfill"]
        args = parser.parse_args(command[1:])
        assert args.paths[0].startswith("abfss://raw-dbn@") and args.lake.startswith("/work/")
        assert pod["restartPolicy"] == "Never"
        claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
        assert claim == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert parser.parse_args(job["containers"][0]["command"][1:]).dates.first < \
        parser.parse_args(job["containers"][0]["command"][1:]).dates.last
    assert kinds["CronJob"]["spec"]["concurrencyPolicy"] == "Forbid"
    assert kinds["CronJob"]["spec"]["timeZone"] == "America/New_York"


def _walk(doc: object, path: str) -> object:
    """A kustomize ``fieldPath`` (``a.b.0.c``, ``a.[key/with.dots]``) in ``doc``; KeyError if absent."""
    import re

    node = doc
    for part in re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", path):
        key = part[0] or part[1]
        node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
    return node


def _json_patch(doc: dict, ops: list[dict]) -> dict:
    import copy

    out = copy.deepcopy(doc)
    for op in ops:
        assert op["op"] == "replace"
        *parents, last = op["path"].strip("/").split("/")
        node: Any = out
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            assert int(last) < len(node), op["path"]
            node[int(last)] = op["value"]
        else:
            assert last in node, op["path"]
            node[last] = op["value"]
    return out


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_overlay_sets_from_the_deployment_outputs_what_the_base_leaves_to_it(
        kinds: dict[str, dict], overlay: str) -> None:
    from flows.cli.azure_env import OUTPUTS, azure_env

    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(base["resources"]) == sorted(p.name for p in MANIFESTS)
    doc = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    assert doc["resources"] == ["../.."]
    (generator,) = doc["configMapGenerator"]
    assert (generator["name"], generator["behavior"], generator["envs"]) == (
        kinds["ConfigMap"]["metadata"]["name"], "merge", ["azure.env"])

    outputs = {name: {"type": "String", "value": f"value-of-{name}"} for name in (*OUTPUTS.values(),
                                                                                   "registryLoginServer")}
    outputs["eventHubsInput"]["value"] = "eventhubs://spyprod-events-x/mbo_raw"
    env = azure_env(outputs, "abc123")
    assert env["SPYMASTER_IMAGE"] == "value-of-registryLoginServer/spymaster:abc123"
    data = {**kinds["ConfigMap"]["data"], **env}
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in kinds.values() if isinstance(d, dict)}
    for replacement in doc["replacements"]:
        source = replacement["source"]
        assert source["fieldPath"].removeprefix("data.") in env  # azure-env writes what the overlay copies
        for target in replacement["targets"]:
            chosen = [d for (kind, name), d in by_kind.items() if kind == target["select"]["kind"]
                      and target["select"].get("name", name) == name]
            assert chosen, target["select"]
            for resource in chosen:
                for path in target["fieldPaths"]:
                    _walk(resource, path)  # the field exists in the base: the replacement lands
    (patch,) = doc["patches"]
    sts = _json_patch(kinds["StatefulSet"], yaml.safe_load(patch["patch"]))
    replicas = sts["spec"]["replicas"]
    init = {c["name"]: _env(c) for c in sts["spec"]["template"]["spec"]["initContainers"]}
    workers = int(str(_env(sts["spec"]["template"]["spec"]["containers"][0])["BYTEWAX_WORKERS_PER_PROCESS"]))
    assert init["init-hostfile"]["BYTEWAX_REPLICAS"] == str(replicas)
    assert init["init-recovery"]["BYTEWAX_RECOVERY_PARTS"] == str(replicas * workers)
    cfg = load_config({**{k: str(v) for k, v in data.items()}, "EVENTHUBS_CONNECTION_STRING":
                       "Endpoint=sb://spyprod-events-x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=a2V5"})
    assert cfg.lake.root == "value-of-lakeUri" and cfg.source.inputs == ("eventhubs://spyprod-events-x/mbo_raw",)


def test_azure_env_reads_only_outputs_the_bicep_deployment_has() -> None:
    from pycep import BicepParser

    from flows.cli.azure_env import OUTPUTS

    declared = BicepParser().parse(text=(K8S.parents[0] / "bicep" / "main.bicep").read_text())["outputs"]
    assert {*OUTPUTS.values(), "registryLoginServer"} <= set(declared)


def _set(doc: Any, path: str, value: object) -> None:
    import re

    parts = [p[0] or p[1] for p in re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", path)]
    node = _walk(doc, ".".join(f"[{p}]" if "." in p else p for p in parts[:-1])) if len(parts) > 1 else doc
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]


def render_overlay(overlay: str, env: dict[str, str]) -> list[dict]:
    """The subset of ``kustomize build`` the overlays use (namespace, a merging configMapGenerator,
    replacements, JSON 6902 patches), with ``env`` as azure.env: kustomize is not installable here."""
    import copy

    doc = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = [copy.deepcopy(d) for f in base["resources"] for d in yaml.safe_load_all((K8S / f).read_text()) if d]
    for resource in docs:
        resource["metadata"]["namespace"] = doc["namespace"]
    for generator in doc["configMapGenerator"]:
        target = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == generator["name"])
        target["data"].update(env)
    for replacement in doc["replacements"]:
        source = next(d for d in docs if d["kind"] == replacement["source"]["kind"]
                      and d["metadata"]["name"] == replacement["source"]["name"])
        value = _walk(source, replacement["source"]["fieldPath"])
        for target in replacement["targets"]:
            for resource in docs:
                if resource["kind"] == target["select"]["kind"] and \
                        target["select"].get("name", resource["metadata"]["name"]) == resource["metadata"]["name"]:
                    for path in target["fieldPaths"]:
                        _set(resource, path, value)
    for patch in doc["patches"]:
        for i, resource in enumerate(docs):
            if resource["kind"] == patch["target"]["kind"] and resource["metadata"]["name"] == patch["target"]["name"]:
                docs[i] = _json_patch(resource, yaml.safe_load(patch["patch"]))
    return docs


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_rendered_overlay_passes_the_kubernetes_schema_and_keeps_requests_within_limits(
        overlay: str, tmp_path: Path) -> None:
    from flows.cli.azure_env import OUTPUTS, azure_env

    outputs = {name: f"{name}-of-{overlay}" for name in (*OUTPUTS.values(), "registryLoginServer")}
    outputs["registryLoginServer"] = f"spy{overlay}acr.azurecr.io"
    docs = render_overlay(overlay, azure_env(outputs, "abc123"))
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    done = subprocess.run([str(Path(sys.executable).with_name("kubernetes-validate")), "--strict", str(rendered)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    images = set()
    for resource in docs:
        assert resource["metadata"]["namespace"] == "spymaster"
        spec = resource.get("spec", {})
        pod = (spec.get("jobTemplate", {}).get("spec", spec)).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            images.add(container["image"])
            resources = container.get("resources", {})
            for kind, limit in resources.get("limits", {}).items():
                request = resources.get("requests", {}).get(kind)
                assert request is None or _quantity(request) <= _quantity(limit), (container["name"], kind)
    registry = f"spy{overlay}acr.azurecr.io"
    assert images == {f"{registry}/spymaster:abc123", f"{registry}/spymaster-ingestor:abc123"}
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == f"identityClientId-of-{overlay}"


def _quantity(text: object) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``4Gi``, ``512Mi``) as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    raw = str(text)
    for unit, factor in units.items():
        if raw.endswith(unit):
            return float(raw[: -len(unit)]) * factor
    return float(raw)
