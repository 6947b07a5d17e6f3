"""The launcher interface: what the gateway and the CLI need from any way of running a user's session."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

from hebi_common.config import HebiConfig
from hebi_common.identity import Identity

State = Literal["starting", "running", "stopped", "failed"]
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


class Launcher(ABC):
    """Runs one session per user. Implementations are blocking; async callers use a thread."""

    name: str = ""

    @abstractmethod
    def start(self, identity: Identity) -> SessionInfo:
        """Start the user's session (or return it if already running) and wait until it answers."""

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


#: The backends by ``launcher.backend``, imported only when chosen: the interface imports none of them.
BACKENDS = {"local": "pod_launcher.local:LocalLauncher", "podman": "pod_launcher.podman:PodmanLauncher"}


def make_launcher(config: HebiConfig, config_path: str | None = None) -> Launcher:
    target = BACKENDS.get(config.launcher.backend)
    if target is None:
        raise LauncherError(f"unknown launcher backend {config.launcher.backend!r}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(config, config_path)
