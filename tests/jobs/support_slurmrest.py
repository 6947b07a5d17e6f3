"""Support for the slurmrest job tests: real slurmrestd (JWT authentication, as an unprivileged user) in
front of the test Slurm, started by scripts/slurm.sh, and the tokens a session would be given.

The job suite runs the API as root, as it does for the command-line Slurm backend, so the tokens are
root's (``scontrol token username=root``) and the jobs run as root on the node.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, real_component

PORT = int(os.environ.get("HEBI_SLURMRESTD_PORT", "6820"))
TOKEN_USER = "root"


def slurm_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / "slurm.sh"), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, HEBI_SLURMRESTD_PORT=str(PORT)))


@dataclass(frozen=True)
class SlurmRest:
    url: str

    def token(self, lifespan: int = 3600, user: str = TOKEN_USER) -> str:
        done = slurm_script("token", user, str(lifespan))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def write_token(self, path: Path, lifespan: int = 3600) -> Path:
        """A renewal as a site would do it: the new token replaces the file in one rename."""
        partial = path.with_name(path.name + ".new")
        partial.write_text(self.token(lifespan) + "\n")
        partial.chmod(0o600)
        partial.replace(path)
        return path

    def start(self) -> None:
        done = slurm_script("start-restd")
        assert done.returncode == 0, done.stderr or done.stdout

    def stop(self) -> None:
        done = slurm_script("stop-restd")
        assert done.returncode == 0, done.stderr or done.stdout

    def jobs_overrides(self, base: Path) -> dict:
        """The ``jobs`` configuration of a session that reaches Slurm through slurmrestd."""
        token_file = self.write_token(base / "slurm-token")
        return {"slurmrest": {"url": self.url, "token_file": str(token_file), "connect_timeout": 5, "timeout": 30}}


@pytest.fixture(scope="session")
def slurmrest(slurm):
    """slurmrestd on 127.0.0.1:PORT for the whole run (stopped at the end unless it was running)."""
    was_running = slurm_script("status-restd").returncode == 0
    done = slurm_script("start-restd")
    if done.returncode != 0:
        real_component("slurmrestd", False, f"scripts/slurm.sh start-restd failed: {(done.stderr or done.stdout)[-800:]}")
    yield SlurmRest(f"http://127.0.0.1:{PORT}")
    if not was_running:
        slurm_script("stop-restd")
