"""Every hebi package declares what it imports (so each image installs exactly what its component
needs), and hebi-common's core imports without its hdf5/flask extras (so the gateway's image can leave
h5py and numpy out)."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {  # project folder -> its import package
    "common": "hebi_common", "api": "hebi_api", "dataserver": "hebi_dataserver", "runner": "hebi_runner",
    "kubernetes/pod_launcher": "pod_launcher", "kubernetes/gateway": "hebi_gateway",
}
# Real Savu is not on PyPI: hebi_common.savu.savu_catalogue imports it only where a facility has it.
NOT_ON_PYPI = {"savu", "scripts"}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(folder: str) -> set[str]:
    project = tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]
    requirements = project.get("dependencies", []) + [
        r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    return {normal(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements} | {normal(project["name"])}


def imported(package_dir: Path) -> set[str]:
    tops = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.split(".")[0])
    return tops - set(sys.stdlib_module_names) - NOT_ON_PYPI - {"__future__"}


@pytest.mark.parametrize("folder", PACKAGES)
def test_package_declares_what_it_imports(folder):
    distributions = importlib.metadata.packages_distributions()
    own = declared(folder)
    undeclared = {}
    for top in imported(REPO / folder / PACKAGES[folder]):
        providers = {normal(d) for d in distributions.get(top, [top])}
        if not providers & own:
            undeclared[top] = sorted(providers)
    assert not undeclared, f"{folder}/pyproject.toml does not declare what it imports: {undeclared}"


def test_gateway_imports_without_hdf5_or_flask():
    # What the gateway's image lacks is made unimportable here: its entry points must still load.
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'h5py', 'flask', 'werkzeug', 'scipy'):\n"
        "            raise ImportError(f'{name} is not in the gateway image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import hebi_gateway.cli, hebi_gateway.app, pod_launcher.cli\n")
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
