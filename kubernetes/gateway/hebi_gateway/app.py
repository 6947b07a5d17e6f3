"""The gateway's app factory: login, logout, and the authenticating proxy to each user's session.

Every request other than the gateway's own pages (under /gateway/) must carry a valid login cookie;
the gateway then finds or starts that user's session and streams the request to it, with the client's
identity headers and the gateway's cookie removed and a signed identity header added.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from hebi_common.config import HebiConfig
from hebi_common.identity import HEADER, RESERVED_HEADERS, IdentityError, check_username, sign_identity
from hebi_common.proxy import Upstreams, UpstreamUnavailable, forward
from pod_launcher import Launcher, LauncherError, make_launcher

from .accounts import UsersFile
from .logins import LoginStore
from .pages import failed_page, login_page, starting_page
from .sessions import SessionTable

COOKIE = "hebi_session"
log = logging.getLogger("hebi.gateway")
CONFIG, USERS, LOGINS, SESSIONS, UPSTREAMS = (web.AppKey(n, object) for n in
                                              ("config", "users", "logins", "sessions", "upstreams"))
#: Client headers the session must never see: identity claims, and forwarding claims the gateway sets.
DROPPED_HEADERS = RESERVED_HEADERS + ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded")


def create_app(config: HebiConfig, launcher: Launcher | None = None, config_path: str | None = None) -> web.Application:
    state = Path(config.gateway.state_dir)
    app = web.Application(client_max_size=64 * 1024)  # limits only the login form; proxied bodies stream
    app[CONFIG] = config
    app[USERS] = UsersFile(state / "users.yaml")
    app[LOGINS] = LoginStore(state / "logins.json", config.gateway.login_max_age)
    app[SESSIONS] = SessionTable(launcher or make_launcher(config, config_path))
    app[UPSTREAMS] = Upstreams()
    app.router.add_get("/gateway/health", health)
    app.router.add_get("/gateway/login", show_login)
    app.router.add_post("/gateway/login", do_login)
    app.router.add_post("/gateway/logout", do_logout)
    app.router.add_route("*", "/{tail:.*}", proxy)

    async def close(app: web.Application) -> None:
        await app[UPSTREAMS].close()
    app.on_cleanup.append(close)
    return app


def _is_https(request: web.Request) -> bool:
    config: HebiConfig = request.app[CONFIG]
    if config.gateway.cookie_secure == "always":
        return True
    if config.gateway.cookie_secure == "never":
        return False
    forwarded = request.headers.get("X-Forwarded-Proto", "") if config.gateway.trust_forwarded_proto else ""
    return request.secure or forwarded.lower() == "https"


def _wants_html(request: web.Request) -> bool:
    """A page load (to answer with pages and redirects) rather than an API call (to answer with JSON)."""
    if request.method != "GET":
        return False
    if "text/html" in request.headers.get("Accept", ""):
        return True
    return not request.path.startswith(("/api/", "/data/"))


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an absolute URL or '//host' (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value if not value.startswith("/gateway/") else "/"


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def show_login(request: web.Request) -> web.Response:
    next_path = _safe_next(request.query.get("next"))
    if request.app[LOGINS].user_for(request.cookies.get(COOKIE)):
        raise web.HTTPSeeOther(next_path)
    return _html(login_page(next_path))


async def do_login(request: web.Request) -> web.Response:
    form = await request.post()
    name = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_path = _safe_next(str(form.get("next", "/")))
    account = None
    try:
        check_username(name)
        account = await asyncio.to_thread(request.app[USERS].authenticate, name, password)
    except IdentityError:
        pass
    if account is None:
        log.warning("failed login for %r from %s", name[:40], request.remote)
        await asyncio.sleep(0.5)  # slows guessing without holding a thread
        return _html(login_page(next_path, "Wrong user name or password.", name[:40]), status=401)
    token = request.app[LOGINS].create(account.name)
    log.info("%s logged in from %s", account.name, request.remote)
    response = web.HTTPSeeOther(next_path)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=_is_https(request), path="/",
                        max_age=request.app[CONFIG].gateway.login_max_age)
    raise response


async def do_logout(request: web.Request) -> web.Response:
    request.app[LOGINS].end(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/gateway/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def _without_gateway_cookie(cookie_header: str) -> str:
    kept = [part for part in cookie_header.split(";") if part.strip().split("=", 1)[0].strip() != COOKIE]
    return ";".join(kept).strip()


async def proxy(request: web.Request) -> web.StreamResponse:
    user = request.app[LOGINS].user_for(request.cookies.get(COOKIE))
    account = request.app[USERS].get(user) if user else None
    if account is None:
        if _wants_html(request):
            raise web.HTTPSeeOther("/gateway/login?next=" + quote(request.rel_url.raw_path_qs, safe="/"))
        return web.json_response({"error": "not logged in"}, status=401)

    sessions: SessionTable = request.app[SESSIONS]
    identity = account.identity()
    timeout = request.app[CONFIG].launcher.local.start_timeout + 5
    try:
        info = await sessions.find_or_start(identity, wait=not _wants_html(request), timeout=timeout)
    except (TimeoutError, LauncherError) as err:
        detail = str(err).splitlines()[0] if str(err) else "the session did not start in time"
        return web.json_response({"error": f"your session could not start: {detail}"}, status=503)
    if info is None:
        failure = sessions.failure(account.name)
        return _html(failed_page(account.name, failure), 503) if failure else _html(starting_page(account.name))

    add = {HEADER: sign_identity(identity, info.secret)}
    cookies = _without_gateway_cookie(request.headers.get("Cookie", ""))
    drop = DROPPED_HEADERS + ("cookie",)
    if cookies:
        add["Cookie"] = cookies
    try:
        return await forward(request, request.app[UPSTREAMS], info.url, drop_headers=drop, add_headers=add)
    except UpstreamUnavailable:
        log.warning("session of %s at %s is not answering", account.name, info.url)
        sessions.forget(account.name)
        await request.app[UPSTREAMS].forget(info.url)
        return web.json_response({"error": "your session is not answering; reload to restart it"}, status=502)
