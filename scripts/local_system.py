"""The whole of hebi on one machine: a configuration for a base folder, and the gateway started on it.

Used by ``make demo`` (scripts/demo.py) and by the end-to-end tests, so both run the system the same way.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SOCKET_ROOM = 40  # "/<user>/session.sock" and friends must fit in a Unix socket path


def images() -> dict[str, str]:
    """The session images build_docker_images.sh made (incremental: a no-op when nothing changed)."""
    subprocess.run([str(REPO / "build_docker_images.sh"), "web", "api", "dataserver"], check=True,
                   stdout=subprocess.DEVNULL)
    built = json.loads((REPO / ".cache" / "images.json").read_text())["images"]
    return {name: built[name]["tag"] for name in ("web", "api", "dataserver")}


def write_config(base: Path, *, port: int = 0, nginx: str = "auto", users_root: Path | None = None,
                 launcher: str = "local", front: bool = True, unisolated_code: bool = False) -> Path:
    """A configuration keeping everything of this system under ``base``; returns its path. ``launcher``
    ``podman`` runs each session in containers, as its account's uid (needs root and podman). ``front``:
    the gateway behind its nginx front (gateway.front), as a facility runs it. ``unisolated_code``: users'
    own code jobs even in sessions that run as the service account (a single-user machine only)."""
    base = base.resolve()
    users_root = (users_root or base / "users").resolve()
    sessions = base / "sessions"
    if len(str(sessions)) + SOCKET_ROOM > 100:
        # Unix socket paths are limited to ~100 bytes: put the sessions' sockets somewhere short.
        sessions = Path(tempfile.mkdtemp(prefix="hebi-", dir="/tmp"))
    config = {
        "logging": {"level": "info"},
        "gateway": {"host": "127.0.0.1", "port": port, "state_dir": str(base / "gateway"),
                    "front": {"enabled": front}},
        "launcher": {"backend": launcher, "local": {
            "state_dir": str(sessions),
            "web_root": str(REPO / "web" / "dist"),
            "nginx_template": str(REPO / "web" / "nginx" / "session.conf.template"),
            "nginx": nginx,
            "python": sys.executable,
        }, **({"podman": {"state_dir": str(base / "pods"), "images": images(),
                          "containers_conf": str(REPO / "images" / "containers.conf")}} if launcher == "podman" else {})},
        "session": {"roots": {name: {"path": str(users_root / "{user}" / name), "writable": True}
                              for name in ("data", "processing", "output")}},
    }
    if unisolated_code:
        config["jobs"] = {"code": {"allow_unisolated": True}}
    base.mkdir(parents=True, exist_ok=True)
    path = base / "hebi.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def use_kubernetes(config_path: Path, kubeconfig: Path, *, instance: str = "main", profiles: list[dict] | None = None,
                   start_timeout: int = 180) -> None:
    """Run this system's sessions as pods through the Kubernetes API of ``kubeconfig`` (the tests' fake
    cluster, tests/fakekube, whose kubelet runs them with podman), each user's state folder a hostPath
    beside their roots. Used by the end-to-end test and bench/kube, so both run the same system."""
    config = yaml.safe_load(config_path.read_text())
    users_root = Path(next(iter(config["session"]["roots"].values()))["path"]).parent.parent
    config["launcher"] = {"backend": "kubernetes", "start_timeout": start_timeout, "kubernetes": {
        "kubeconfig": str(kubeconfig), "instance": instance, "images": images(), "pull_policy": "IfNotPresent",
        "state_dir": str(config_path.parent / "kube"), "profiles": profiles or [],
        "state": {"host_path": str(users_root / "{user}" / "state")},
        "watch_timeout": 10, "stall_timeout": 5, "backoff_max": 1}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def user_folders(config_path: Path, user: str) -> dict[str, Path]:
    """Create (if missing) and return the user's root folders named by the configuration (and, for the
    kubernetes launcher, the state folder its pod mounts)."""
    config = yaml.safe_load(config_path.read_text())
    paths = {name: root["path"] for name, root in config["session"]["roots"].items()}
    state = ((config["launcher"].get("kubernetes") or {}).get("state") or {}).get("host_path")
    if config["launcher"].get("backend") == "kubernetes" and state:
        paths["state"] = state
    folders = {}
    for name, path in paths.items():
        folder = Path(path.replace("{user}", user))
        folder.mkdir(parents=True, exist_ok=True)
        folders[name] = folder
    return folders


def hand_over(config_path: Path, user: str) -> None:
    """Give what this script wrote into the user's folders (run as root) to the user's uid, so their
    session in a container may change it, as their own files."""
    if os.geteuid() != 0:
        return
    config = yaml.safe_load(config_path.read_text())
    account = yaml.safe_load((Path(config["gateway"]["state_dir"]) / "users.yaml").read_text())["users"][user]
    for folder in user_folders(config_path, user).values():
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, account["uid"], account["gid"], follow_symlinks=False)


def add_user(config_path: Path, user: str, password: str) -> None:
    subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(config_path), "adduser", user,
                    "--password-stdin"], input=password + "\n", text=True, check=True, capture_output=True)
    user_folders(config_path, user)


class Gateway:
    """``hebi-gateway serve`` as a child process; ``url`` is where it listens."""

    def __init__(self, config_path: Path, env: dict[str, str] | None = None, timeout: float = 30):
        self.config_path = config_path
        log_path = config_path.parent / "gateway.log"
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "hebi_gateway", "--config", str(config_path), "serve"],
            stdout=subprocess.PIPE, stderr=self.log, env=dict(os.environ, **(env or {})), text=True)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the gateway did not start: {log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def stop_all_sessions(config_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(config_path), "stop", "--all"],
                   capture_output=True)
