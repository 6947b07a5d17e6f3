"""Stand-in for the session's nginx on machines without nginx: the same routes, served by aiohttp.

/api/ goes to the API, /data/ to the dataserver, anything else is a file of the web app, with the
single-page-app fallback to index.html. Used only where nginx is missing and allowed to be (never under
HEBI_REQUIRE_REAL=1); the launcher says so in ``pod_launcher status``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from aiohttp import web

from hebi_common.proxy import Upstreams, UpstreamUnavailable, forward
from hebi_common.sandbox import SandboxError, resolve_in_root

from .base import SESSION_DOWN_HEADER


def make_app(api: str, data: str, web_root: str) -> web.Application:
    root = Path(os.path.realpath(web_root))
    upstreams = Upstreams()

    async def route(request: web.Request) -> web.StreamResponse:
        path = request.path
        for prefix, upstream in (("/api/", api), ("/data/", data)):
            if path.startswith(prefix):
                try:
                    return await forward(request, upstreams, upstream)
                except UpstreamUnavailable as err:
                    return web.json_response({"error": f"service unavailable: {err}"}, status=502,
                                             headers={SESSION_DOWN_HEADER: "1"})
        try:
            file = resolve_in_root(root, path)
        except SandboxError:
            raise web.HTTPNotFound() from None
        if not file.is_file():
            if path.startswith("/assets/"):
                raise web.HTTPNotFound()
            file = root / "index.html"
        response = web.FileResponse(file)
        response.headers["Cache-Control"] = ("public, max-age=2592000, immutable" if path.startswith("/assets/")
                                             else "no-cache")
        return response

    async def close(_app):
        await upstreams.close()

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", route)
    app.on_cleanup.append(close)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="unix:/path.sock or host:port")
    parser.add_argument("--api", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--web-root", required=True)
    args = parser.parse_args()
    app = make_app(args.api, args.data, args.web_root)
    if args.listen.startswith("unix:"):
        web.run_app(app, path=args.listen[len("unix:"):], print=None, access_log=None)
    else:
        host, _, port = args.listen.rpartition(":")
        web.run_app(app, host=host or "127.0.0.1", port=int(port), print=None, access_log=None)


if __name__ == "__main__":
    main()
