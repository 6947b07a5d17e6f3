"""The gateway in-process, in front of an echo server standing in for a session: what reaches a
session, what the cookie looks like, and how logins end. (tests/e2e runs it with real sessions.)"""
import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import run_async

from hebi_common.config import HebiConfig
from hebi_common.identity import verify_identity
from hebi_gateway.accounts import UsersFile
from hebi_gateway.app import COOKIE, create_app
from pod_launcher import Launcher, LauncherError, SessionInfo

SECRETS = {"alice": "alice-session-secret", "bob": "bob-session-secret"}


class EchoLauncher(Launcher):
    """Every user's 'session' is the echo server; each gets its own secret, as real sessions do."""

    name = "echo"

    def __init__(self, url: str, fail_for: str = ""):
        self.url, self.fail_for, self.started = url, fail_for, []

    def start(self, identity):
        if identity.user == self.fail_for:
            raise LauncherError("no capacity left")
        self.started.append(identity.user)
        return self.status(identity.user)

    def status(self, user):
        if user in self.started:
            return SessionInfo(user=user, state="running", url=self.url, secret=SECRETS[user], backend=self.name)
        return SessionInfo(user=user, state="stopped", backend=self.name)

    def stop(self, user):
        return False

    def list(self):
        return [self.status(u) for u in self.started]

    def logs(self, user, lines=100):
        return ""


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    answer = web.json_response({"path": request.path_qs, "headers": dict(request.headers), "body_length": len(body)})
    if "csp" in request.query:  # a session page with a policy of its own (a notebook's HTML)
        answer.headers["Content-Security-Policy"] = request.query["csp"]
    return answer


def run(scenario, tmp_path, **config):
    async def main():
        upstream = TestServer(web.Application(client_max_size=0))
        upstream.app.router.add_route("*", "/{tail:.*}", echo)
        await upstream.start_server()
        settings = HebiConfig.model_validate({"gateway": dict({"state_dir": str(tmp_path / "gw")}, **config)})
        users = UsersFile(tmp_path / "gw" / "users.yaml")
        users.set_password("alice", "alice-password")
        users.set_password("bob", "bob-password")
        launcher = EchoLauncher(str(upstream.make_url("")).rstrip("/"), fail_for="carol")
        users.set_password("carol", "carol-password")
        client = TestClient(TestServer(create_app(settings, launcher)))
        await client.start_server()
        try:
            await scenario(client, launcher)
        finally:
            await client.close()
            await upstream.close()
    run_async(main)


async def login(client, user, password=None):
    answer = await client.post("/gateway/login", data={"username": user, "password": password or f"{user}-password",
                                                       "next": "/files"}, allow_redirects=False)
    return answer


def test_wrong_password_and_unknown_user_are_refused_alike(tmp_path):
    async def scenario(client, launcher):
        for user, password in (("alice", "wrong-password"), ("mallory", "alice-password"), ("", "x"), ("../x", "x")):
            answer = await login(client, user, password)
            assert answer.status == 401
            assert "Wrong user name or password" in await answer.text()
            assert COOKIE not in answer.cookies
        assert launcher.started == []
    run(scenario, tmp_path)


def test_login_cookie_is_httponly_lax_and_not_secure_over_http(tmp_path):
    async def scenario(client, launcher):
        answer = await login(client, "alice")
        assert answer.status == 303 and answer.headers["Location"] == "/files"
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    run(scenario, tmp_path)


def test_cookie_is_secure_behind_https(tmp_path):
    async def scenario(client, launcher):
        answer = await client.post("/gateway/login", data={"username": "alice", "password": "alice-password"},
                                   headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
        assert "Secure" in answer.headers["Set-Cookie"]
    run(scenario, tmp_path, trust_forwarded_proto=True)


def test_without_a_valid_cookie_nothing_reaches_a_session(tmp_path):
    async def scenario(client, launcher):
        page = await client.get("/files", headers={"Accept": "text/html"}, allow_redirects=False)
        assert page.status == 303 and page.headers["Location"].startswith("/gateway/login?next=/files")
        for cookie in ("", "forged-value", "x" * 500):
            answer = await client.get("/api/whoami", headers={"Cookie": f"{COOKIE}={cookie}"})
            assert answer.status == 401
            assert (await answer.json())["error"] == "not logged in"
        assert launcher.started == []
    run(scenario, tmp_path)


def test_client_identity_headers_and_the_gateway_cookie_never_reach_the_session(tmp_path):
    async def scenario(client, launcher):
        await login(client, "bob")
        answer = await client.get("/api/whoami?x=1", headers={
            "X-Hebi-Identity": "forged", "X-Hebi-User": "alice", "X-Remote-User": "alice",
            "Remote-User": "alice", "X-Forwarded-User": "alice", "X-Forwarded-For": "10.0.0.1",
            "Cookie": f"theme=dark; {COOKIE}=stolen"})
        assert answer.status == 200
        seen = await answer.json()
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert seen["path"] == "/api/whoami?x=1"
        for name in ("x-hebi-user", "x-remote-user", "remote-user", "x-forwarded-user"):
            assert name not in headers
        assert "10.0.0.1" not in headers["x-forwarded-for"]
        assert headers["cookie"] == "theme=dark"
        identity = verify_identity(headers["x-hebi-identity"], SECRETS["bob"], "bob")
        assert identity.user == "bob"
        assert launcher.started == ["bob"]
    run(scenario, tmp_path)


def test_logout_ends_the_login_for_good(tmp_path):
    async def scenario(client, launcher):
        answer = await login(client, "alice")
        token = answer.cookies[COOKIE].value
        assert (await client.get("/api/x")).status == 200
        await client.post("/gateway/logout", allow_redirects=False)
        replay = await client.get("/api/x", headers={"Cookie": f"{COOKIE}={token}"})
        assert replay.status == 401
    run(scenario, tmp_path)


@pytest.mark.parametrize("next_value", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"])
def test_login_never_redirects_off_site(tmp_path, next_value):
    async def scenario(client, launcher):
        answer = await client.post("/gateway/login", data={"username": "alice", "password": "alice-password",
                                                           "next": next_value}, allow_redirects=False)
        assert answer.headers["Location"] == "/"
    run(scenario, tmp_path)


def test_a_session_that_cannot_start_is_a_clear_503(tmp_path):
    async def scenario(client, launcher):
        await login(client, "carol")
        answer = await client.get("/api/whoami")
        assert answer.status == 503
        assert "no capacity left" in (await answer.json())["error"]
    run(scenario, tmp_path)


def test_request_bodies_reach_the_session_whole(tmp_path):
    async def scenario(client, launcher):
        await login(client, "alice")
        body = b"y" * (5 * 1024 * 1024)
        answer = await client.put("/api/files?root=output&path=x", data=body)
        assert (await answer.json())["body_length"] == len(body)
    run(scenario, tmp_path)


def test_malformed_users_file_is_a_clear_error(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  alice: [1, 2]\n")
    with pytest.raises(Exception) as error:
        UsersFile(path).authenticate("alice", "x")
    assert "malformed users file" in str(error.value)
