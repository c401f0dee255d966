"""The Bicep deployment, checked offline: every file parses (``pycep``, a Bicep grammar), every
module is called with exactly the parameters it declares, both parameter files set every required
parameter with allowed values, and the resources say what the application relies on — ADLS Gen2
with the three containers, Event Hubs with a Kafka endpoint and the hubs the ConfigMap names, a
Key Vault in RBAC mode with purge protection holding the secret the resolver reads, least-privilege
roles for the one identity, and AKS workload identity federated to the Kubernetes service account.

There is no Azure access here: nothing has been deployed (``az deployment group what-if`` is the
next check on a machine with a subscription).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from connectors.secrets import SECRETS

ROOT = Path(__file__).resolve().parents[2]
BICEP = ROOT / "infra" / "bicep"
K8S = ROOT / "infra" / "k8s"


def _parse(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(text=path.read_text()))


@pytest.fixture(name="main", scope="module")
def fixture_main() -> dict[str, Any]:
    return _parse(BICEP / "main.bicep")


def _module(name: str) -> dict[str, Any]:
    return _parse(BICEP / "modules" / f"{name}.bicep")


def _resources(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The ``config`` of each resource of a type (a loop's body for a loop)."""
    out = []
    for resource in doc["resources"].values():
        if resource["type"] == kind and not resource["existing"]:
            config = resource["config"]
            out.append(config["config"] if "loop_type" in config else config)
    return out


def _param_file(path: Path) -> tuple[str, dict[str, Any]]:
    """``using`` and the values of a .bicepparam file (literals only, as ours are)."""
    text = re.sub(r"//.*", "", path.read_text())
    using = re.search(r"^using\s+'([^']+)'", text, re.MULTILINE)
    assert using, f"{path.name} has no using line"
    lines = re.finditer(r"^param\s+(\w+)\s*=\s*(.+)$", text, re.MULTILINE)
    values = {m[1]: ast.literal_eval(m[2].strip()) for m in lines}
    return using[1], values


def test_every_file_parses_and_every_module_gets_exactly_its_parameters(main: dict[str, Any]) -> None:
    files = sorted(BICEP.rglob("*.bicep"))
    assert len(files) == 10
    for path in files:
        _parse(path)  # a syntax error raises
    assert set(main["modules"]) == {"identity", "monitoring", "storage", "eventHubs", "keyVault", "aml", "fabric",
                                    "aks", "roles"}
    for name, module in main["modules"].items():
        declared = _parse(BICEP / module["detail"]["path"])["parameters"]
        passed = set(module["config"]["params"])
        required = {p for p, spec in declared.items() if "default" not in spec}
        assert passed <= set(declared), f"{name}: passes {passed - set(declared)}, which it does not declare"
        assert required <= passed, f"{name}: needs {required - passed}"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_each_environment_sets_every_required_parameter_with_an_allowed_value(main: dict[str, Any], name: str) -> None:
    using, values = _param_file(BICEP / f"{name}.bicepparam")
    assert using == "main.bicep" and values["environment"] == name
    declared = main["parameters"]
    assert set(values) <= set(declared), set(values) - set(declared)
    assert {p for p, spec in declared.items() if "default" not in spec} <= set(values)
    for param, value in values.items():
        spec = declared[param]
        kinds = {"string": str, "int": int, "array": list, "bool": bool, "object": dict}
        assert isinstance(value, kinds[spec["type"]]), param
        for decorator in spec["decorators"]:
            if decorator["type"] == "allowed":
                assert value in decorator["argument"], (param, value)
            if decorator["type"] == "min_value":
                assert value >= decorator["argument"], (param, value)
            if decorator["type"] == "max_value":
                assert value <= decorator["argument"], (param, value)
            if decorator["type"] in ("min_length", "max_length"):
                bound, size = decorator["argument"], len(value) if isinstance(value, str | list) else -1
                assert (size >= bound) if decorator["type"] == "min_length" else (size <= bound), param


def test_the_lake_is_adls_gen2_with_the_three_containers_and_no_anonymous_or_key_access() -> None:
    doc = _module("storage")
    (account,) = _resources(doc, "Microsoft.Storage/storageAccounts")
    props = account["properties"]
    assert props["isHnsEnabled"] is True and props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True and props["allowBlobPublicAccess"] is False
    assert props["allowSharedKeyAccess"] is False  # tokens of the identity only
    assert set(doc["variables"]["containers"]["value"]) == {"raw-dbn", "lake", "ml-artifacts"}
    (container,) = _resources(doc, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["properties"]["publicAccess"] == "None"


def test_event_hubs_has_a_kafka_endpoint_and_the_hubs_and_groups_the_workloads_use(main: dict[str, Any]) -> None:
    doc = _module("eventhubs")
    assert "Basic" not in doc["parameters"]["sku"]["decorators"][0]["argument"]  # Basic has no Kafka endpoint
    (namespace,) = _resources(doc, "Microsoft.EventHub/namespaces")
    assert namespace["properties"]["kafkaEnabled"] is True
    hubs = {h["name"] for h in _resources(doc, "Microsoft.EventHub/namespaces/eventhubs")}
    assert "mbo_raw" in hubs
    config = yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]
    teed = {item.split("=")[1].strip() for item in config["SPYMASTER_OUTPUT_TOPICS"].split(",")}
    assert set(main["parameters"]["outputHubs"]["default"]) == teed  # every hub the flow tees to exists
    assert config["SPYMASTER_INPUT"].rsplit("/", 1)[-1] == "mbo_raw"
    assert len(teed) + 1 <= 10  # the Standard tier's hubs per namespace
    groups = {g["name"] for g in _resources(doc, "Microsoft.EventHub/namespaces/eventhubs/consumergroups")}
    assert groups == {"spymaster-flow", "spymaster-hud", "fabric-eventhouse"}
    assert '"group.id": "spymaster-hud"' in (ROOT / "connectors" / "hud" / "topics.py").read_text()
    (rule,) = _resources(doc, "Microsoft.EventHub/namespaces/authorizationRules")
    assert sorted(rule["properties"]["rights"]) == ["Listen", "Send"]  # never Manage


def test_key_vault_is_rbac_with_purge_protection_and_holds_the_secret_the_resolver_reads() -> None:
    doc = _module("keyvault")
    (vault,) = _resources(doc, "Microsoft.KeyVault/vaults")
    props = vault["properties"]
    assert props["enableRbacAuthorization"] is True and props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True
    (secret,) = _resources(doc, "Microsoft.KeyVault/vaults/secrets")
    assert secret["name"] == SECRETS["EVENTHUBS_CONNECTION_STRING"]
    text = (BICEP / "modules" / "keyvault.bicep").read_text()
    for variable, name in SECRETS.items():  # the others are set by hand: the module says how
        assert variable == "EVENTHUBS_CONNECTION_STRING" or name in text, name


def test_the_identity_gets_each_role_it_needs_on_the_one_resource_it_is_for() -> None:
    doc = _module("roles")
    roles = doc["variables"]["role"]["value"]
    assert roles == {
        "blobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "blobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "eventHubsDataSender": "2b629674-e913-4c01-ae53-ef4638d8f975",
        "eventHubsDataReceiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
        "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
        "amlDataScientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    }
    granted = set()
    for assignment in _resources(doc, "Microsoft.Authorization/roleAssignments"):
        props = assignment["properties"]
        named = props["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        role = named["operator"]["operands"]["operand_2"]
        assert props["principalId"] == "principalId" and props["principalType"] == "ServicePrincipal"
        granted.add((role, assignment["scope"]))
    assert granted == {("blobDataContributor", "lake"), ("blobDataContributor", "artifacts"),
                       ("blobDataReader", "raw"), ("eventHubsDataSender", "namespace"),
                       ("eventHubsDataReceiver", "namespace"), ("keyVaultSecretsUser", "vault"),
                       ("amlDataScientist", "workspace")}  # no Owner, no Contributor, no subscription scope


def test_aks_federates_the_kubernetes_service_account_to_the_identity(main: dict[str, Any]) -> None:
    doc = _module("aks")
    (cluster,) = _resources(doc, "Microsoft.ContainerService/managedClusters")
    props = cluster["properties"]
    assert props["oidcIssuerProfile"]["enabled"] is True and props["securityProfile"]["workloadIdentity"]["enabled"]
    (federation,) = _resources(doc, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")
    assert federation["properties"]["audiences"] == ["api://AzureADTokenExchange"]
    assert federation["properties"]["subject"] == "system:serviceaccount:${kubernetesNamespace}:${serviceAccountName}"
    account = yaml.safe_load((K8S / "serviceaccount.yaml").read_text())
    assert main["parameters"]["serviceAccountName"]["default"] == account["metadata"]["name"]
    assert {"lakeUri", "keyVaultUri", "eventHubsInput", "identityClientId", "aksOidcIssuer",
            "registryLoginServer"} <= set(main["outputs"])


TYPES = json.loads((Path(__file__).parent / "data" / "bicep_types.json").read_text())["types"]
"""Resource types, their properties and a few nested objects, extracted from Microsoft's generated
Bicep type files (``Azure/bicep-types-az``, ``generated/<rp>/…/types.md``; path and commit per type)."""
LANGUAGE = {"parent", "scope", "dependsOn"}
"""Keys of a resource body that are Bicep's, not the resource type's."""


def _every_resource() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted(BICEP.rglob("*.bicep")):
        for name, resource in _parse(path).get("resources", {}).items():
            config = resource["config"]
            body = config["config"] if "loop_type" in config else config
            found.append((f"{path.name}:{name}", f"{resource['type']}@{resource['api_version']}", body))
    return found


def test_every_resource_type_api_version_and_property_is_microsofts() -> None:
    resources = _every_resource()
    assert len(resources) == 39
    for where, kind, body in resources:
        assert kind in TYPES and TYPES[kind]["exists"], f"{where}: {kind} is not a generated Bicep type"
        known = TYPES[kind]
        assert set(body) <= set(known["top"]) | LANGUAGE, f"{where}: {set(body) - set(known['top']) - LANGUAGE}"
        props = body.get("properties")
        if isinstance(props, dict):
            assert set(props) <= set(known["properties"]), f"{where}: {set(props) - set(known['properties'])}"
        for dotted, fields in known.get("nested", {}).items():
            node: Any = body
            for part in dotted.split("."):
                many = part.endswith("[]")
                node = node.get(part.removesuffix("[]")) if isinstance(node, dict) else None
                if many and isinstance(node, list):
                    node = node[0] if node else None
            if isinstance(node, dict):
                assert set(node) <= set(fields), f"{where}: {dotted} has {set(node) - set(fields)}"
