"""The login seam: every login method turns a request into an identity behind one small interface.

Like JupyterHub's Authenticator, a method may add its own routes under /gateway/ (a login page, a
callback); the gateway asks it only ``current(request)``: who is this? Methods that log in once (local
accounts, OIDC) keep the identity they found in a login record (logins.py) named by the login cookie;
a method that is told on every request (a trusted proxy's header) reads it each time.
"""
from __future__ import annotations

import logging
import pwd
import time
from collections.abc import Callable, Iterable
from typing import ClassVar

from aiohttp import web

from hebi_common.config import HebiConfig
from hebi_common.identity import Identity, IdentityError, check_username

from ..logins import Login, LoginStore
from ..pages import login_refused_page
from .web import COOKIE, html, is_https

log = logging.getLogger("hebi.gateway.auth")


class LoginRefused(Exception):
    """This person is known but may not use hebi (or hebi cannot run a session for them): the message says why."""


class Authenticator:
    #: Its value of gateway.auth.method.
    name: ClassVar[str]
    #: Request headers of this method that no session may see (on top of the gateway's DROPPED_HEADERS).
    dropped_headers: tuple[str, ...] = ()

    def __init__(self, config: HebiConfig, logins: LoginStore):
        self.config = config
        self.settings = config.gateway.auth
        self.logins = logins

    def add_routes(self, app: web.Application) -> None:
        """Add this method's own routes (at least GET /gateway/login) and POST /gateway/logout."""
        app.router.add_post("/gateway/logout", self.logout)

    def current(self, request: web.Request) -> Login | None:
        """The login of ``request``: None when there is none (the browser is sent to /gateway/login). A
        request that must be refused outright raises an aiohttp HTTP error."""
        login = self.logins.find(request.cookies.get(COOKIE))
        return login if login and login.method == self.name and self.still_valid(login) else None

    def still_valid(self, login: Login) -> bool:
        """Whether a stored login still holds (the local method: the password did not change since)."""
        return True

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.logins.end(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/gateway/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    # -- for the methods ---------------------------------------------------------------------------

    def is_admin(self, user: str, groups: Iterable[str]) -> bool:
        return user in self.settings.admin_users or bool(set(groups) & set(self.settings.admin_groups))

    def check_allowed(self, user: str, groups: Iterable[str]) -> None:
        allowed = self.settings.allowed_groups
        if allowed and not set(groups) & set(allowed):
            raise LoginRefused(f"{user} is not in a group allowed to use hebi here ({', '.join(allowed)}). "
                               "Ask your facility's hebi admin for access.")

    def unix_identity(self, user: str, groups: Iterable[str], value: Callable[[str], object]) -> Identity:
        """The identity of ``user``: uid, gid and home per gateway.auth.unix_ids, from ``value(name)``
        (a claim or header) or from the system's user database. A session never runs as root."""
        uid = gid = None
        home = ""
        if self.settings.unix_ids == "claims":
            uid, gid = _number(value(self.settings.uid_claim)), _number(value(self.settings.gid_claim))
            if uid is None:
                raise LoginRefused(f"the identity provider gave no {self.settings.uid_claim!r} (your Unix uid) "
                                   f"for {user}, and hebi needs it to run your session")
            gid = uid if gid is None else gid
            home = str(value(self.settings.home_claim) or "") if self.settings.home_claim else ""
        elif self.settings.unix_ids == "passwd":
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise LoginRefused(f"{user} has no Unix account on this system, and hebi needs one to run "
                                   "your session") from None
            uid, gid, home = entry.pw_uid, entry.pw_gid, entry.pw_dir
        if uid == 0 or gid == 0:
            raise LoginRefused(f"{user} maps to uid or gid 0 (root): hebi never runs a session as root")
        return Identity(user=user, uid=uid, gid=gid, home=home, groups=tuple(groups))

    def start_login(self, request: web.Request, identity: Identity, next_path: str, *, stamp: str = "",
                    expires: float = 0.0) -> web.HTTPSeeOther:
        """Store a login of ``identity`` and answer with its cookie and a redirect to ``next_path``."""
        login = Login(identity=identity, method=self.name, admin=self.is_admin(identity.user, identity.groups),
                      stamp=stamp, expires=expires)
        token = self.logins.create(login)
        max_age = self.config.gateway.login_max_age
        if expires:
            max_age = max(1, min(max_age, int(expires - time.time())))
        response = web.HTTPSeeOther(next_path)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=is_https(request), path="/",
                            max_age=max_age)
        return response


def refused(user: str, reason: str) -> web.Response:
    log.warning("login of %r refused: %s", user[:64], reason)
    return html(login_refused_page(reason), 403)


def username(value: object) -> str:
    """A user name from an identity provider or proxy, checked, never rewritten (so no two map to one)."""
    if not isinstance(value, str):
        raise LoginRefused("the identity provider gave no user name")
    try:
        return check_username(value)
    except IdentityError:
        raise LoginRefused(f"the user name {value[:64]!r} cannot be used by hebi: it needs 1-32 lower-case "
                           "letters, digits, '_' or '-', starting with a letter or '_'") from None


def _number(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise LoginRefused(f"the uid or gid {str(value)[:32]!r} from the identity provider is not a number") from None
    if number < 0:
        raise LoginRefused(f"the uid or gid {number} from the identity provider is negative")
    return number
