"""The session's stand-in for nginx (machines without nginx): the same routes as session.conf.template."""
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import run_async

from pod_launcher.session_router import make_app


def test_routes_match_the_nginx_config(tmp_path):
    web_root = tmp_path / "dist"
    (web_root / "assets").mkdir(parents=True)
    (web_root / "index.html").write_text("<div id=root></div>")
    (web_root / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("secret")

    async def main():
        async def api(request):
            return web.json_response({"service": "api", "path": request.path_qs})

        async def data(request):
            return web.json_response({"service": "data", "path": request.path_qs})

        upstreams = {}
        for name, handler in (("api", api), ("data", data)):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            upstreams[name] = TestServer(app)
            await upstreams[name].start_server()
        router = make_app(str(upstreams["api"].make_url("")).rstrip("/"),
                          str(upstreams["data"].make_url("")).rstrip("/"), str(web_root))
        client = TestClient(TestServer(router))
        await client.start_server()
        try:
            assert (await (await client.get("/api/whoami?x=1")).json()) == {"service": "api", "path": "/api/whoami?x=1"}
            assert (await (await client.get("/data/meta?file=data/a.nxs")).json())["service"] == "data"
            for path in ("/", "/files/deep/link", "/../secret.txt", "/%2e%2e/secret.txt"):
                answer = await client.get(path)
                assert answer.status == 200 and "id=root" in await answer.text(), path
            asset = await client.get("/assets/app.js")
            assert asset.status == 200 and "immutable" in asset.headers["Cache-Control"]
            assert (await client.get("/assets/missing.js")).status == 404
        finally:
            await client.close()
            for server in upstreams.values():
                await server.close()
    run_async(main)
