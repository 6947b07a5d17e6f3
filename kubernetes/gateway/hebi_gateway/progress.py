"""``/gateway/progress``: the logged-in user's session start, streamed as server-sent events.

Each message is the whole list of steps reached so far (Launcher.progress: requested, scheduled,
pulling, pulled, started, ready, failed, from the backend's real state), sent when it changes; an
``end`` event follows ``ready`` or ``failed``, and the starting page then reloads into the session or
its failure. The page's script is served here too (``/gateway/static/progress.js``): the gateway's CSP
allows no inline scripts. Without scripts, the page still refreshes itself.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from aiohttp import web

from hebi_common.errors import UserError
from pod_launcher import Launcher

from .pages import PROGRESS_SCRIPT_PATH, add_script

#: How often the launcher is asked (it answers from its cache) and how often an idle stream says it lives.
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0

SCRIPT = """// hebi: the starting page follows the session's start (/gateway/progress) and reloads at its end.
(function () {
  var list = document.getElementById("hebi-progress");
  if (!list || !window.EventSource) { return; }
  var source = new EventSource("/gateway/progress");
  source.onmessage = function (message) {
    var steps = JSON.parse(message.data).steps;
    list.textContent = "";
    steps.forEach(function (step) {
      var item = document.createElement("li");
      item.className = "step-" + step.step;
      item.textContent = step.message;
      list.appendChild(item);
    });
  };
  source.addEventListener("end", function () { source.close(); window.location.reload(); });
  source.onerror = function () { source.close(); setTimeout(function () { window.location.reload(); }, 2000); };
})();
"""


def install(app: web.Application, login_of: Callable[[web.Request], object | None],
            launcher_of: Callable[[web.Application], Launcher], seconds: Callable[[web.Application], float]) -> None:
    """Add the routes (before the proxy's catch-all). ``login_of`` gives a request's login (with its
    ``identity``) or None, ``launcher_of`` the app's launcher, ``seconds`` how long a stream may last."""

    async def progress(request: web.Request) -> web.StreamResponse:
        login = login_of(request)
        if login is None:
            raise UserError("not logged in", 401)
        user = login.identity.user
        launcher = launcher_of(request.app)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        sent: list | None = None
        quiet_since = time.monotonic()
        deadline = time.monotonic() + seconds(request.app)
        while time.monotonic() < deadline:
            steps = [p.public_json() for p in await asyncio.to_thread(launcher.progress, user)]
            if steps != sent:
                await response.write(f"data: {json.dumps({'steps': steps})}\n\n".encode())
                sent, quiet_since = steps, time.monotonic()
                if steps and steps[-1]["step"] in ("ready", "failed"):
                    await response.write(b"event: end\ndata: {}\n\n")
                    break
            elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                await response.write(b": still starting\n\n")
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
        else:
            await response.write(b"event: end\ndata: {}\n\n")
        await response.write_eof()
        return response

    app.router.add_get("/gateway/progress", progress)
    add_script(app, PROGRESS_SCRIPT_PATH, SCRIPT)
