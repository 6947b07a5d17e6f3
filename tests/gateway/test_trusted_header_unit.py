"""The trusted-header login in-process, in front of an echo server standing in for a session: the header
is believed only from a configured proxy address or with the proxy's secret, a forged one is refused,
and none of the method's headers ever reaches a session."""
from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import run_async
from test_gateway import EchoLauncher, echo

from hebi_common.config import ConfigError, HebiConfig
from hebi_common.identity import verify_identity
from hebi_gateway.app import create_app

SECRET = "proxy-secret-0123456789abcdef"


def run(scenario, tmp_path, **trusted):
    (tmp_path / "secret").write_text(SECRET + "\n")

    async def main():
        upstream = TestServer(web.Application())
        upstream.app.router.add_route("*", "/{tail:.*}", echo)
        await upstream.start_server()
        settings = HebiConfig.model_validate({"gateway": {"state_dir": str(tmp_path / "gw"), "auth": {
            "method": "trusted_header", "allowed_groups": ["savu-users"], "admin_users": ["dora"],
            "trusted_header": {"groups_header": "X-Remote-Groups", **trusted}}}})
        launcher = EchoLauncher(str(upstream.make_url("")).rstrip("/"))
        client = TestClient(TestServer(create_app(settings, launcher)))
        await client.start_server()
        try:
            await scenario(client)
        finally:
            await client.close()
            await upstream.close()
    run_async(main)


def test_from_a_trusted_proxy_address_the_header_names_the_user_and_never_reaches_the_session(tmp_path):
    async def scenario(client):
        answer = await client.get("/api/whoami", headers={"X-Remote-User": "alice", "X-Remote-Groups": "savu-users,x"})
        assert answer.status == 200
        seen = await answer.json()
        lowered = {k.lower() for k in seen["headers"]}
        assert not lowered & {"x-remote-user", "x-remote-groups", "x-hebi-proxy-secret"}, seen["headers"]
        identity = verify_identity(seen["headers"]["X-Hebi-Identity"], "alice-session-secret", "alice")
        assert identity.groups == ("savu-users", "x")
    run(scenario, tmp_path, trusted_proxies=["127.0.0.0/8"])


def test_from_any_other_address_a_forged_header_is_refused(tmp_path):
    async def scenario(client):
        for headers in ({"X-Remote-User": "alice"}, {"X-Remote-Groups": "savu-users"},
                        {"X-Remote-User": "alice", "X-Hebi-Proxy-Secret": "a-guess-of-the-secret"}):
            answer = await client.get("/api/whoami", headers=headers)
            assert answer.status == 403, headers
            assert "did not come through the login proxy" in await answer.text()
        # Without any: the login page says to come through the proxy; an API call is told it is not logged in.
        assert (await client.get("/api/whoami")).status == 401
        page = await client.get("/gateway/login")
        assert page.status == 401 and "login proxy" in await page.text()
    run(scenario, tmp_path, trusted_proxies=["127.0.0.2/32"], secret_file="")


def test_the_shared_secret_makes_a_request_believed_and_is_stripped(tmp_path):
    async def scenario(client):
        answer = await client.get("/api/x", headers={"X-Remote-User": "alice", "X-Remote-Groups": "savu-users",
                                                     "X-Hebi-Proxy-Secret": SECRET})
        assert answer.status == 200
        headers = {k.lower(): v for k, v in (await answer.json())["headers"].items()}
        assert SECRET not in str(headers) and "x-hebi-proxy-secret" not in headers
        assert (await client.get("/api/x", headers={"X-Remote-User": "alice", "X-Hebi-Proxy-Secret": SECRET[:-1]})).status == 403
    run(scenario, tmp_path, secret_file=str(tmp_path / "secret"))


def test_a_proxy_user_outside_the_allowed_groups_or_with_an_unusable_name_is_refused(tmp_path):
    async def scenario(client):
        outside = await client.get("/", headers={"X-Remote-User": "mallory", "X-Remote-Groups": "visitors",
                                                 "Accept": "text/html"})
        assert outside.status == 403 and "not in a group allowed" in await outside.text()
        bad = await client.get("/", headers={"X-Remote-User": "Alice@EXAMPLE", "X-Remote-Groups": "savu-users"})
        assert bad.status == 403 and "cannot be used by hebi" in await bad.text()
    run(scenario, tmp_path, trusted_proxies=["127.0.0.1"])


def test_neither_proxy_addresses_nor_a_secret_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="no request can be believed"):
        run(lambda client: None, tmp_path, trusted_proxies=[])
