"""The gateway's culler (docs/admin.md, Culling): each user's last proxied request, kept cheaply, and a
background task that stops the sessions idle longer than ``gateway.idle_timeout`` or older than
``gateway.max_age`` (pod_launcher.culling decides, as ``pod_launcher cull`` does).

A proxied request only sets a number in a dict; the dict is written to the state folder at most every
FLUSH_SECONDS (and when the gateway stops), so the activity survives a restart and the CLI can read it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from hebi_common.config import GatewayConfig
from pod_launcher import culling

from .sessions import SessionTable

log = logging.getLogger("hebi.gateway")
#: Seconds between writes of the activity file: a restart loses at most this much of it.
FLUSH_SECONDS = 5.0


class Activity:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.last = culling.read_activity(state_dir)
        self._dirty = False

    def touch(self, user: str) -> None:
        self.last[user] = time.time()
        self._dirty = True

    async def flush_soon(self) -> None:
        """Write the activity file if it changed: the copy is taken here, in the event loop that changes
        the dict; the writing (with its fsync) happens in a thread."""
        if self._dirty:
            self._dirty = False
            await asyncio.to_thread(self._write, dict(self.last))

    def flush(self) -> None:
        if self._dirty:
            self._dirty = False
            self._write(dict(self.last))

    def _write(self, activity: dict[str, float]) -> None:
        try:
            culling.write_activity(self.state_dir, activity)
        except OSError as err:
            self._dirty = True
            log.error("cannot write the activity file in %s: %s", self.state_dir, err)


class Culler:
    def __init__(self, settings: GatewayConfig, sessions: SessionTable, activity: Activity,
                 forget_upstream: Callable[[str], object], on_cull: Callable[[str], None] | None = None):
        self.settings, self.sessions, self.activity = settings, sessions, activity
        self.forget_upstream, self.on_cull = forget_upstream, on_cull
        #: Users with a culled record to drop once they are back in a session (checked per request: a set).
        self.pending = set(culling.read_culled(activity.state_dir))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.idle_timeout or self.settings.max_age)

    async def run(self) -> None:
        """Flush the activity every FLUSH_SECONDS; cull every cull_interval. Runs until cancelled."""
        next_cull = time.monotonic() + self.settings.cull_interval
        while True:
            await asyncio.sleep(min(FLUSH_SECONDS, self.settings.cull_interval))
            await self.activity.flush_soon()
            # Culls by ``pod_launcher cull`` too (it writes the same file), cheaply: one small read.
            self.pending = set(await asyncio.to_thread(culling.read_culled, self.activity.state_dir))
            if self.enabled and time.monotonic() >= next_cull:
                next_cull = time.monotonic() + self.settings.cull_interval
                try:
                    await self.cull_now()
                except Exception:  # noqa: BLE001 - the culler must outlive one bad round
                    log.exception("culling failed; trying again in %s s", self.settings.cull_interval)

    async def cull_now(self, dry_run: bool = False) -> list[culling.Cull]:
        urls = {user: info.url for user, info in self.sessions._running.items()}
        await self.activity.flush_soon()
        done = await asyncio.to_thread(culling.cull, self.sessions.launcher, self.activity.state_dir,
                                       self.settings.idle_timeout, self.settings.max_age, dry_run)
        for item in [] if dry_run else done:
            self.pending.add(item.user)
            self.sessions.forget(item.user)
            if item.user in urls:
                await self.forget_upstream(urls[item.user])
            if self.on_cull:
                self.on_cull(item.reason)
            log.warning("culled the session of %s: %s for %.0f s (its jobs go on)", item.user,
                        "idle" if item.reason == "idle" else "running", item.seconds)
        return done

    async def notice(self, user: str) -> str:
        """What to tell ``user`` (once) about their last session, when it was culled ("" otherwise).
        The caller shows it on a page: the record then goes."""
        self.pending.discard(user)
        found = await asyncio.to_thread(culling.culled, self.activity.state_dir, user)
        if found is None:
            return ""
        await asyncio.to_thread(culling.forget, self.activity.state_dir, user)
        return culling.message(found)


CULLER = web.AppKey("culler", Culler)


def install(app: web.Application, culler: Culler) -> None:
    app[CULLER] = culler

    async def background(app: web.Application):
        task = asyncio.create_task(culler.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        culler.activity.flush()
    app.cleanup_ctx.append(background)
