"""Limits on session starts (docs/admin.md, Limits): starts under way at once, and sessions in all.

A user has at most one session: SessionTable merges a user's second start into the one under way, and
a user whose session runs is sent to it, so neither limit ever refuses a user their own running session.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hebi_common.config import GatewayConfig
from hebi_common.errors import UserError
from pod_launcher import Launcher

log = logging.getLogger("hebi.gateway")


class StartRefused(UserError):
    """A start the limits do not allow now; ``limit`` names which (``concurrent_starts``, ``max_sessions``)."""

    def __init__(self, message: str, status: int, limit: str, retry_after: int):
        super().__init__(message, status, limit=limit, retry_after=retry_after)
        self.limit = limit
        self.retry_after = retry_after


class StartLimits:
    def __init__(self, settings: GatewayConfig, on_refused: Callable[[str], None] | None = None):
        self.concurrent = settings.concurrent_start_limit
        self.max_sessions = settings.max_sessions
        self.retry_after = settings.start_retry_after
        self.on_refused = on_refused

    async def admit(self, user: str, starting: set[str], launcher: Launcher) -> None:
        """Let ``user``'s start begin, or raise StartRefused. ``starting``: the users whose starts are under way."""
        if self.concurrent and len(starting) >= self.concurrent:
            self._refused("concurrent_starts", user, f"{len(starting)} starts under way")
            raise StartRefused(f"hebi is starting {len(starting)} other sessions; yours starts when one is done. "
                               f"Retry in {self.retry_after} s", 429, "concurrent_starts", self.retry_after)
        if self.max_sessions:
            # The launcher's own list: it counts sessions started before a gateway restart, or by the CLI.
            sessions = await asyncio.to_thread(launcher.list)
            users = {s.user for s in sessions if s.state in ("running", "starting")} | starting
            users.discard(user)
            if len(users) >= self.max_sessions:
                self._refused("max_sessions", user, f"{len(users)} sessions of {self.max_sessions}")
                raise StartRefused(f"hebi runs as many sessions as it may ({self.max_sessions}); yours can start "
                                   "when another user's ends. Retry later, or ask your facility's hebi admin",
                                   503, "max_sessions", max(self.retry_after, 60))

    def _refused(self, limit: str, user: str, detail: str) -> None:
        log.warning("session start of %s refused by gateway.%s (%s)", user,
                    "concurrent_start_limit" if limit == "concurrent_starts" else limit, detail)
        if self.on_refused:
            self.on_refused(limit)
