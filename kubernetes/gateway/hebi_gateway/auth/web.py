"""What the gateway's handlers and its login methods share about a request: the login cookie, the
trusted forwarding headers, the client's address, where to go after logging in, and HTML answers."""
from __future__ import annotations

import logging
import unicodedata
from urllib.parse import quote, unquote

from aiohttp import web
from yarl import URL

from hebi_common.config import HebiConfig

COOKIE = "hebi_session"
CONFIG = web.AppKey("config", HebiConfig)


def forwarded(request: web.Request, name: str) -> str:
    """A forwarding header of the trusted proxy in front of the gateway ('' when it is not trusted)."""
    if not request.app[CONFIG].gateway.trust_forwarded_proto:
        return ""
    return request.headers.get(name, "").split(",")[-1].strip()


def own_origin(request: web.Request) -> str | None:
    """The gateway's origin as the browser sees it: scheme, host and port."""
    scheme = forwarded(request, "X-Forwarded-Proto") or request.scheme
    return normal_origin(f"{scheme}://{forwarded(request, 'X-Forwarded-Host') or request.host}")


def normal_origin(value: str) -> str | None:
    try:
        url = URL(value.strip())
        return f"{url.scheme.lower()}://{url.host.lower()}:{url.port}" if url.scheme and url.host else None
    except (ValueError, TypeError):
        return None


def client_address(request: web.Request) -> str:
    return forwarded(request, "X-Forwarded-For") or request.remote or "?"


def is_https(request: web.Request) -> bool:
    config: HebiConfig = request.app[CONFIG]
    if config.gateway.cookie_secure == "always":
        return True
    if config.gateway.cookie_secure == "never":
        return False
    return request.secure or forwarded(request, "X-Forwarded-Proto").lower() == "https"


def safe_next(value: str | None) -> str:
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


def html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def body_idle(request: web.Request) -> web.Response:
    logging.getLogger("hebi.gateway").warning("%s %s from %s: the request body stopped coming; connection closed",
                                              request.method, request.path, client_address(request))
    response = web.json_response({"error": "the request body stopped coming; send it again"}, status=408)
    response.force_close()
    return response
