"""A trusted header: an authenticating proxy in front (Apache with mod_auth_openidc, say) logs the user
in and names them in a header on every request it passes on.

The header is believed only on a request that came straight from a configured proxy address
(gateway.auth.trusted_header.trusted_proxies, judged by the connection's own peer address, never by a
forwarding header) or that carries the proxy's shared secret. Any other request carrying the header is
refused with 403, and the method's headers are always removed before a request reaches a session.
There is no login record: the proxy says who it is each time, and its own session decides how long a
login lasts.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from pathlib import Path

from aiohttp import web

from hebi_common.config import ConfigError, HebiConfig
from hebi_common.identity import Identity

from ..logins import Login, LoginStore
from ..operations import count_login_failure
from ..pages import logged_out_page, login_refused_page, proxy_login_page
from .base import Authenticator, LoginRefused, username
from .web import html

log = logging.getLogger("hebi.gateway.auth")
#: Identities made from the proxy's headers, remembered this long (a passwd lookup per request is too
#: many); at most CACHE_ENTRIES of them.
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 10_000


class TrustedHeaderAuthenticator(Authenticator):
    name = "trusted_header"

    def __init__(self, config: HebiConfig, logins: LoginStore):
        super().__init__(config, logins)
        self.trusted = self.settings.trusted_header
        try:
            self.networks = [ipaddress.ip_network(p, strict=False) for p in self.trusted.trusted_proxies]
        except ValueError as err:
            raise ConfigError(f"gateway.auth.trusted_header.trusted_proxies: {err}") from None
        self.secret = b""
        if self.trusted.secret_file:
            try:
                self.secret = Path(self.trusted.secret_file).read_bytes().strip()
            except OSError as err:
                raise ConfigError(f"gateway.auth.trusted_header.secret_file: {err}") from None
            if len(self.secret) < 16:
                raise ConfigError("gateway.auth.trusted_header.secret_file: the secret needs at least 16 characters")
        if not self.networks and not self.secret:
            raise ConfigError("gateway.auth.method is trusted_header: set gateway.auth.trusted_header.trusted_proxies "
                              "or secret_file, or no request can be believed")
        names = [self.trusted.header, self.trusted.groups_header, self.trusted.secret_header]
        if self.settings.unix_ids == "claims":
            names += [self.settings.uid_claim, self.settings.gid_claim, self.settings.home_claim]
        self.dropped_headers = tuple(sorted({n.lower() for n in names if n}))
        self._cache: dict[tuple[str, str, str, str, str], tuple[float, Login | str]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway/login", self.show_login)
        super().add_routes(app)

    def from_proxy(self, request: web.Request) -> bool:
        if self.secret and self.trusted.secret_header:
            given = request.headers.get(self.trusted.secret_header, "").encode()
            if given and hmac.compare_digest(given, self.secret):
                return True
        try:
            peer = ipaddress.ip_address((request.remote or "").split("%")[0])
        except ValueError:
            return False
        return any(peer in network for network in self.networks)

    def current(self, request: web.Request) -> Login | None:
        headers = request.headers
        claimed = {n: headers[n] for n in self.dropped_headers if n in headers and n != self.trusted.secret_header.lower()}
        if not self.from_proxy(request):
            if claimed:
                log.warning("refused %s %s from %s: it names a user in %s but is not from the trusted proxy",
                            request.method, request.path[:200], request.remote, ", ".join(sorted(claimed)))
                count_login_failure(request.app, "refused")
                raise web.HTTPForbidden(text=login_refused_page(
                    "This request names its user itself, and it did not come through the login proxy, "
                    "so hebi refused it."), content_type="text/html")
            return None
        value = headers.get(self.trusted.header, "").strip()
        if not value:
            return None
        values = tuple(headers.get(n, "") for n in (self.trusted.groups_header, self.settings.uid_claim,
                                                    self.settings.gid_claim, self.settings.home_claim) if n)
        key = (value, *values)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached[0] < now:
            cached = (now + CACHE_SECONDS, self._identify(value, headers))
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = cached
        if isinstance(cached[1], str):
            count_login_failure(request.app, "refused")
            raise web.HTTPForbidden(text=login_refused_page(cached[1]), content_type="text/html")
        return cached[1]

    def _identify(self, value: str, headers) -> Login | str:
        """The login the proxy's headers describe, or why it is refused."""
        try:
            user = username(value)
            groups: tuple[str, ...] = ()
            if self.trusted.groups_header:
                groups = tuple(g.strip() for g in headers.get(self.trusted.groups_header, "").split(
                    self.trusted.groups_separator) if g.strip())[:1000]
            self.check_allowed(user, groups)
            identity: Identity = self.unix_identity(user, groups, lambda name: headers.get(name) if name else None)
        except LoginRefused as err:
            log.warning("login of %r through the proxy refused: %s", value[:64], err)
            return str(err)
        return Login(identity=identity, method=self.name, admin=self.is_admin(user, identity.groups))

    async def show_login(self, request: web.Request) -> web.Response:
        if self.current(request):
            raise web.HTTPSeeOther("/")
        return html(proxy_login_page(), 401)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        if self.trusted.logout_url:
            raise web.HTTPSeeOther(self.trusted.logout_url)
        return html(logged_out_page(proxy=True))
