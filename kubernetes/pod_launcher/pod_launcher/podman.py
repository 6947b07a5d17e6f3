"""The ``podman`` launcher: each user's session as a pod run by ``podman kube play``, as the user's uid.

The pod is objects.make_pod's manifest, the one the kubernetes launcher will send to a cluster. Per user,
under ``launcher.podman.state_dir/<user>/`` (0700, the launcher's): the manifest ``pod.yaml``, the
session's configuration, its secret (0400, owned by the user's uid, mounted as a file so ``podman
inspect`` does not show it) and the record ``session.json``. The pod runs on the host
network with its servers on its own loopback address 127.0.0.N, kept per user in ``addresses.json``, so
no bridge network is ever made. Podman runs no probes: the launcher probes the session's /api/health
itself with a signed identity. Pods carry labels (objects.labels), so every session is found again after
the gateway restarts.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import yaml

from hebi_common.atomic import atomic_write
from hebi_common.config import HebiConfig
from hebi_common.identity import Identity, check_username, sign_identity
from hebi_common.sandbox import Roots
from hebi_common.session import StateFolderError, session_state_dir

from .base import Launcher, LauncherError, SessionInfo, SessionRecords
from .objects import INSTANCE_LABEL, USER_LABEL, MountedRoot, PodSettings, make_pod, pod_name, safe_name, scratch_volume
from .spec import SESSION, probe

ADDRESSES = "addresses.json"
#: The bridge network ``podman kube play`` makes for a pod without host networking: never to be used.
KUBE_NETWORK = "podman-default-kube-network"


class PodmanLauncher(Launcher):
    name = "podman"

    def __init__(self, config: HebiConfig, config_path: str | None = None):
        self.config = config
        self.settings = config.launcher.podman
        self.state_dir = Path(self.settings.state_dir)
        self.records = SessionRecords(self.state_dir)
        #: Which installation a pod belongs to: two hebi's (or two test systems) on one host never meet.
        self.instance = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:6]

    # -- the interface ------------------------------------------------------------------------------

    def start(self, identity: Identity, profile: str | None = None) -> SessionInfo:
        user = self.check_container_start(identity, profile)
        current = self.status(user)
        if current.state == "running":
            return current
        if os.geteuid() != 0:
            # Handing the secret and the state folder to the user's uid, and running pods as it, needs root.
            raise LauncherError("the podman launcher runs sessions as their users' uids, which needs root: "
                                "run the gateway as root, or use launcher.backend: local")
        self._remove(user)
        self._check_images()
        folder = self.records.folder(user)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        gid = identity.uid if identity.gid is None else identity.gid
        try:
            state_dir = session_state_dir(self.config, user, identity.home, folder)
        except StateFolderError as err:
            raise LauncherError(f"the session of {user} was not started: {err}") from None
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chown(state_dir, identity.uid, gid)

        secret = secrets.token_urlsafe(32)
        secret_file = folder / "secret"
        secret_file.unlink(missing_ok=True)
        with atomic_write(secret_file, 0o400, text=True) as out:
            out.write(secret)
        os.chown(secret_file, identity.uid, gid)
        config_file = folder / "hebi.yaml"
        with atomic_write(config_file, 0o444, text=True) as out:
            # The effective configuration (environment overrides included), as the session must see it.
            yaml.safe_dump(self.config.model_dump(mode="json"), out, sort_keys=False)
        address = self._address(user)

        pod = make_pod(SESSION, identity, PodSettings(
            instance=self.instance, address=address, images=self.settings.images.model_dump(),
            roots=self._roots(identity), state_dir=str(state_dir), config_file=str(config_file),
            secret_file=str(secret_file), body_timeout=self.config.gateway.body_idle_timeout,
            cpu_limit=self.settings.cpu_limit, memory_limit=self.settings.memory_limit))
        manifest = folder / "pod.yaml"
        with atomic_write(manifest, 0o600, text=True) as out:
            yaml.safe_dump(pod, out, sort_keys=False)
        record = {"user": user, "backend": self.name, "secret": secret, "started_at": time.time(),
                  "address": address, "pod": pod["metadata"]["name"], "identity": identity.to_json()}
        self.records.write(user, record)

        played = self._podman("kube", "play", str(manifest), check=False)
        self._remove_kube_network()
        if played.returncode != 0:
            self._remove(user)
            raise LauncherError(f"podman could not start the session of {user}: "
                                f"{self._image_problem(played.stderr) or played.stderr.strip()[-500:]}")
        self._wait_until_answering(user, identity, address, secret, played)
        return self.status(user)

    def stop(self, user: str) -> bool:
        user = check_username(user)
        had = self._remove(user)
        self.records.remove(user)
        return had

    def status(self, user: str) -> SessionInfo:
        user = check_username(user)
        pods = self._pods(user)
        record = self.records.read(user)
        if not pods or record is None:
            return SessionInfo(user=user, state="stopped", backend=self.name)
        return self._info(user, pods[0], record)

    def list(self) -> list[SessionInfo]:
        sessions = []
        for pod in self._pods():
            user = self._user_of(pod)
            record = self.records.read(user) if user else None
            if record is not None:
                sessions.append(self._info(user, pod, record))
        return sorted(sessions, key=lambda s: s.user)

    def logs(self, user: str, lines: int = 100) -> str:
        name = pod_name(self.instance, check_username(user))
        parts = []
        for part in SESSION.parts:
            shown = self._podman("logs", "--tail", str(lines), f"{name}-{part.name}", check=False)
            if shown.returncode == 0:
                parts.append(f"==> {part.name} <==\n" + (shown.stdout + shown.stderr).rstrip())
        return "\n\n".join(parts) if parts else f"no logs for {user}"

    # -- the pieces ---------------------------------------------------------------------------------

    def _podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        if self.settings.containers_conf:
            env["CONTAINERS_CONF"] = self.settings.containers_conf
        try:
            done = subprocess.run([self.settings.podman, *args], capture_output=True, text=True, env=env,
                                  timeout=120)
        except FileNotFoundError:
            raise LauncherError(f"podman ({self.settings.podman}) is not installed: "
                                "install it with scripts/install-system.sh podman") from None
        except subprocess.TimeoutExpired:
            raise LauncherError(f"podman {' '.join(args[:2])} did not finish within 120 s") from None
        if check and done.returncode != 0:
            raise LauncherError(f"podman {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
        return done

    def _pods(self, user: str | None = None) -> list[dict]:
        filters = ["--filter", f"label={INSTANCE_LABEL}={self.instance}"]
        if user is not None:
            filters += ["--filter", f"label={USER_LABEL}={safe_name(user)}"]
        listed = self._podman("pod", "ps", *filters, "--format", "json")
        pods = json.loads(listed.stdout or "[]") or []
        return [p for p in pods if user is None or p.get("Name") == pod_name(self.instance, user)]

    def _user_of(self, pod: dict) -> str | None:
        """The raw user name of a pod (podman lists labels, not the annotation): the folder whose name
        gives its label."""
        safe = pod.get("Labels", {}).get(USER_LABEL, "")
        return next((user for user in self.records.users() if safe_name(user) == safe), None)

    def _info(self, user: str, pod: dict, record: dict) -> SessionInfo:
        containers = {c.get("Names", ""): c.get("Status", "") for c in pod.get("Containers", [])}
        down = sorted(name.removeprefix(f"{pod['Name']}-") for name, state in containers.items()
                      if state != "running" and name.startswith(f"{pod['Name']}-"))
        base = {"user": user, "backend": self.name, "started_at": record["started_at"]}
        if pod.get("Status") != "Running" or down:
            return SessionInfo(state="failed", **base,
                               detail=f"pod {pod.get('Status', '?').lower()}"
                                      + (f", {', '.join(down)} not running" if down else "")
                                      + f"; see pod_launcher logs -u {user}")
        address = record["address"]
        return SessionInfo(state="running", url=f"http://{address}:{SESSION.router.port}",
                           secret=record["secret"], detail=f"pod {pod['Name']} on {address}", **base)

    def _remove(self, user: str) -> bool:
        """Remove the user's pod and its scratch volumes (podman keeps an emptyDir after its pod)."""
        name = pod_name(self.instance, user)
        had = self._podman("pod", "exists", name, check=False).returncode == 0
        if had:
            self._podman("pod", "rm", "-f", "-t", "5", name, check=False)
        volumes = [scratch_volume(name, part.name) for part in SESSION.parts]
        self._podman("volume", "rm", "-f", *volumes, check=False)
        return had

    def _check_images(self) -> None:
        for image in self.settings.images.model_dump().values():
            if self._podman("image", "exists", image, check=False).returncode != 0:
                raise LauncherError(f"the session image {image} is missing; build it with ./build_docker_images.sh")

    def _image_problem(self, stderr: str) -> str:
        for image in self.settings.images.model_dump().values():
            if image in stderr:
                return f"the session image {image} cannot be used: {stderr.strip().splitlines()[-1]}"
        return ""

    def _remove_kube_network(self) -> None:
        if self._podman("network", "exists", KUBE_NETWORK, check=False).returncode == 0:
            self._podman("network", "rm", "-f", KUBE_NETWORK, check=False)

    def _roots(self, identity: Identity) -> tuple[MountedRoot, ...]:
        mounted = []
        resolved = {r.name: r for r in Roots.from_config(self.config.session.roots, identity.user, identity.home)}
        for name, root in sorted(self.config.session.roots.items()):
            path = root.path.replace("{user}", identity.user).replace("{home}", identity.home or "")
            real = resolved[name].path
            if not real.is_dir():
                raise LauncherError(f"the {name} folder of {identity.user} ({real}) does not exist; "
                                    f"hebi-gateway adduser {identity.user} creates it")
            mounted.append(MountedRoot(name, path, str(real), root.writable))
        return tuple(mounted)

    def _address(self, user: str) -> str:
        """The user's own loopback address: kept once given, never another user's, and not in use."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_dir / ".addresses.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.state_dir / ADDRESSES
            try:
                taken = json.loads(path.read_text())
            except (OSError, ValueError):
                taken = {}
            if user in taken:
                return f"127.0.0.{taken[user]}"
            low, high = self.settings.loopback_range
            used = set(taken.values())
            for n in range(low, high + 1):
                if n not in used and not _in_use(f"127.0.0.{n}"):
                    taken[user] = n
                    with atomic_write(path, 0o600, text=True) as out:
                        json.dump(taken, out)
                    return f"127.0.0.{n}"
        raise LauncherError(f"no free loopback address left in 127.0.0.{low}-{high} (launcher.podman.loopback_range)")

    def _gone(self, user: str, played: subprocess.CompletedProcess) -> str:
        listed = self._podman("pod", "ps", "--filter", f"label={INSTANCE_LABEL}={self.instance}",
                              "--format", "{{.Name}} {{.Status}}", check=False)
        printed = " ".join((played.stdout + played.stderr).split())[-300:] or "nothing"
        return (f"its pod {pod_name(self.instance, user)} is gone although podman kube play succeeded "
                f"(kube play printed: {printed}; podman lists: {' '.join(listed.stdout.split()) or 'no pod'})")

    def _wait_until_answering(self, user: str, identity: Identity, address: str, secret: str,
                              played: subprocess.CompletedProcess) -> None:
        deadline = time.monotonic() + self.config.launcher.start_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            info = self.status(user)
            if info.state != "running":
                tail = self.logs(user, 15)
                self._remove(user)
                # A failed pod says what is down; a pod gone altogether has no detail of its own, and
                # then what kube play printed and what podman lists now are all there is to go on.
                why = info.detail or self._gone(user, played)
                raise LauncherError(f"the session of {user} failed to start: {why}\n{tail}")
            try:
                header = sign_identity(identity, secret)
                answers = [(path, probe(address, SESSION.router.port, path, header)) for path in SESSION.readiness_paths]
                failing = [f"{path}: {answer}" for path, answer in answers if answer != "HTTP 200"]
                if not failing:
                    return
                last = failing[0]
            except OSError as err:
                last = str(err)
            time.sleep(0.1)
        tail = self.logs(user, 15)
        self._remove(user)
        raise LauncherError(f"the session of {user} did not answer within "
                            f"{self.config.launcher.start_timeout:.0f} s ({last})\n{tail}")


def _in_use(address: str) -> bool:
    """Whether something already listens on the session's port at ``address`` (another hebi's pod)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((address, SESSION.router.port)) == 0
