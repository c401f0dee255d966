"""``spymaster azure-env``: the Bicep deployment's outputs as the Kubernetes ConfigMap's values."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from operators.errors import ConfigError

OUTPUTS = {
    "SPYMASTER_LAKE": "lakeUri",
    "SPYMASTER_INPUT": "eventHubsInput",
    "SPYMASTER_KEYVAULT": "keyVaultUri",
    "AZURE_CLIENT_ID": "identityClientId",
}
"""ConfigMap key -> output of infra/bicep/main.bicep."""
IMAGES = {"SPYMASTER_IMAGE": "spymaster", "SPYMASTER_INGESTOR_IMAGE": "spymaster-ingestor"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "azure-env",
        help="turn the Bicep deployment's outputs into an overlay's azure.env",
        description=(
            "Read the outputs of infra/bicep/main.bicep (the JSON of `az deployment group show -g RG -n main "
            "--query properties.outputs`) and print the env file a Kubernetes overlay merges into the "
            "spymaster-config ConfigMap: the lake, the input hub, the Key Vault, the workload identity's client "
            "id and the two images in the deployment's registry at --tag."
        ),
    )
    p.add_argument("outputs", type=Path, help="the deployment outputs, as JSON")
    p.add_argument("--tag", default="latest", help="image tag pushed by `make images` (default latest)")
    p.set_defaults(run=run)


def azure_env(outputs: Mapping[str, object], tag: str) -> dict[str, str]:
    def value(name: str) -> str:
        found = outputs.get(name)
        raw = found.get("value") if isinstance(found, dict) else found
        if not isinstance(raw, str) or not raw:
            raise ConfigError(f"the deployment outputs have no {name}; pass the outputs of infra/bicep/main.bicep")
        return raw

    env = {key: value(name) for key, name in OUTPUTS.items()}
    registry = value("registryLoginServer")
    return env | {key: f"{registry}/{image}:{tag}" for key, image in IMAGES.items()}


def run(args: argparse.Namespace) -> int:
    try:
        outputs = json.loads(args.outputs.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the deployment outputs {args.outputs}: {err}") from None
    for key, value in azure_env(outputs, args.tag).items():
        sys.stdout.write(f"{key}={value}\n")
    return 0
