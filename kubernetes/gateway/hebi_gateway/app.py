"""The gateway's app factory: login, logout, and the authenticating proxy to each user's session.

Every request other than the gateway's own pages (under /gateway/) must carry a valid login cookie;
the gateway then finds or starts that user's session and streams the request to it, with the client's
identity headers and the gateway's cookie removed and a signed identity header added.

Every answer the browser gets passes through here, so the web-safety rules live here once
(docs/security.md, "Gateway"): state changes only from the gateway's own origin, redirects only to a
path of this site, throttled logins, and the security headers on every response.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from hebi_common.config import HebiConfig
from hebi_common.errors import UserError
from hebi_common.identity import HEADER, RESERVED_HEADERS, Identity, sign_identity
from hebi_common.proxy import ClientBodyIdle, Upstreams, UpstreamUnavailable, forward
from pod_launcher import SESSION_DOWN_HEADER, Launcher, LauncherError, SessionInfo, make_launcher

from . import admin_api, culler, operations, progress
from .accounts import UsersFile
from .auth import Authenticator, make_authenticator
from .auth.web import CONFIG, COOKIE
from .auth.web import body_idle as _body_idle
from .auth.web import client_address as _client_address
from .auth.web import html as _html
from .auth.web import normal_origin as _normal_origin
from .auth.web import own_origin as _own_origin
from .culler import CULLER, Activity, Culler
from .front import FRONT_HEADERS, ORIGINAL_METHOD, PEER_HEADER, ROUTE_PATH, UPSTREAM_HEADER, Front, nginx_upstream
from .limits import StartLimits, StartRefused
from .logins import Login, LoginStore
from .pages import LOGIN_SCRIPT, LOGIN_SCRIPT_PATH, add_script, busy_page, culled_page, failed_page, refused_page, starting_page
from .profiles import install_picker, picker_for
from .sessions import SessionTable
from .throttle import LoginThrottle

log = logging.getLogger("hebi.gateway")
USERS, LOGINS, SESSIONS, UPSTREAMS, THROTTLE, AUTH, DROP, FRONT = (
    web.AppKey(n, object) for n in ("users", "logins", "sessions", "upstreams", "throttle", "auth", "drop", "front"))
#: Client headers the session must never see: identity claims, forwarding claims the gateway sets, and
#: the nginx front's own (its secret must not reach a session's code).
DROPPED_HEADERS = RESERVED_HEADERS + ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                                      "cookie") + FRONT_HEADERS  # cookies go on without the gateway's own
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Seconds between two readings of what the nginx front carried into the metrics (Front.collect).
FRONT_METRICS_INTERVAL = 2.0
#: The built web app loads only its own scripts (no inline ones), but h5web's array maths (ndarray-ops)
#: compiles functions with Function(), which needs 'unsafe-eval'; h5web and React set styles inline, and
#: images and downloads are made from blobs. No page of hebi may be framed (clickjacking).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
                           "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def create_app(config: HebiConfig, launcher: Launcher | None = None, config_path: str | None = None) -> web.Application:
    state = Path(config.gateway.state_dir)
    settings = config.gateway
    # client_max_size limits only the login form; proxied bodies stream.
    middlewares = [user_errors, same_origin_only]
    if settings.front.enabled:
        middlewares.insert(0, through_front)
    app = web.Application(client_max_size=64 * 1024, middlewares=middlewares)
    app[CONFIG] = config
    app[USERS] = UsersFile(state / "users.yaml")
    app[LOGINS] = LoginStore(state / "logins.json", settings.login_max_age)
    app[SESSIONS] = SessionTable(launcher or make_launcher(config, config_path))
    app[UPSTREAMS] = Upstreams()
    app[THROTTLE] = LoginThrottle(
        free_per_account=settings.login_free_failures, free_per_address=settings.login_free_failures_per_address,
        delay=settings.login_delay, max_delay=settings.login_max_delay, window=settings.login_failure_window,
        entries=settings.login_throttle_entries)
    # The one login seam: the configured method adds its routes (/gateway/login, ...) and says who is in.
    auth = app[AUTH] = make_authenticator(config, app[LOGINS], app[USERS], app[THROTTLE])
    app[DROP] = DROPPED_HEADERS + auth.dropped_headers
    if settings.front.enabled:
        # nginx carries the proxied requests (hebi_gateway.front); they reach this process only when it
        # must answer them itself. The login headers key its cache of route answers.
        app[FRONT] = Front(config, state, app[DROP], ("authorization",) + auth.dropped_headers, SECURITY_HEADERS, COOKIE,
                           lambda: {nginx_upstream(info.url) for info in app[SESSIONS].running()})
        app.router.add_get(ROUTE_PATH, route)
        app.cleanup_ctx.append(_front_lifetime)
    app.on_response_prepare.append(_add_security_headers)
    # /gateway/health and /gateway/metrics (docs/admin.md, Operations), before the proxy takes every path.
    operations.install(app, settings, app[SESSIONS], operations.admin_check(auth))
    # Limits and culling (docs/admin.md), counted in the metrics.
    metrics = app[operations.METRICS]
    app[SESSIONS].admit = StartLimits(settings, lambda limit: metrics.refused_starts.labels(limit).inc()).admit
    culler.install(app, Culler(settings, app[SESSIONS], Activity(state), app[UPSTREAMS].forget,
                               lambda reason: metrics.culls.labels(reason).inc()))
    auth.add_routes(app)
    # /gateway/api/: sessions, local accounts and scoped tokens (docs/admin.md, "Admin API and tokens").
    admin_api.install(app, auth, app[SESSIONS], app[USERS], app[LOGINS], app[UPSTREAMS].forget)
    # /gateway/progress: the start's real steps for the starting page (Launcher.progress).
    progress.install(app, _logged_in, lambda app: app[SESSIONS].launcher,
                     lambda app: app[CONFIG].launcher.start_timeout + 30)
    # /gateway/start: the profile picker's form (docs/admin.md, "Session profiles").
    install_picker(app, _logged_in, lambda app: app[SESSIONS])
    add_script(app, LOGIN_SCRIPT_PATH, LOGIN_SCRIPT)
    app.router.add_route("*", "/{tail:.*}", proxy)

    async def close(app: web.Application) -> None:
        await app[UPSTREAMS].close()
        # The launcher's own holdings (the kubernetes one's watch threads), so the process can end.
        await asyncio.to_thread(app[SESSIONS].launcher.close)
    app.on_cleanup.append(close)
    return app


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        if name == "Content-Security-Policy" and name in response.headers:
            # The session's own policy stays beside ours: both are enforced, so it can only narrow what the
            # page may do (a notebook's HTML, GET /api/jobs/<id>/notebook, is sandboxed this way).
            response.headers.add(name, value)
        else:
            response.headers[name] = value


@web.middleware
async def user_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserError as err:
        return web.json_response(err.body(), status=err.status)


@web.middleware
async def same_origin_only(request: web.Request, handler) -> web.StreamResponse:
    """Refuse a state-changing request that a page of another origin made the browser send (CSRF).

    Browsers send ``Origin`` with every request that is not a GET or HEAD, and ``Sec-Fetch-Site`` with
    every request; a request with neither comes from a program (a script, curl), which no other site can
    make act with the user's cookie, so it passes. The rule is documented in docs/security.md."""
    if request.method in SAFE_METHODS or _same_origin(request):
        return await handler(request)
    log.warning("refused %s %s from origin %r (site %r), %s", request.method, request.path,
                request.headers.get("Origin", "")[:100], request.headers.get("Sec-Fetch-Site", ""),
                _client_address(request))
    if request.path.startswith("/gateway/") and not request.path.startswith("/gateway/api/"):
        return _html(refused_page(), 403)
    raise UserError("refused: this request came from a page of another origin than this hebi's", 403)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        own = _own_origin(request)
        return own is not None and _normal_origin(origin) == own
    site = request.headers.get("Sec-Fetch-Site")
    return site is None or site == "same-origin"


@web.middleware
async def through_front(request: web.Request, handler) -> web.StreamResponse:
    """A request the nginx front sent: its client is the one the front saw, not the front itself."""
    front: Front = request.app[FRONT]
    if front.from_front(request) and request.headers.get(PEER_HEADER):
        request = request.clone(remote=request.headers[PEER_HEADER])
    return await handler(request)


async def route(request: web.Request) -> web.Response:
    """The nginx front's question about one request: 200 with the running session it goes to and the
    identity to send, or 401 for every other case, which the front then hands to this gateway whole."""
    front: Front = request.app[FRONT]
    if not front.is_route_check(request):
        raise UserError("no such page", 404)
    try:
        login = _logged_in(request)
    except (web.HTTPException, UserError):
        return web.Response(status=401)  # the login method's own refusal: the gateway answers it, page and all
    method = request.headers.get(ORIGINAL_METHOD, "GET").upper()
    if login is None or (method not in SAFE_METHODS and not _same_origin(request)):
        return web.Response(status=401)
    user = login.identity.user
    info = request.app[SESSIONS].cached(user)
    if info is None or user in request.app[CULLER].pending:
        return web.Response(status=401)
    request.app[CULLER].activity.touch(user)
    address = nginx_upstream(info.url)
    if address not in front.pools:
        front.refresh_pools()  # a session new to the front: a keep-alive pool for it
    return web.Response(status=200, headers={UPSTREAM_HEADER: address,
                                             HEADER: sign_identity(login.identity, info.secret)})


async def _front_lifetime(app: web.Application):
    """The gateway stops when its front does, so that whatever supervises it restarts both; and the
    front stops with the gateway (serve_app starts it, once it knows the gateway's own port)."""
    front: Front = app[FRONT]

    async def watch() -> None:
        while front.process is None:
            await asyncio.sleep(0.5)
        code = await asyncio.to_thread(front.process.wait)
        log.error("the nginx front ended (exit %s): the gateway stops too", code)
        os.kill(os.getpid(), signal.SIGTERM)
    async def collect() -> None:
        metrics = app[operations.METRICS]
        while True:
            await asyncio.sleep(FRONT_METRICS_INTERVAL)
            await asyncio.to_thread(front.collect, metrics.proxied)
    tasks = [asyncio.create_task(watch()), asyncio.create_task(collect())]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.to_thread(front.stop)


def _wants_html(request: web.Request) -> bool:
    """A page load (to answer with pages and redirects) rather than an API call (to answer with JSON)."""
    if request.method != "GET":
        return False
    if "text/html" in request.headers.get("Accept", ""):
        return True
    return not request.path.startswith(("/api/", "/data/"))


def _logged_in(request: web.Request) -> Login | None:
    """The login of the request, as the configured login method sees it (None: nobody)."""
    auth: Authenticator = request.app[AUTH]
    return auth.current(request)


def _without_gateway_cookie(cookie_header: str) -> str:
    kept = [part for part in cookie_header.split(";") if part.strip().split("=", 1)[0].strip() != COOKIE]
    return ";".join(kept).strip()


async def proxy(request: web.Request) -> web.StreamResponse:
    login = _logged_in(request)
    if login is None:
        if _wants_html(request):
            raise web.HTTPSeeOther("/gateway/login?next=" + quote(request.rel_url.raw_path_qs, safe="/"))
        raise UserError("not logged in", 401)

    sessions: SessionTable = request.app[SESSIONS]
    identity = login.identity
    timeout = request.app[CONFIG].launcher.start_timeout + 5
    if _wants_html(request):
        # More than one kind of session offered: the user picks one before the start.
        picker = await picker_for(request, sessions, identity.user)
        if picker is not None:
            return picker
    try:
        info = await sessions.find_or_start(identity, wait=not _wants_html(request), timeout=timeout)
    except StartRefused as err:
        return _start_refused(request, err)
    except (TimeoutError, LauncherError) as err:
        detail = str(err).splitlines()[0] if str(err) else "the session did not start in time"
        raise UserError(f"your session could not start: {detail}", 503) from None
    if info is None:
        failure = sessions.failure(identity.user)
        if failure:
            return _html(failed_page(identity.user, failure), 503)
        return _html(starting_page(identity.user, await request.app[CULLER].notice(identity.user)))
    request.app[CULLER].activity.touch(identity.user)
    if identity.user in request.app[CULLER].pending and _wants_html(request):
        # Culled, and started again by an API call (the open web app's): the first page load says so.
        notice = await request.app[CULLER].notice(identity.user)
        if notice:
            return _html(culled_page(notice, request.rel_url.raw_path_qs))

    try:
        response = await _forward(request, identity, info)
    except UpstreamUnavailable:
        # Nothing of the request reached the session. A bodiless request waits for the restart and goes
        # again; one with a body (already being read) cannot, so its sender is told to retry.
        await _restart_if_failed(request, identity, info.url)
        if _wants_html(request):
            culled = await request.app[CULLER].notice(identity.user)
            return _html(starting_page(identity.user, culled or "Your session had stopped; hebi is starting it again."))
        if request.body_exists:
            raise UserError("your session stopped and was restarted; retry", 503) from None
        try:
            info = await sessions.find_or_start(identity, wait=True, timeout=timeout)
            response = await _forward(request, identity, info)
        except StartRefused as err:
            return _start_refused(request, err)
        except (TimeoutError, LauncherError, UpstreamUnavailable):
            raise UserError("your session stopped and could not be restarted; retry in a moment", 503) from None
    except ClientBodyIdle:
        return _body_idle(request)
    if response.status in (502, 504) and SESSION_DOWN_HEADER in response.headers:
        # The session's router answered for a service of the session that stopped answering: its body
        # (already sent) tells the user to retry, and the session is restarted if the launcher finds it broken.
        await _restart_if_failed(request, identity, info.url)
    return response


def _start_refused(request: web.Request, err: StartRefused) -> web.Response:
    """A limit holds the start back: a page that retries by itself for a browser, else JSON; both with Retry-After."""
    if _wants_html(request):
        response = _html(busy_page(err.message, err.retry_after), err.status)
    else:
        response = web.json_response(err.body(), status=err.status)
    response.headers["Retry-After"] = str(err.retry_after)
    return response


async def _forward(request: web.Request, identity: Identity, info: SessionInfo) -> web.StreamResponse:
    add = {HEADER: sign_identity(identity, info.secret)}
    cookies = _without_gateway_cookie(request.headers.get("Cookie", ""))
    if cookies:
        add["Cookie"] = cookies
    return await forward(request, request.app[UPSTREAMS], info.url, drop_headers=request.app[DROP],
                         add_headers=add, body_idle_timeout=request.app[CONFIG].gateway.body_idle_timeout)


async def _restart_if_failed(request: web.Request, identity: Identity, url: str) -> None:
    """When the launcher finds the session stopped or broken, forget it and start it again."""
    sessions: SessionTable = request.app[SESSIONS]
    status = await asyncio.to_thread(sessions.launcher.status, identity.user)
    if status.state == "running":
        return
    log.warning("session of %s at %s is %s (%s); restarting it", identity.user, url, status.state, status.detail)
    sessions.forget(identity.user)
    await request.app[UPSTREAMS].forget(url)
    with contextlib.suppress(StartRefused):  # a limit holds it back: the user's next request is told
        await sessions.find_or_start(identity, wait=False, timeout=0)
