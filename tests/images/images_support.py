"""Support of the image tests: one run of build_docker_images.sh per test session (incremental, so
cheap when `make test` has just built them) and running its images offline with podman."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import real_component

REPO = Path(__file__).resolve().parents[2]
NAMES = ("gateway", "api", "dataserver", "web")


def podman_env() -> dict[str, str]:
    # hebi's own podman settings (runc, rlimits): the machine's configuration is left as it is.
    return os.environ | {"CONTAINERS_CONF": str(REPO / "images" / "containers.conf")}


def build() -> tuple[dict, str]:
    """Runs the build script: (its images.json, its output)."""
    done = subprocess.run([str(REPO / "build_docker_images.sh")], cwd=REPO, env=podman_env(),
                          capture_output=True, text=True, timeout=3000)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"build_docker_images.sh failed:\n{output[-4000:]}"
    return json.loads((REPO / ".cache" / "images.json").read_text()), output


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """name -> tag of every image, built (or found unchanged) once per test session."""
    available = shutil.which("podman") is not None and shutil.which("mmdebstrap") is not None
    real_component("podman", available and os.geteuid() == 0,
                   "install it as root with scripts/install-system.sh podman")
    report, _ = build()
    return {name: entry["tag"] for name, entry in report["images"].items()}


def run(tag: str, *command: str, entrypoint: str | None = None, options: tuple[str, ...] = ()) \
        -> subprocess.CompletedProcess:
    """Runs one command in the image with no network at all, the way the tests and builds must."""
    argv = ["podman", "run", "--rm", "--network", "none", *options]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    return subprocess.run([*argv, tag, *command], env=podman_env(), capture_output=True, text=True,
                          timeout=120)
