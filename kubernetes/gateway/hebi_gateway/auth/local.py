"""Local accounts: the gateway's own login form against the users file (accounts.py).

A login keeps the password stamp of the account it was made with; a password change (hebi-gateway
adduser, in any process) changes the stamp, which ends every login made before it. The users file is
parsed again only when it changed (UsersFile caches it by mtime), so a request costs one stat, not a read.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from hebi_common.config import HebiConfig
from hebi_common.identity import IdentityError, check_username

from ..accounts import UsersFile, password_stamp
from ..logins import Login, LoginStore
from ..pages import login_page
from ..throttle import LoginThrottle
from .base import Authenticator
from .web import body_idle, client_address, html, safe_next

log = logging.getLogger("hebi.gateway")


class LocalAuthenticator(Authenticator):
    name = "local"

    def __init__(self, config: HebiConfig, logins: LoginStore, users: UsersFile, throttle: LoginThrottle):
        super().__init__(config, logins)
        self.users = users
        self.throttle = throttle

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway/login", self.show_login)
        app.router.add_post("/gateway/login", self.do_login)
        super().add_routes(app)

    def still_valid(self, login: Login) -> bool:
        account = self.users.get(login.user)
        return account is not None and login.stamp == password_stamp(account)

    async def show_login(self, request: web.Request) -> web.Response:
        next_path = safe_next(request.query.get("next"))
        if self.current(request):
            raise web.HTTPSeeOther(next_path)
        return html(login_page(next_path))

    async def do_login(self, request: web.Request) -> web.Response:
        try:
            # The form is small (client_max_size), so its whole arrival is bounded rather than each pause.
            async with asyncio.timeout(self.config.gateway.body_idle_timeout):
                form = await request.post()
        except TimeoutError:
            return body_idle(request)
        name = str(form.get("username", "")).strip()[:40]
        password = str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", "/")))
        address = client_address(request)
        wait = self.throttle.attempt(name, address)
        if wait:
            log.warning("login for %r from %s refused: throttled for %d s more", name, address, wait)
            response = html(login_page(next_path, f"Too many failed logins. Try again in {wait} seconds.", name), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        account = None
        try:
            check_username(name)
            account = await asyncio.to_thread(self.users.authenticate, name, password)
        except IdentityError:
            pass
        if account is None:
            locked = self.throttle.retry_after(name, address)
            log.warning("failed login for %r from %s%s", name, address, f"; locked for {locked} s" if locked else "")
            return html(login_page(next_path, "Wrong user name or password.", name), status=401)
        self.throttle.succeeded(name, address)
        log.info("%s logged in from %s", account.name, address)
        raise self.start_login(request, account.identity(), next_path, stamp=password_stamp(account))
