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
import logging
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import web
from yarl import URL

from hebi_common.config import HebiConfig
from hebi_common.errors import UserError
from hebi_common.identity import HEADER, RESERVED_HEADERS, Identity, IdentityError, check_username, sign_identity
from hebi_common.proxy import ClientBodyIdle, Upstreams, UpstreamUnavailable, forward
from pod_launcher import SESSION_DOWN_HEADER, Launcher, LauncherError, SessionInfo, make_launcher

from .accounts import Account, UsersFile, password_stamp
from .logins import LoginStore
from .pages import failed_page, login_page, refused_page, starting_page
from .sessions import SessionTable
from .throttle import LoginThrottle

COOKIE = "hebi_session"
log = logging.getLogger("hebi.gateway")
CONFIG, USERS, LOGINS, SESSIONS, UPSTREAMS, THROTTLE = (
    web.AppKey(n, object) for n in ("config", "users", "logins", "sessions", "upstreams", "throttle"))
#: Client headers the session must never see: identity claims, and forwarding claims the gateway sets.
DROPPED_HEADERS = RESERVED_HEADERS + ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                                      "cookie")  # sent on without the gateway's own cookie
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
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
    app = web.Application(client_max_size=64 * 1024, middlewares=[user_errors, same_origin_only])
    app[CONFIG] = config
    app[USERS] = UsersFile(state / "users.yaml")
    app[LOGINS] = LoginStore(state / "logins.json", settings.login_max_age)
    app[SESSIONS] = SessionTable(launcher or make_launcher(config, config_path))
    app[UPSTREAMS] = Upstreams()
    app[THROTTLE] = LoginThrottle(
        free_per_account=settings.login_free_failures, free_per_address=settings.login_free_failures_per_address,
        delay=settings.login_delay, max_delay=settings.login_max_delay, window=settings.login_failure_window,
        entries=settings.login_throttle_entries)
    app.on_response_prepare.append(_add_security_headers)
    app.router.add_get("/gateway/health", health)
    app.router.add_get("/gateway/login", show_login)
    app.router.add_post("/gateway/login", do_login)
    app.router.add_post("/gateway/logout", do_logout)
    app.router.add_route("*", "/{tail:.*}", proxy)

    async def close(app: web.Application) -> None:
        await app[UPSTREAMS].close()
    app.on_cleanup.append(close)
    return app


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


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
    if request.path.startswith("/gateway/"):
        return _html(refused_page(), 403)
    raise UserError("refused: this request came from a page of another origin than this hebi's", 403)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        own = _own_origin(request)
        return own is not None and _normal_origin(origin) == own
    site = request.headers.get("Sec-Fetch-Site")
    return site is None or site == "same-origin"


def _forwarded(request: web.Request, name: str) -> str:
    """A forwarding header of the trusted proxy in front of the gateway ('' when it is not trusted)."""
    if not request.app[CONFIG].gateway.trust_forwarded_proto:
        return ""
    return request.headers.get(name, "").split(",")[-1].strip()


def _own_origin(request: web.Request) -> str | None:
    """The gateway's origin as the browser sees it: scheme, host and port."""
    scheme = _forwarded(request, "X-Forwarded-Proto") or request.scheme
    return _normal_origin(f"{scheme}://{_forwarded(request, 'X-Forwarded-Host') or request.host}")


def _normal_origin(value: str) -> str | None:
    try:
        url = URL(value.strip())
        return f"{url.scheme.lower()}://{url.host.lower()}:{url.port}" if url.scheme and url.host else None
    except (ValueError, TypeError):
        return None


def _client_address(request: web.Request) -> str:
    return _forwarded(request, "X-Forwarded-For") or request.remote or "?"


def _is_https(request: web.Request) -> bool:
    config: HebiConfig = request.app[CONFIG]
    if config.gateway.cookie_secure == "always":
        return True
    if config.gateway.cookie_secure == "never":
        return False
    return request.secure or _forwarded(request, "X-Forwarded-Proto").lower() == "https"


def _wants_html(request: web.Request) -> bool:
    """A page load (to answer with pages and redirects) rather than an API call (to answer with JSON)."""
    if request.method != "GET":
        return False
    if "text/html" in request.headers.get("Accept", ""):
        return True
    return not request.path.startswith(("/api/", "/data/"))


def _safe_next(value: str | None) -> str:
    """Where to go after logging in: only a path of this site, never a URL a browser reads as another host.

    Browsers drop tabs and newlines inside URLs, strip leading blanks and read '\\' as '/', so
    '/<TAB>/evil.example' is '//evil.example' to them. The value is judged decoded (until decoding
    changes nothing more) and refused whole when it holds any blank, control character or backslash,
    or does not start with exactly one '/' (a space further on is only a space)."""
    value = value or ""
    decoded = value
    for _ in range(4):
        decoded, previous = unquote(decoded), decoded
        if decoded == previous:
            break
    if (not decoded.startswith("/") or decoded[1:2].isspace() or decoded.startswith(("//", "/gateway/"))
            or any(ch == "\\" or unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in decoded)):
        return "/"
    return quote(value, safe="/?&=#%:@!$'()*+,;~")


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _logged_in(request: web.Request) -> Account | None:
    """The account of the request's login cookie; None when there is none, or its password changed since."""
    login = request.app[LOGINS].find(request.cookies.get(COOKIE))
    account = request.app[USERS].get(login.user) if login else None
    return account if account and login.stamp == password_stamp(account) else None


async def show_login(request: web.Request) -> web.Response:
    next_path = _safe_next(request.query.get("next"))
    if _logged_in(request):
        raise web.HTTPSeeOther(next_path)
    return _html(login_page(next_path))


async def do_login(request: web.Request) -> web.Response:
    try:
        # The form is small (client_max_size), so its whole arrival is bounded rather than each pause.
        async with asyncio.timeout(request.app[CONFIG].gateway.body_idle_timeout):
            form = await request.post()
    except TimeoutError:
        return _body_idle(request)
    name = str(form.get("username", "")).strip()[:40]
    password = str(form.get("password", ""))
    next_path = _safe_next(str(form.get("next", "/")))
    throttle: LoginThrottle = request.app[THROTTLE]
    address = _client_address(request)
    wait = throttle.attempt(name, address)
    if wait:
        log.warning("login for %r from %s refused: throttled for %d s more", name, address, wait)
        response = _html(login_page(next_path, f"Too many failed logins. Try again in {wait} seconds.", name), 429)
        response.headers["Retry-After"] = str(wait)
        return response
    account = None
    try:
        check_username(name)
        account = await asyncio.to_thread(request.app[USERS].authenticate, name, password)
    except IdentityError:
        pass
    if account is None:
        locked = throttle.retry_after(name, address)
        log.warning("failed login for %r from %s%s", name, address, f"; locked for {locked} s" if locked else "")
        return _html(login_page(next_path, "Wrong user name or password.", name), status=401)
    throttle.succeeded(name, address)
    token = request.app[LOGINS].create(account.name, password_stamp(account))
    log.info("%s logged in from %s", account.name, address)
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


def _body_idle(request: web.Request) -> web.Response:
    log.warning("%s %s from %s: the request body stopped coming; connection closed", request.method,
                request.path, _client_address(request))
    response = web.json_response({"error": "the request body stopped coming; send it again"}, status=408)
    response.force_close()
    return response


async def proxy(request: web.Request) -> web.StreamResponse:
    account = _logged_in(request)
    if account is None:
        if _wants_html(request):
            raise web.HTTPSeeOther("/gateway/login?next=" + quote(request.rel_url.raw_path_qs, safe="/"))
        raise UserError("not logged in", 401)

    sessions: SessionTable = request.app[SESSIONS]
    identity = account.identity()
    timeout = request.app[CONFIG].launcher.start_timeout + 5
    try:
        info = await sessions.find_or_start(identity, wait=not _wants_html(request), timeout=timeout)
    except (TimeoutError, LauncherError) as err:
        detail = str(err).splitlines()[0] if str(err) else "the session did not start in time"
        raise UserError(f"your session could not start: {detail}", 503) from None
    if info is None:
        failure = sessions.failure(account.name)
        return _html(failed_page(account.name, failure), 503) if failure else _html(starting_page(account.name))

    try:
        response = await _forward(request, identity, info)
    except UpstreamUnavailable:
        # Nothing of the request reached the session. A bodiless request waits for the restart and goes
        # again; one with a body (already being read) cannot, so its sender is told to retry.
        await _restart_if_failed(request, identity, info.url)
        if _wants_html(request):
            return _html(starting_page(account.name, "Your session had stopped; hebi is starting it again."))
        if request.body_exists:
            raise UserError("your session stopped and was restarted; retry", 503) from None
        try:
            info = await sessions.find_or_start(identity, wait=True, timeout=timeout)
            response = await _forward(request, identity, info)
        except (TimeoutError, LauncherError, UpstreamUnavailable):
            raise UserError("your session stopped and could not be restarted; retry in a moment", 503) from None
    except ClientBodyIdle:
        return _body_idle(request)
    if response.status in (502, 504) and SESSION_DOWN_HEADER in response.headers:
        # The session's router answered for a service of the session that stopped answering: its body
        # (already sent) tells the user to retry, and the session is restarted if the launcher finds it broken.
        await _restart_if_failed(request, identity, info.url)
    return response


async def _forward(request: web.Request, identity: Identity, info: SessionInfo) -> web.StreamResponse:
    add = {HEADER: sign_identity(identity, info.secret)}
    cookies = _without_gateway_cookie(request.headers.get("Cookie", ""))
    if cookies:
        add["Cookie"] = cookies
    return await forward(request, request.app[UPSTREAMS], info.url, drop_headers=DROPPED_HEADERS,
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
    await sessions.find_or_start(identity, wait=False, timeout=0)
