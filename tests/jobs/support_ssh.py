"""Support for the jobs-over-SSH tests: a real OpenSSH server on a loopback port (scripts/sshd.sh) as
the submit host, which is this machine, so the schedulers' commands there are those of the GridEngine
and Slurm that jobs_support starts.

The API in the job tests runs as root and every other kind's jobs run as root (the scheduler runs a
job as the Unix user who submits it, and root owns the test's roots), so the SSH login user is root
too; jobs.ssh.user names it, as a facility would name the session's user.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, real_component


def sshd_script(action: str, settings: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """scripts/sshd.sh ACTION, for the shared sshd or (``settings``: HEBI_SSHD_PORT, HEBI_SSHD_DIR) another."""
    return subprocess.run([str(REPO / "scripts" / "sshd.sh"), action], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(settings or {})})


def start_sshd(settings: dict[str, str] | None = None) -> dict[str, str]:
    """Install and start an sshd; its HEBI_SSHD_PORT, _IDENTITY (client key), _KNOWN_HOSTS and _LOG."""
    if os.geteuid() != 0:
        real_component("sshd", False, "needs root to install and start it (scripts/sshd.sh install && start)")
    for action in ("install", "start"):
        done = sshd_script(action, settings)
        if done.returncode != 0:
            real_component("sshd", False, f"scripts/sshd.sh {action} failed: {(done.stderr or done.stdout)[-800:]}")
    env = dict(settings or {})
    for pair in sshd_script("env", settings).stdout.removeprefix("export ").split():
        key, _, value = pair.partition("=")
        env[key] = value
    return env


@pytest.fixture(scope="session")
def sshd() -> dict[str, str]:
    """The shared sshd (scripts/sshd.sh's default port) that the job suite's ssh kinds submit through."""
    was_running = os.geteuid() == 0 and sshd_script("status").returncode == 0
    yield start_sshd()
    if not was_running:
        sshd_script("stop")


def ssh_jobs(sshd: dict[str, str], **sections) -> dict:
    """``jobs`` overrides sending the scheduler's commands to the sshd, host key checked."""
    return {"ssh": {"host": "127.0.0.1", "port": int(sshd["HEBI_SSHD_PORT"]), "user": "root",
                    "identity_file": sshd["HEBI_SSHD_IDENTITY"], "known_hosts_file": sshd["HEBI_SSHD_KNOWN_HOSTS"],
                    "strict_host_key_checking": "yes", "connect_timeout": 5, "command_timeout": 60,
                    "control_persist": 60}, **sections}


def gridengine_ssh_setup(request, base: Path):
    """No GridEngine variable in the API's environment: SGE_ROOT and SGE_CELL reach the remote commands
    only through jobs.gridengine."""
    grid = request.getfixturevalue("gridengine")
    sshd_env = request.getfixturevalue("sshd")
    return {}, ssh_jobs(sshd_env, gridengine={"sge_root": grid["SGE_ROOT"], "sge_cell": grid["SGE_CELL"]})


def slurm_ssh_setup(request, base: Path):
    request.getfixturevalue("slurm")
    return {}, ssh_jobs(request.getfixturevalue("sshd"))


def sshd_logins(sshd: dict[str, str]) -> int:
    """Connections the sshd has let log in so far (its log has one line for each)."""
    return _log(sshd).count("Accepted publickey for ")


def sshd_sessions_from(sshd: dict[str, str], client_port: int) -> int:
    """Commands the sshd has started for the connection from ``client_port`` (one line each)."""
    return _log(sshd).count(f" port {client_port} id ")


def _log(sshd: dict[str, str]) -> str:
    try:
        return Path(sshd["HEBI_SSHD_LOG"]).read_text(errors="replace")
    except FileNotFoundError:
        return ""
