"""The launcher interface: what the gateway and the CLI need from any way of running a user's session."""
from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hebi_common.atomic import atomic_write
from hebi_common.config import HebiConfig
from hebi_common.identity import Identity, check_username

State = Literal["starting", "running", "stopped", "failed"]
#: The steps of a start, in order, as every backend reports them (Launcher.progress).
Step = Literal["requested", "scheduled", "pulling", "pulled", "started", "ready", "failed"]
STEPS: tuple[str, ...] = ("requested", "scheduled", "pulling", "pulled", "started", "ready", "failed")
#: Set by the session's router (nginx, or session_router) on its own answer for a service of the
#: session that does not answer, so the gateway can tell it from the service's own 502, and restart.
SESSION_DOWN_HEADER = "X-Hebi-Session-Down"


class LauncherError(Exception):
    """A session could not be started or reached; the message says why, for an admin."""


@dataclass(frozen=True)
class SessionInfo:
    user: str
    state: State
    #: Where the session answers HTTP: ``unix:/path`` or ``http://host:port``. Empty unless running.
    url: str = ""
    #: The per-session secret the gateway signs identities with. Never shown by the CLI.
    secret: str = field(default="", repr=False)
    started_at: float | None = None
    backend: str = ""
    detail: str = ""

    def public_json(self) -> dict:
        return {"user": self.user, "state": self.state, "url": self.url, "started_at": self.started_at,
                "backend": self.backend, "detail": self.detail}


@dataclass(frozen=True)
class Progress:
    """One step of a session's start, from the backend's real state (never a formula of elapsed time)."""

    step: Step
    message: str
    at: float

    def public_json(self) -> dict:
        return {"step": self.step, "message": self.message, "at": self.at}


@dataclass(frozen=True)
class Profile:
    """A kind of session the admin offers (resources, where it runs); the user picks one at start."""

    name: str
    display_name: str
    description: str = ""
    default: bool = False

    def public_json(self) -> dict:
        return {"name": self.name, "display_name": self.display_name, "description": self.description,
                "default": self.default}


class SessionRecords:
    """A launcher's own folder of sessions (local and podman): ``<state_dir>/<user>/session.json``, the
    record of a session it started (its secret, where it listens, what runs), 0600 and written whole."""

    NAME = "session.json"

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir

    def folder(self, user: str) -> Path:
        return self.state_dir / user

    def read(self, user: str) -> dict | None:
        try:
            return json.loads((self.folder(user) / self.NAME).read_text())
        except (OSError, ValueError):
            return None

    def write(self, user: str, record: dict) -> None:
        with atomic_write(self.folder(user) / self.NAME, 0o600, text=True) as out:
            json.dump(record, out)

    def remove(self, user: str) -> None:
        (self.folder(user) / self.NAME).unlink(missing_ok=True)

    def users(self) -> list[str]:
        """The users with a record, in name order."""
        if not self.state_dir.is_dir():
            return []
        return [folder.name for folder in sorted(self.state_dir.iterdir()) if (folder / self.NAME).is_file()]


class Launcher(ABC):
    """Runs one session per user. Implementations are blocking; async callers use a thread."""

    name: str = ""

    @abstractmethod
    def start(self, identity: Identity, profile: str | None = None) -> SessionInfo:
        """Start the user's session (or return it if already running) and wait until it answers.
        ``profile`` names one of profiles() (None: the user's last choice, else the default)."""

    @abstractmethod
    def stop(self, user: str) -> bool:
        """Stop the user's session; False when there was none."""

    @abstractmethod
    def status(self, user: str) -> SessionInfo:
        """The session's state now (``stopped`` when it has none)."""

    @abstractmethod
    def list(self) -> list[SessionInfo]:
        """Every session this launcher knows of, running or failed."""

    @abstractmethod
    def logs(self, user: str, lines: int = 100) -> str:
        """The last lines of the session's logs."""

    def profiles(self) -> list[Profile]:
        """The kinds of session offered; empty when the backend has no choice to make."""
        return []

    def last_profile(self, user: str) -> str | None:
        """The profile the user chose last, to pre-select it (None: never chose, or no profiles)."""
        return None

    def progress(self, user: str) -> list[Progress]:
        """The steps the user's current (or last) start has reached, oldest first. Backends without
        their own know only what status() says."""
        info = self.status(user)
        at = info.started_at or 0.0
        if info.state == "running":
            return [Progress("requested", "session requested", at), Progress("ready", "session ready", at)]
        if info.state == "starting":
            return [Progress("requested", "session requested", at)]
        if info.state == "failed":
            return [Progress("requested", "session requested", at), Progress("failed", info.detail or "failed", at)]
        return []

    def close(self) -> None:
        """Let go of what the launcher holds (the kubernetes one: its watches)."""
        return None

    def health(self) -> dict:
        """The launcher's own health for the gateway's /gateway/health: ``ok`` and, when not, why."""
        return {"ok": True}

    def check_container_start(self, identity: Identity, profile: str | None) -> str:
        """What a launcher running sessions in containers checks first: the user name, the profile, and a
        uid to run as. Returns the user name."""
        user = check_username(identity.user)
        self.check_profile(profile)
        if identity.uid is None:
            raise LauncherError(f"{user} has no uid, and a session in a container runs as its account's uid: "
                                f"give one with hebi-gateway adduser {user} --uid UID")
        return user

    def check_profile(self, profile: str | None) -> None:
        """Refuse a profile the backend does not offer (a backend without profiles takes none)."""
        if profile is not None and profile not in {p.name for p in self.profiles()}:
            raise LauncherError(f"no session profile {profile!r}" + (
                f"; the profiles are {', '.join(p.name for p in self.profiles())}" if self.profiles() else ""))


#: The backends by ``launcher.backend``, imported only when chosen: the interface imports none of them.
BACKENDS = {"local": "pod_launcher.local:LocalLauncher", "podman": "pod_launcher.podman:PodmanLauncher",
            "kubernetes": "pod_launcher.kubernetes:KubernetesLauncher"}


def make_launcher(config: HebiConfig, config_path: str | None = None) -> Launcher:
    target = BACKENDS.get(config.launcher.backend)
    if target is None:
        raise LauncherError(f"unknown launcher backend {config.launcher.backend!r}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(config, config_path)
