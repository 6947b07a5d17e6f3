"""The gateway's HTTP API under /gateway/api/: sessions, local accounts and scoped tokens (JupyterHub's
REST API, in small). Answers are JSON; bad input is a UserError (4xx) and changes nothing.

Who asks is either a login (the browser's cookie, under the gateway's CSRF rule) or a token
(``Authorization: Bearer <token>`` or ``token <token>``, tokens.py). A login of an admin may do
everything; any other login, and a token, only what its scopes allow, and a scope reaches other users
than its owner only for an admin's token. So a user's token can never stop another user's session.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from hebi_common.errors import UserError
from hebi_common.identity import IdentityError, check_username
from pod_launcher import SessionInfo

from .accounts import AccountError, UsersFile, make_root_folders
from .auth import Authenticator
from .auth.web import CONFIG
from .logins import LoginStore
from .sessions import SessionTable
from .tokens import SCOPES, Token, TokenStore, is_admin

log = logging.getLogger("hebi.gateway.admin")
TOKENS = web.AppKey("tokens", TokenStore)
ADMIN = web.AppKey("admin_api", object)
#: What ``self`` allows on the owner's own things.
SELF_SCOPES = frozenset({"sessions:read", "sessions:stop"})


@dataclass(frozen=True)
class Caller:
    user: str
    admin: bool
    scopes: frozenset[str]
    token: Token | None = None

    def may(self, scope: str, target: str | None) -> bool:
        """Whether the caller may do ``scope`` to ``target``'s things (None: every user's)."""
        if target == self.user and "self" in self.scopes and scope in SELF_SCOPES:
            return True
        return scope in self.scopes and (self.admin or target == self.user)

    def json(self) -> dict:
        return {"user": self.user, "admin": self.admin, "scopes": sorted(self.scopes, key=SCOPES.index),
                "via": "token" if self.token else "login", "token": self.token.id if self.token else None}


class AdminApi:
    def __init__(self, auth: Authenticator, sessions: SessionTable, users: UsersFile, logins: LoginStore,
                 forget_upstream: Callable[[str], object]):
        self.auth = auth
        self.sessions = sessions
        self.users = users
        self.logins = logins
        self.forget_upstream = forget_upstream


def install(app: web.Application, auth: Authenticator, sessions: SessionTable, users: UsersFile, logins: LoginStore,
            forget_upstream: Callable[[str], object]) -> None:
    """Add the /gateway/api/ routes (before the proxy's catch-all). ``forget_upstream(url)``: an awaitable
    that drops the proxy's connections to a stopped session."""
    app[TOKENS] = TokenStore(Path(app[CONFIG].gateway.state_dir) / "tokens.json")
    app[ADMIN] = AdminApi(auth, sessions, users, logins, forget_upstream)
    app.router.add_get("/gateway/api/me", me)
    app.router.add_get("/gateway/api/sessions", list_sessions)
    app.router.add_delete("/gateway/api/sessions/{user}", stop_session)
    app.router.add_post("/gateway/api/cull", cull)
    app.router.add_get("/gateway/api/users", list_users)
    app.router.add_post("/gateway/api/users", add_user)
    app.router.add_delete("/gateway/api/users/{user}", remove_user)
    app.router.add_get("/gateway/api/tokens", list_tokens)
    app.router.add_post("/gateway/api/tokens", create_token)
    app.router.add_delete("/gateway/api/tokens/{id}", revoke_token)
    # Never proxied to a session: an unknown API path is the gateway's own 404.
    app.router.add_route("*", "/gateway/api/{tail:.*}", not_found)


def _culler(app: web.Application):
    """The gateway's culler (culler.py) when this gateway has one, else None."""
    try:
        from .culler import CULLER
    except ImportError:
        return None
    return app.get(CULLER)


def last_activity(app: web.Application, user: str) -> float | None:
    """When ``user``'s session last had traffic through the proxy (seconds since the epoch), from the
    culler's record of proxied requests; None when this gateway keeps none."""
    culler = _culler(app)
    value = culler.activity.last.get(user) if culler is not None else None
    return float(value) if isinstance(value, int | float) else None


def caller(request: web.Request) -> Caller:
    """Who asks: the token of the Authorization header, else the login; neither is a 401."""
    api: AdminApi = request.app[ADMIN]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            raise UserError("Authorization: use 'Bearer <token>' (or 'token <token>')", 401)
        token = request.app[TOKENS].find(secret.strip())
        if token is None:
            raise UserError("this token is not valid: unknown, revoked or expired", 401)
        return Caller(token.user, token.admin, frozenset(token.scopes), token)
    try:
        login = api.auth.current(request)
    except web.HTTPException:  # a request the login method refuses outright (a forged trusted header)
        raise UserError("refused: this request's identity headers are not trusted", 403) from None
    if login is None:
        raise UserError("not logged in", 401)
    return Caller(login.user, login.admin, frozenset(SCOPES if login.admin else ("self",)))


def _forbidden(what: str) -> UserError:
    return UserError(f"forbidden: {what}", 403)


def _user(value: object, field: str = "user") -> str:
    try:
        return check_username(value) if isinstance(value, str) else check_username("")
    except IdentityError:
        raise UserError(f"{field}: not a valid user name", 400) from None


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except web.HTTPRequestEntityTooLarge:
        raise UserError("the request body is too large", 413) from None
    except ValueError:
        raise UserError("the body must be a JSON object", 400) from None
    if not isinstance(body, dict):
        raise UserError("the body must be a JSON object", 400)
    return body


def _session_json(app: web.Application, info: SessionInfo) -> dict:
    return {"user": info.user, "state": info.state, "started_at": info.started_at,
            "last_activity": last_activity(app, info.user), "backend": info.backend, "detail": info.detail}


async def me(request: web.Request) -> web.Response:
    return web.json_response(caller(request).json(), headers={"Cache-Control": "no-store"})


async def list_sessions(request: web.Request) -> web.Response:
    who = caller(request)
    api: AdminApi = request.app[ADMIN]
    if who.may("sessions:read", None):
        infos = await asyncio.to_thread(api.sessions.launcher.list)
    elif who.may("sessions:read", who.user):
        infos = [await asyncio.to_thread(api.sessions.launcher.status, who.user)]
        infos = [info for info in infos if info.state != "stopped"]
    else:
        raise _forbidden("this token has no sessions:read or self scope")
    sessions = sorted((_session_json(request.app, i) for i in infos), key=lambda s: s["user"])
    return web.json_response({"sessions": sessions}, headers={"Cache-Control": "no-store"})


async def _stop(api: AdminApi, user: str) -> bool:
    cached = api.sessions.cached(user)
    stopped = await asyncio.to_thread(api.sessions.launcher.stop, user)
    api.sessions.forget(user)
    if cached is not None:
        await api.forget_upstream(cached.url)
    return bool(stopped)


async def stop_session(request: web.Request) -> web.Response:
    who = caller(request)
    user = _user(request.match_info["user"])
    if not who.may("sessions:stop", user):
        raise _forbidden(f"this {'token' if who.token else 'login'} may not stop {user}'s session")
    api: AdminApi = request.app[ADMIN]
    status = await asyncio.to_thread(api.sessions.launcher.status, user)
    if status.state == "stopped":
        raise UserError(f"{user} has no session", 404)
    await _stop(api, user)
    log.warning("%s stopped the session of %s (%s)", who.user, user, "token " + who.token.id if who.token else "login")
    return web.json_response({"user": user, "stopped": True})


async def cull(request: web.Request) -> web.Response:
    """Cull now, as the culler does on its own every gateway.cull_interval (``{"dry_run": true}``: only say
    which sessions it would stop). Every user's sessions: an admin's (sessions:stop)."""
    who = caller(request)
    if not who.may("sessions:stop", None):
        raise _forbidden("culling is for admins (sessions:stop)")
    body = await _body(request) if request.body_exists else {}
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise UserError("dry_run: true or false")
    culler = _culler(request.app)
    if culler is None or not culler.enabled:
        raise UserError("culling is off: set gateway.idle_timeout or gateway.max_age", 409)
    done = await culler.cull_now(dry_run=dry_run)
    log.warning("%s culled %d session(s)%s", who.user, len(done), " (dry run)" if dry_run else "")
    return web.json_response({"dry_run": dry_run, "culled": [{"user": c.user, "reason": c.reason, "seconds": c.seconds}
                                                             for c in done]})


def _account_json(request: web.Request, api: AdminApi, name: str, states: dict[str, str]) -> dict:
    account = api.users.get(name)
    groups = list(account.groups) if account else []
    return {"name": name, "uid": account.uid if account else None, "gid": account.gid if account else None,
            "home": account.home if account else "", "groups": groups,
            "admin": is_admin(request.app[CONFIG], name, groups), "session": states.get(name, "stopped")}


async def list_users(request: web.Request) -> web.Response:
    who = caller(request)
    if not who.may("users:read", None):
        raise _forbidden("the local accounts are for admins (users:read)")
    api: AdminApi = request.app[ADMIN]
    states = {info.user: info.state for info in await asyncio.to_thread(api.sessions.launcher.list)}
    users = [_account_json(request, api, name, states) for name in api.users.names()]
    return web.json_response({"users": users}, headers={"Cache-Control": "no-store"})


async def add_user(request: web.Request) -> web.Response:
    """A new local account with a random password, shown once (as ``hebi-gateway adduser --random-password``)."""
    who = caller(request)
    if not who.may("users:write", None):
        raise _forbidden("adding accounts is for admins (users:write)")
    body = await _body(request)
    name = _user(body.get("name"), "name")
    groups = body.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and 0 < len(g) <= 64 for g in groups) or len(groups) > 64:
        raise UserError("groups: a list of group names")
    api: AdminApi = request.app[ADMIN]
    if api.users.get(name) is not None:
        raise UserError(f"{name} has an account already", 409)
    config = request.app[CONFIG]
    password = secrets.token_urlsafe(12)
    try:
        fields = api.users.unix_ids(name, None, None, config.gateway.uid_range)
        api.users.set_password(name, password, groups=groups, **fields)
    except AccountError as err:
        raise UserError(str(err), 400) from None
    _, problems = await asyncio.to_thread(make_root_folders, config.session.roots, api.users.get(name))
    log.warning("%s added the local account %s", who.user, name)
    account = _account_json(request, api, name, {})
    return web.json_response({"user": account, "password": password, "problems": problems}, status=201)


async def remove_user(request: web.Request) -> web.Response:
    """Remove a local account: its logins end, its tokens are revoked, its session stops. Its files stay."""
    who = caller(request)
    if not who.may("users:write", None):
        raise _forbidden("removing accounts is for admins (users:write)")
    name = _user(request.match_info["user"])
    api: AdminApi = request.app[ADMIN]
    if name == who.user:
        raise UserError("you cannot remove your own account", 409)
    if not api.users.remove(name):
        raise UserError(f"{name} has no local account", 404)
    api.logins.end_all(name)
    request.app[TOKENS].revoke_all(name)
    if (await asyncio.to_thread(api.sessions.launcher.status, name)).state != "stopped":
        await _stop(api, name)
    log.warning("%s removed the local account %s", who.user, name)
    return web.json_response({"user": name, "removed": True})


async def list_tokens(request: web.Request) -> web.Response:
    """The caller's own tokens; an admin's login sees everyone's (``?user=`` for one user's)."""
    who = caller(request)
    tokens: TokenStore = request.app[TOKENS]
    if who.admin and who.token is None:
        wanted = request.query.get("user")
        listed = tokens.list(_user(wanted) if wanted else None)
    else:
        listed = tokens.list(who.user)
    return web.json_response({"tokens": [t.public_json() for t in listed]}, headers={"Cache-Control": "no-store"})


async def create_token(request: web.Request) -> web.Response:
    """A new token (its secret is in this answer only). Only a login makes tokens, so a stolen token cannot
    make itself a longer-lived one; a user makes their own, an admin anyone's."""
    who = caller(request)
    if who.token is not None:
        raise _forbidden("a token cannot make tokens: log in")
    body = await _body(request)
    user = _user(body.get("user", who.user))
    if user != who.user and not who.admin:
        raise _forbidden("only an admin makes tokens for other users")
    api: AdminApi = request.app[ADMIN]
    if user == who.user:
        admin = who.admin
    else:
        account = api.users.get(user)
        admin = is_admin(request.app[CONFIG], user, account.groups if account else ())
    secret, token = request.app[TOKENS].create(user, body.get("scopes"), admin=admin, expires_in=body.get("expires_in"),
                                               note=body.get("note", ""))
    log.warning("%s made token %s for %s with scopes %s", who.user, token.id, user, ",".join(token.scopes))
    return web.json_response({"token": secret, **token.public_json()}, status=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: web.Request) -> web.Response:
    who = caller(request)
    tokens: TokenStore = request.app[TOKENS]
    token_id = request.match_info["id"]
    token = tokens.get(token_id) if len(token_id) <= 32 else None
    # Another user's token is neither revoked nor said to exist, except to an admin's login.
    if token is None or (token.user != who.user and not (who.admin and who.token is None)):
        raise UserError("no such token", 404)
    tokens.revoke(token.id)
    log.warning("%s revoked token %s of %s", who.user, token.id, token.user)
    return web.json_response({"id": token.id, "revoked": True})


async def not_found(request: web.Request) -> web.Response:
    raise UserError(f"no such API: {request.method} {request.path[:100]}", 404)
