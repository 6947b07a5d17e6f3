"""Processes for tests/gateway/test_front.py: an echo server standing in for a user's session, and the
real gateway (hebi_gateway.cli.serve_app, so its nginx front too) with a launcher whose sessions are
those echo servers.

    python front_support.py echo PORT NAME         answers every request with what it received, as JSON
    python front_support.py gateway CONFIG SESSIONS   SESSIONS: {"alice": {"url": ..., "secret": ...}}
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from aiohttp import web


def echo(port: int, name: str) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"session": name, "method": request.method, "path": request.path_qs,
                                  "headers": dict(request.headers), "body_length": len(body)})
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def gateway(config_path: str, sessions_path: str) -> None:
    from hebi_common.config import load_config
    from hebi_gateway.app import create_app
    from hebi_gateway.cli import serve_app
    from pod_launcher import Launcher, SessionInfo

    class EchoSessions(Launcher):
        """Every user named in SESSIONS has a session: that echo server, with that secret."""

        name = "echo"

        def _known(self) -> dict:
            return json.loads(Path(sessions_path).read_text())

        def start(self, identity):
            return self.status(identity.user)

        def status(self, user):
            found = self._known().get(user)
            if found is None:
                return SessionInfo(user=user, state="stopped", backend=self.name)
            return SessionInfo(user=user, state="running", url=found["url"], secret=found["secret"], backend=self.name)

        def stop(self, user):
            return False

        def list(self):
            return [self.status(user) for user in self._known()]

        def logs(self, user, lines=100):
            return ""

    config = load_config(Path(config_path), environ={})
    serve_app(create_app(config, EchoSessions()), config.gateway.host, config.gateway.port)


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(int(sys.argv[2]), sys.argv[3])
    else:
        gateway(sys.argv[2], sys.argv[3])
