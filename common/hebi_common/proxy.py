"""A streaming reverse proxy for aiohttp servers: one request in, the same request to an upstream,
the response streamed back. Bodies are never held whole in either direction, server-sent events flow
as they are written, and WebSocket upgrades are bridged frame by frame.

Used by the gateway (to reach a user's session) and by the session's fallback router on machines
without nginx. Upstreams are ``http://host:port`` or ``unix:/path/to.sock``.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host", "Content-Length"))
CHUNK = 256 * 1024


class UpstreamUnavailable(Exception):
    """The upstream did not accept the connection (gone, not started, or crashed)."""


class ClientBodyIdle(Exception):
    """The client sent nothing of its request body for the idle timeout (a slow-body attack, or a dead client)."""


class Upstreams:
    """One pooled client per upstream, so keep-alive connections are reused across requests."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[aiohttp.ClientSession, str]] = {}

    def session_for(self, upstream: str) -> tuple[aiohttp.ClientSession, str]:
        found = self._sessions.get(upstream)
        if found is None:
            if upstream.startswith("unix:"):
                connector = aiohttp.UnixConnector(path=upstream[len("unix:"):], limit=0)
                base = "http://session"
            else:
                connector = aiohttp.TCPConnector(limit=0)
                base = upstream.rstrip("/")
            client = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                           timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                                           cookie_jar=aiohttp.DummyCookieJar())
            found = self._sessions[upstream] = (client, base)
        return found

    async def forget(self, upstream: str) -> None:
        found = self._sessions.pop(upstream, None)
        if found:
            await found[0].close()

    async def close(self) -> None:
        for client, _ in self._sessions.values():
            await client.close()
        self._sessions.clear()


def _request_headers(request: web.Request, drop: Iterable[str], add: Mapping[str, str]) -> dict[str, str]:
    drop = {d.lower() for d in drop}
    headers = {k: v for k, v in request.headers.items()
               if k.lower() not in HOP_BY_HOP and k.lower() not in drop}
    headers["X-Forwarded-For"] = request.remote or ""
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    headers.update(add)
    return headers


async def forward(request: web.Request, upstreams: Upstreams, upstream: str, *,
                  path: str | None = None, drop_headers: Iterable[str] = (),
                  add_headers: Mapping[str, str] | None = None,
                  body_idle_timeout: float | None = None) -> web.StreamResponse:
    """Send ``request`` to ``upstream`` (at ``path``, default the same path and query) and stream back.

    With ``body_idle_timeout``, a client that sends nothing of its body for that many seconds gets
    ClientBodyIdle instead of holding the connection (and the upstream's) open for good."""
    client, base = upstreams.session_for(upstream)
    target = base + (path if path is not None else request.rel_url.raw_path_qs)
    headers = _request_headers(request, drop_headers, add_headers or {})
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _bridge_websocket(request, client, target, headers, upstream)

    body = None
    if request.body_exists and request.content_length != 0:
        body = request.content.iter_chunked(CHUNK)
        if body_idle_timeout is not None:
            body = _paced(body, body_idle_timeout)
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
    try:
        # aiohttp would label a streamed body it was not told the type of as application/octet-stream.
        upstream_response = await client.request(request.method, target, headers=headers, data=body,
                                                 allow_redirects=False, skip_auto_headers=("Content-Type",))
    except aiohttp.ClientConnectionError as err:
        if isinstance(err.__cause__, ClientBodyIdle):  # aiohttp wraps what the body raised
            raise err.__cause__ from None
        if not isinstance(err, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)):
            raise
        raise UpstreamUnavailable(f"{upstream}: {err.__class__.__name__}") from None
    except TimeoutError as err:
        raise UpstreamUnavailable(f"{upstream}: {err.__class__.__name__}") from None
    async with upstream_response:
        response = web.StreamResponse(status=upstream_response.status, reason=upstream_response.reason)
        for name, value in upstream_response.headers.items():
            if name.lower() not in HOP_BY_HOP or name.lower() == "content-length":
                response.headers.add(name, value)
        if upstream_response.headers.get("Content-Type", "").startswith("text/event-stream"):
            response.headers.pop("Content-Length", None)
        try:
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (aiohttp.ClientPayloadError, ConnectionResetError):
            pass  # the upstream or the client went away mid-response; nobody is left to tell
        return response


async def _paced(chunks: AsyncIterator[bytes], idle_timeout: float) -> AsyncIterator[bytes]:
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ClientBodyIdle(f"no request body for {idle_timeout:g} s") from None
        yield chunk


async def _bridge_websocket(request: web.Request, client: aiohttp.ClientSession, target: str,
                            headers: dict[str, str], upstream: str) -> web.StreamResponse:
    for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"):
        headers.pop(name, None)
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    headers.pop("Sec-WebSocket-Protocol", None)
    try:
        upstream_ws = await client.ws_connect(target, headers=headers, protocols=protocols, autoping=False)
    except aiohttp.WSServerHandshakeError as err:
        return web.json_response({"error": f"the WebSocket was refused: {err.message}"}, status=err.status)
    except (TimeoutError, aiohttp.ClientError) as err:
        raise UpstreamUnavailable(f"{upstream}: {err.__class__.__name__}") from None
    client_ws = web.WebSocketResponse(protocols=protocols, autoping=False)
    await client_ws.prepare(request)

    async def pump(source, sink):
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.PING:
                await sink.ping(message.data)
            elif message.type == aiohttp.WSMsgType.PONG:
                await sink.pong(message.data)
            else:
                break
        await sink.close()

    async with upstream_ws:
        await asyncio.gather(pump(client_ws, upstream_ws), pump(upstream_ws, client_ws), return_exceptions=True)
    return client_ws
