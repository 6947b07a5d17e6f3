"""The profile picker: when the launcher offers more than one kind of session (Launcher.profiles, e.g.
standard, large memory, GPU), a browser's first request shows a gateway page to choose one, with the
user's last choice (Launcher.last_profile) pre-selected, else the admin's default; its form posts to
``/gateway/start``, which starts the session with that profile and goes on to the page first asked for.

API calls (and a launcher with one profile or none) never see the page: their start takes no profile, so
the launcher uses the user's last choice, else the default (KubeSpawner's ``profile_list`` is the model).
The form is a state change: the gateway's same-origin rule (app.same_origin_only) guards it like any POST.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from html import escape

from aiohttp import web

from hebi_common.errors import UserError
from pod_launcher import Launcher, Profile

from .auth.web import html, safe_next
from .pages import _STYLE
from .sessions import SessionTable

START_PATH = "/gateway/start"


def picker_page(user: str, profiles: list[Profile], chosen: str | None, next_path: str, detail: str = "") -> str:
    """The choice, one radio button per profile; ``chosen`` (else the default, else the first) is checked."""
    names = [p.name for p in profiles]
    checked = chosen if chosen in names else next((p.name for p in profiles if p.default), names[0])
    options = "".join(
        f'<p><label><input type="radio" name="profile" value="{escape(p.name)}"'
        f'{" checked" if p.name == checked else ""}> <strong>{escape(p.display_name)}</strong>'
        + (f' <span class="sub">{escape(p.description)}</span>' if p.description else "") + "</label></p>"
        for p in profiles)
    note = f'<p class="error" role="alert">{escape(detail)}</p>' if detail else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>hebi: choose your session</title><style>{_STYLE}</style></head>
<body><main><h1>Choose your session</h1>
<p class="sub">{escape(user)}, which kind of session should hebi start for you?</p>{note}
<form method="post" action="{START_PATH}"><fieldset><legend>Session profile</legend>{options}</fieldset>
<input type="hidden" name="next" value="{escape(next_path)}">
<button type="submit">Start my session</button></form></main></body></html>"""


async def picker_for(request: web.Request, sessions: SessionTable, user: str) -> web.Response | None:
    """The picker page for a browser's page load that would start a session, or None: one profile or
    none, a session running or starting already."""
    if sessions.cached(user) is not None or sessions.starting(user):
        return None
    launcher: Launcher = sessions.launcher
    offered = await asyncio.to_thread(launcher.profiles)
    if len(offered) < 2:
        return None
    status = await asyncio.to_thread(launcher.status, user)
    if status.state in ("running", "starting"):
        return None
    chosen = await asyncio.to_thread(launcher.last_profile, user)
    failed = sessions.failure(user)
    detail = f"Your last start failed: {failed}" if failed else ""
    return html(picker_page(user, offered, chosen, safe_next(request.rel_url.raw_path_qs), detail))


def install_picker(app: web.Application, login_of: Callable[[web.Request], object | None],
            sessions_of: Callable[[web.Application], SessionTable]) -> None:
    """Add ``POST /gateway/start`` (before the proxy's catch-all route)."""

    async def start(request: web.Request) -> web.Response:
        login = login_of(request)
        if login is None:
            raise web.HTTPSeeOther("/gateway/login")
        form = await request.post()
        sessions = sessions_of(request.app)
        profile = str(form.get("profile", ""))
        offered = await asyncio.to_thread(sessions.launcher.profiles)
        if profile not in {p.name for p in offered}:
            raise UserError(f"no session profile {profile[:64]!r}; choose one of "
                            f"{', '.join(p.name for p in offered) or 'none (this hebi has no profiles)'}", 400)
        await sessions.find_or_start(login.identity, wait=False, timeout=0, profile=profile)
        raise web.HTTPSeeOther(safe_next(str(form.get("next", "/"))))

    app.router.add_post(START_PATH, start)
