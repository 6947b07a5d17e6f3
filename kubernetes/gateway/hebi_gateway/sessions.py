"""The gateway's table of users' sessions: finds or starts a user's session through the launcher,
one start at a time per user, and remembers where each running session answers."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hebi_common.identity import Identity
from pod_launcher import Launcher, LauncherError, SessionInfo

log = logging.getLogger("hebi.gateway")


class SessionTable:
    def __init__(self, launcher: Launcher):
        self.launcher = launcher
        self._running: dict[str, SessionInfo] = {}
        self._starting: dict[str, asyncio.Task] = {}
        self._failed: dict[str, str] = {}
        #: Called before a new start begins (limits.StartLimits.admit); raises to refuse it.
        self.admit: Callable[[str, set[str], Launcher], Awaitable[None]] | None = None

    def cached(self, user: str) -> SessionInfo | None:
        return self._running.get(user)

    def running(self) -> list[SessionInfo]:
        """The sessions known to be running."""
        return list(self._running.values())

    def forget(self, user: str) -> None:
        self._running.pop(user, None)

    def failure(self, user: str) -> str | None:
        return self._failed.get(user)

    def starting(self, user: str) -> bool:
        return user in self._starting

    async def find_or_start(self, identity: Identity, wait: bool, timeout: float,
                            profile: str | None = None) -> SessionInfo | None:
        """The running session of ``identity``; starts it if needed (with ``profile``, one of
        Launcher.profiles; None: the launcher's choice). With ``wait=False``, None while it starts."""
        user = identity.user
        info = self._running.get(user)
        if info is not None:
            return info
        task = self._starting.get(user)
        if task is None:
            info = await asyncio.to_thread(self.launcher.status, user)
            if info.state == "running":
                self._running[user] = info
                return info
            if self.admit is not None and user not in self._starting:
                await self.admit(user, set(self._starting), self.launcher)
            task = self._starting.get(user)
        if task is None:
            self._failed.pop(user, None)
            task = self._starting[user] = asyncio.create_task(self._start(identity, profile))
        if not wait:
            await asyncio.sleep(0)
            return self._running.get(user)
        await asyncio.wait_for(asyncio.shield(task), timeout)
        info = self._running.get(user)
        if info is None:
            raise LauncherError(self._failed.get(user, "the session did not start"))
        return info

    async def _start(self, identity: Identity, profile: str | None = None) -> None:
        user = identity.user
        log.info("starting the session of %s%s", user, f" (profile {profile})" if profile else "")
        try:
            # No profile: the launcher's own choice (and launchers without profiles take none).
            chosen = {"profile": profile} if profile is not None else {}
            info = await asyncio.to_thread(self.launcher.start, identity, **chosen)
            self._running[user] = info
            log.info("session of %s running at %s", user, info.url)
        except LauncherError as err:
            log.error("session of %s failed to start: %s", user, err)
            self._failed[user] = str(err).splitlines()[0]
        except Exception as err:  # noqa: BLE001 - a launcher bug must not kill the gateway
            log.exception("session of %s failed to start", user)
            self._failed[user] = f"internal error: {err.__class__.__name__}"
        finally:
            self._starting.pop(user, None)
