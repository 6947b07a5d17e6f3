"""OpenID Connect login: the authorization code flow with PKCE (S256), with authlib.

GET /gateway/login sends the browser to the provider (found by discovery) with a fresh state, nonce and
PKCE verifier, remembered here and bound to the browser by a random cookie (so a callback link made in
another browser, a login CSRF, is refused). The callback exchanges the code, checks the id_token
(signature by the provider's published keys, issuer, audience, nonce, expiry), reads userinfo for what
the token lacks, applies the username, groups and unix-id rules, and stores the identity in a login
record that ends when the provider's tokens do (the earlier of the id_token's ``exp`` and the access
token's ``expires_in``), or at gateway.login_max_age. The browser then goes through the provider again,
which returns at once while its own session lasts, and the claims and group rules are checked anew.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from hebi_common.config import ConfigError, HebiConfig

from ..logins import LoginStore
from ..pages import logged_out_page, login_failed_page
from .base import Authenticator, LoginRefused, refused, username
from .web import COOKIE, client_address, forwarded, html, is_https, safe_next

log = logging.getLogger("hebi.gateway.auth")
CALLBACK = "/gateway/oidc/callback"
#: The browser's own random value its pending logins are bound to (only its digest is kept here).
BROWSER_COOKIE = "hebi_oidc_browser"
#: Logins begun and not yet come back: at most this many, each for at most PENDING_SECONDS.
MAX_PENDING = 10_000
PENDING_SECONDS = 600
#: After logging out, /gateway/login says so (with a link to log in again) for this long.
LOGGED_OUT_COOKIE, LOGGED_OUT_SECONDS = "hebi_logged_out", 600
#: The most a provider's answer (discovery, keys, tokens, userinfo) may hold.
MAX_ANSWER_BYTES = 1024 * 1024
#: Signature algorithms accepted for id_tokens: public-key ones only ('none' and shared-secret HS* never).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class ProviderError(Exception):
    """The identity provider could not be reached or answered something unusable (a 502 for the user)."""


@dataclass(frozen=True)
class Pending:
    verifier: str
    nonce: str
    next_path: str
    browser: str  # SHA-256 of the browser's BROWSER_COOKIE
    started: float


class OidcAuthenticator(Authenticator):
    name = "oidc"

    def __init__(self, config: HebiConfig, logins: LoginStore):
        super().__init__(config, logins)
        self.oidc = self.settings.oidc
        if not self.oidc.issuer or not self.oidc.client_id:
            raise ConfigError("gateway.auth.method is oidc: set gateway.auth.oidc.issuer and client_id")
        self.issuer = self.oidc.issuer.rstrip("/")
        self.secret = ""
        if self.oidc.client_secret_file:
            try:
                self.secret = Path(self.oidc.client_secret_file).read_text().strip()
            except OSError as err:
                raise ConfigError(f"gateway.auth.oidc.client_secret_file: {err}") from None
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._metadata: dict[str, Any] | None = None
        self._keys: Any = None
        self._http: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway/login", self.begin)
        app.router.add_get(CALLBACK, self.callback)
        super().add_routes(app)

        async def close(app: web.Application) -> None:
            if self._http is not None:
                await self._http.close()
        app.on_cleanup.append(close)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        # The provider's own session outlives hebi's login, so /gateway/login would log the user in again at
        # once: for a while it shows "logged out" instead, until they choose to log in again.
        self.logins.end(request.cookies.get(COOKIE))
        response = html(logged_out_page())
        response.del_cookie(COOKIE, path="/")
        response.set_cookie(LOGGED_OUT_COOKIE, "1", httponly=True, samesite="Lax", secure=is_https(request),
                            path="/gateway/login", max_age=LOGGED_OUT_SECONDS)
        return response

    # -- the provider --------------------------------------------------------------------------------

    async def _get_json(self, url: str, **kwargs) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.oidc.http_timeout))
        try:
            async with self._http.request(kwargs.pop("method", "GET"), url, **kwargs) as answer:
                raw = await answer.content.read(MAX_ANSWER_BYTES + 1)
                if len(raw) > MAX_ANSWER_BYTES:
                    raise ProviderError(f"{url} answered more than {MAX_ANSWER_BYTES} bytes")
                body = json.loads(raw)
                if answer.status != 200 or not isinstance(body, dict):
                    detail = body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
                    raise ProviderError(f"{url} answered {answer.status} {str(detail)[:200]}")
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise ProviderError(f"{url}: {err.__class__.__name__} {err}"[:300]) from None

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            found = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise ProviderError(f"the discovery document names issuer {found.get('issuer')!r}, "
                                    f"not {self.issuer!r}")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(key), str):
                    raise ProviderError(f"the discovery document has no {key}")
            self._metadata = found
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> Any:
        if self._keys is None or refresh:
            try:
                self._keys = KeySet.import_key_set(await self._get_json((await self.metadata())["jwks_uri"]))
            except (JoseError, ValueError, TypeError, KeyError) as err:
                raise ProviderError(f"the provider's keys (jwks_uri) cannot be read: {err}") from None
        return self._keys

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The id_token's claims once its signature, issuer, audience, nonce and times check out.

        The signature check is joserfc's (authlib's own JOSE successor, which authlib depends on)."""
        for attempt in (0, 1):
            try:
                token = jwt.decode(id_token, await self._key_set(refresh=attempt == 1), algorithms=ALGORITHMS)
                break
            except InvalidKeyIdError:
                if attempt:  # an unknown key even after fetching the keys again (they may have rotated)
                    raise LoginRefused("the identity provider's token is signed by a key it does not publish") from None
            except (JoseError, ValueError) as err:
                raise LoginRefused(f"the identity provider's token does not verify: {_why(err)}") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=self.oidc.leeway, iss={"essential": True, "value": (await self.metadata())["issuer"]},
            aud={"essential": True, "value": self.oidc.client_id}, nonce={"essential": True, "value": nonce},
            exp={"essential": True}, sub={"essential": True})
        claims = token.claims
        try:
            registry.validate(claims)
        except JoseError as err:
            raise LoginRefused(f"the identity provider's token is not valid: {_why(err)}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.oidc.client_id:
            raise LoginRefused("the identity provider's token was issued to another client")
        return dict(claims)

    # -- the flow ------------------------------------------------------------------------------------

    def _redirect_uri(self, request: web.Request) -> str:
        if self.oidc.redirect_url:
            return self.oidc.redirect_url
        # As the browser wrote it (no default port added): the provider compares redirect URIs exactly.
        scheme = forwarded(request, "X-Forwarded-Proto") or request.scheme
        return f"{scheme}://{forwarded(request, 'X-Forwarded-Host') or request.host}{CALLBACK}"

    async def begin(self, request: web.Request) -> web.StreamResponse:
        next_path = safe_next(request.query.get("next"))
        if self.current(request):
            raise web.HTTPSeeOther(next_path)
        if request.cookies.get(LOGGED_OUT_COOKIE) and "again" not in request.query:
            return html(logged_out_page(next_path=next_path))
        try:
            metadata = await self.metadata()
        except ProviderError as err:
            log.error("OIDC discovery failed: %s", err)
            return html(login_failed_page("hebi cannot reach your identity provider just now. Try again in a moment."), 502)
        browser = request.cookies.get(BROWSER_COOKIE, "")
        if not (32 <= len(browser) <= 64 and browser.isascii()):
            browser = generate_token(43)
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        self._remember(state, Pending(verifier, nonce, next_path, _digest(browser), time.time()))
        query = {"response_type": "code", "client_id": self.oidc.client_id, "redirect_uri": self._redirect_uri(request),
                 "scope": " ".join(self.oidc.scopes), "state": state, "nonce": nonce,
                 "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
        response = web.HTTPSeeOther(f"{metadata['authorization_endpoint']}?{urlencode(query)}")
        # Lax: sent on the provider's top-level redirect back to the callback, never on a cross-site subrequest.
        response.set_cookie(BROWSER_COOKIE, browser, httponly=True, samesite="Lax", secure=is_https(request),
                            path=CALLBACK, max_age=PENDING_SECONDS)
        response.del_cookie(LOGGED_OUT_COOKIE, path="/gateway/login")
        raise response

    def _remember(self, state: str, pending: Pending) -> None:
        now = time.time()
        while self._pending and (len(self._pending) >= MAX_PENDING
                                 or next(iter(self._pending.values())).started < now - PENDING_SECONDS):
            self._pending.popitem(last=False)
        self._pending[state] = pending

    async def callback(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        pending = self._pending.pop(query.get("state", ""), None)
        if pending is None or pending.started < time.time() - PENDING_SECONDS:
            return html(login_failed_page("This login link is unknown or too old (or hebi restarted meanwhile).",
                                          again=True), 400)
        browser = request.cookies.get(BROWSER_COOKIE, "")
        if not hmac.compare_digest(_digest(browser), pending.browser):
            log.warning("OIDC callback from %s in another browser than the login began in: refused",
                        client_address(request))
            return html(login_failed_page("This login was begun in another browser, so hebi did not accept it.",
                                          again=True), 400)
        if "error" in query:
            reason = str(query.get("error_description") or query["error"])[:200]
            return html(login_failed_page(f"Your identity provider did not log you in: {reason}", again=True), 401)
        claims: dict[str, Any] = {}
        try:
            metadata = await self.metadata()
            # RFC 9207: the response names its issuer, so a response from another provider is not taken.
            if "iss" in query and query["iss"].rstrip("/") != metadata["issuer"].rstrip("/"):
                raise LoginRefused("the login answer came from another identity provider")
            claims, expires = await self._exchange(request, metadata, query.get("code", ""), pending)
            user = username(claims.get(self.oidc.username_claim))
            groups = _groups(claims.get(self.oidc.groups_claim))
            self.check_allowed(user, groups)
            identity = self.unix_identity(user, groups, claims.get)
        except LoginRefused as err:
            return refused(str(claims.get(self.oidc.username_claim, "?")), str(err))
        except ProviderError as err:
            log.error("OIDC login failed: %s", err)
            return html(login_failed_page("hebi could not complete the login with your identity provider.",
                                          again=True), 502)
        log.info("%s logged in through OIDC from %s", user, client_address(request))
        raise self.start_login(request, identity, pending.next_path, expires=expires)

    async def _exchange(self, request: web.Request, metadata: dict[str, Any], code: str,
                        pending: Pending) -> tuple[dict[str, Any], float]:
        """The claims of the login (id_token, then userinfo for what it lacks) and when it ends."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self._redirect_uri(request),
                "code_verifier": pending.verifier, "client_id": self.oidc.client_id}
        auth = aiohttp.BasicAuth(self.oidc.client_id, self.secret) if self.secret else None
        tokens = await self._get_json(metadata["token_endpoint"], method="POST", data=form, auth=auth)
        if not isinstance(tokens.get("id_token"), str):
            raise ProviderError("the token answer has no id_token (is 'openid' among gateway.auth.oidc.scopes?)")
        claims = await self.validate_id_token(tokens["id_token"], pending.nonce)
        expires = float(claims["exp"])
        if isinstance(tokens.get("expires_in"), int | float):
            expires = min(expires, time.time() + float(tokens["expires_in"]))
        if self.oidc.userinfo and metadata.get("userinfo_endpoint") and isinstance(tokens.get("access_token"), str):
            info = await self._get_json(metadata["userinfo_endpoint"],
                                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
            if info.get("sub") != claims["sub"]:
                raise LoginRefused("the identity provider's userinfo is about someone else")
            claims = {**info, **claims}
        return claims, expires


def _why(err: Exception) -> str:
    return str(getattr(err, "description", "") or getattr(err, "error", "") or err)[:200]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _groups(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(str(g)[:256] for g in value[:1000] if isinstance(g, str | int))

