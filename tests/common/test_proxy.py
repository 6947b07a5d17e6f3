"""The streaming proxy: server-sent events arrive as they are sent, WebSockets are bridged, and big
bodies pass through without being held whole."""
import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import run_async

from hebi_common.proxy import Upstreams, UpstreamUnavailable, forward

RELEASE = web.AppKey("release", asyncio.Event)


async def events(request):
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for n in range(3):
        await response.write(f"data: event {n}\n\n".encode())
        await request.app[RELEASE].wait()  # the next event only after the client saw this one
        request.app[RELEASE].clear()
    return response


async def websocket(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str("echo: " + message.data)
    return ws


async def count(request):
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
    return web.json_response({"received": total})


async def headers(request):
    return web.json_response({"content_type": request.headers.get("Content-Type"),
                              "body": (await request.read()).decode()})


async def big(request):
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(64):
        await response.write(b"z" * 1024 * 1024)
    return response


def scenario(test):
    async def main():
        upstream_app = web.Application()
        upstream_app[RELEASE] = asyncio.Event()
        upstream_app.router.add_get("/events", events)
        upstream_app.router.add_get("/ws", websocket)
        upstream_app.router.add_post("/count", count)
        upstream_app.router.add_get("/big", big)
        upstream_app.router.add_post("/headers", headers)
        upstream = TestServer(upstream_app)
        await upstream.start_server()
        upstreams = Upstreams()
        target = str(upstream.make_url("")).rstrip("/")

        async def route(request):
            try:
                return await forward(request, upstreams, target if request.path != "/dead" else "unix:/nonexistent.sock")
            except UpstreamUnavailable:
                return web.json_response({"error": "unavailable"}, status=502)

        proxy_app = web.Application()
        proxy_app.router.add_route("*", "/{tail:.*}", route)
        client = TestClient(TestServer(proxy_app))
        await client.start_server()
        try:
            await test(client, upstream_app)
        finally:
            await client.close()
            await upstreams.close()
            await upstream.close()
    run_async(main)


def test_server_sent_events_arrive_one_by_one():
    async def test(client, upstream_app):
        answer = await client.get("/events")
        assert answer.headers["Content-Type"] == "text/event-stream"
        for n in range(3):
            line = await asyncio.wait_for(answer.content.readuntil(b"\n\n"), 10)
            assert line == f"data: event {n}\n\n".encode()
            upstream_app[RELEASE].set()
    scenario(test)


def test_websocket_is_bridged_both_ways():
    async def test(client, upstream_app):
        async with client.ws_connect("/ws") as ws:
            for text in ("one", "two"):
                await ws.send_str(text)
                message = await asyncio.wait_for(ws.receive(), 10)
                assert message.type == aiohttp.WSMsgType.TEXT and message.data == "echo: " + text
    scenario(test)


def test_large_bodies_stream_both_ways():
    async def test(client, upstream_app):
        async def body():
            for _ in range(32):
                yield b"a" * 1024 * 1024
        answer = await client.post("/count", data=body())
        assert (await answer.json())["received"] == 32 * 1024 * 1024
        answer = await client.get("/big")
        total = 0
        async for chunk in answer.content.iter_any():
            total += len(chunk)
        assert total == 64 * 1024 * 1024
    scenario(test)


def test_dead_upstream_is_reported_not_raised_to_the_client():
    async def test(client, upstream_app):
        answer = await client.get("/dead")
        assert answer.status == 502
    scenario(test)


def test_a_request_without_a_body_reaches_the_session_without_a_content_type():
    """A cancel button's empty POST must not become an octet-stream upload on the way (the API refuses
    bodies of types a route does not take)."""
    async def test(client, upstream_app):
        answer = await client.post("/headers", headers={"Content-Length": "0"}, skip_auto_headers=("Content-Type",))
        assert await answer.json() == {"content_type": None, "body": ""}
        answer = await client.post("/headers", data=b'{"a": 1}', headers={"Content-Type": "application/json"})
        assert await answer.json() == {"content_type": "application/json", "body": '{"a": 1}'}
    scenario(test)
