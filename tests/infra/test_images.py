"""The two images, checked without Docker: hadolint passes both Dockerfiles, every stage starts
from a pinned base, the image that runs is a numeric non-root user with a health check and no
secret in any layer, every file copied in exists, and the commands the images and the
Kubernetes manifests start parse with the ``spymaster`` tool itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.secrets import SECRETS
from flows.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"spymaster": ROOT / "infra" / "Dockerfile", "spymaster-ingestor": ROOT / "infra" / "ingestor.Dockerfile"}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _final_stage(path: Path) -> list[tuple[str, str]]:
    steps = _instructions(path)
    last = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last:]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_passes(name: str) -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("hadolint")), "--failure-threshold", "info",
                           "--format", "json", str(IMAGES[name])], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout or "[]") == [], done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_image_is_pinned_non_root_healthy_and_holds_no_secret(name: str) -> None:
    steps = _instructions(IMAGES[name])
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) >= 2  # multi-stage: the run image carries no build tools
    stages = {args.split()[-1] for op, args in steps if op == "FROM" and " AS " in args.upper()}
    for base in bases:
        if base in stages:
            continue
        image, _, tag = base.partition(":")
        assert re.fullmatch(r"\d+\.\d+\.\d+-[a-z0-9.-]+", tag), f"{base}: pin the base to a full version"
    final = _final_stage(IMAGES[name])
    users = [args for op, args in final if op == "USER"]
    assert users and re.fullmatch(r"\d+(:\d+)?", users[-1]) and not users[-1].startswith("0"), users
    assert any(op == "HEALTHCHECK" and args.startswith("--") for op, args in final)
    assert any(op == "ENTRYPOINT" for op, _ in final)
    text = IMAGES[name].read_text()
    for variable in SECRETS:
        assert not re.search(rf"^\s*(ENV|ARG)\b.*{variable}", text, re.MULTILINE), variable
    assert "SharedAccessKey=" not in text and not re.search(r"\bdb-[A-Za-z0-9]{20,}", text)  # no key pasted in


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_every_file_copied_from_the_repository_exists_and_is_not_ignored(name: str) -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for op, args in _instructions(IMAGES[name]):
        if op != "COPY" or args.startswith("--from="):
            continue
        for source in args.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert source.split("/")[0] not in ignored, source


def test_the_commands_the_images_and_the_manifests_start_parse() -> None:
    parser = _parser()
    ingestor = json.loads(next(args for op, args in _final_stage(IMAGES["spymaster-ingestor"]) if op == "ENTRYPOINT"))
    default = json.loads(next(args for op, args in _final_stage(IMAGES["spymaster-ingestor"]) if op == "CMD"))
    assert ingestor[:2] == ["spymaster", "ingest"]
    args = parser.parse_args([*ingestor[1:], *default])
    assert args.health_file == Path("/tmp/ingest.alive") and args.eventhubs and args.topic == "mbo_raw"
    health = next(a for op, a in _final_stage(IMAGES["spymaster-ingestor"]) if op == "HEALTHCHECK")
    assert str(args.health_file) in health
    deployment = yaml.safe_load((ROOT / "infra" / "k8s" / "ingestor.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].split(":")[0] == "spymaster-ingestor"
    assert parser.parse_args([*ingestor[1:], *container["args"]]).health_file == args.health_file
    flow = json.loads(next(args for op, args in _final_stage(IMAGES["spymaster"]) if op == "ENTRYPOINT"))
    assert flow == ["python", "-m", "bytewax.run", "flows.main"]
    makefile = (ROOT / "Makefile").read_text()
    for name, path in IMAGES.items():
        assert f"-f {path.relative_to(ROOT)} -t {name}:" in makefile


def test_the_ingestors_report_loop_keeps_its_health_file_fresh(tmp_path: Path) -> None:
    import os
    import threading
    import time

    from connectors.databento_live import IngestCounts
    from flows.cli.ingest import _report

    health = tmp_path / "ingest.alive"
    stopping = threading.Event()
    reporter = threading.Thread(target=_report, args=(IngestCounts(), stopping, 0.05, health), daemon=True)
    reporter.start()
    try:
        deadline = time.monotonic() + 10
        while not health.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        first = health.stat().st_mtime_ns
        os.utime(health, ns=(first - 10**12, first - 10**12))  # as if it were 1000 s old
        while health.stat().st_mtime_ns < first - 10**11 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert health.stat().st_mtime_ns >= first  # touched again by the next report
    finally:
        stopping.set()
        reporter.join(5)
    assert not reporter.is_alive()


def test_the_readme_documents_each_images_entry_command() -> None:
    readme = (ROOT / "README.md").read_text()
    flow = json.loads(next(args for op, args in _final_stage(IMAGES["spymaster"]) if op == "ENTRYPOINT"))
    ingestor = json.loads(next(args for op, args in _final_stage(IMAGES["spymaster-ingestor"]) if op == "ENTRYPOINT"))
    default = json.loads(next(args for op, args in _final_stage(IMAGES["spymaster-ingestor"]) if op == "CMD"))
    assert f"| `spymaster` (`infra/Dockerfile`) | `{' '.join(flow)}`" in readme
    assert f"| `spymaster-ingestor` (`infra/ingestor.Dockerfile`) | `{' '.join(ingestor)}` + its arguments " \
           f"(default `{' '.join(default)}`)" in readme
