"""The trusted-header login for real: Apache with mod_auth_openidc in front of a whole hebi, signing in
at the real npm oidc-provider, in Chromium. The gateway believes Apache by its shared secret, or by its
address (Apache connects from 127.0.0.1; the direct clients here from 127.0.0.5); a client that talks
to the gateway directly cannot name a user, and one going through Apache cannot either."""
from __future__ import annotations

import http.client
import secrets
import shutil
from urllib.parse import urlsplit

import pytest
import requests
from login_support import (
    APACHE_CLIENT_ID,
    CLIENT_ID,
    Hebi,
    apache,
    free_port,
    new_base,
    oidc_provider,
    provider_login,
    require_apache,
    whoami,
)

pytestmark = pytest.mark.browser


#: Where the direct clients connect from: another loopback address than Apache's.
CLIENT_ADDRESS = "127.0.0.5"


class World:
    def __init__(self, proxy_url: str, hebi: Hebi, secret: str):
        self.url, self.hebi, self.secret = proxy_url, hebi, secret


def direct_get(url: str, path: str, headers: dict[str, str]) -> int:
    """The status of GET ``path`` sent straight to the gateway from CLIENT_ADDRESS."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=(CLIENT_ADDRESS, 0))
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture(scope="module", params=["secret", "address"])
def world(request, nginx_mode, browser):
    """Apache in front of hebi; the gateway believes it by ``secret`` or by its ``address``."""
    require_apache()
    base = new_base("hebi-th-")
    proxy_port, gateway_port = free_port(), free_port()
    secret = secrets.token_urlsafe(24)
    (base / "proxy-secret").write_text(secret + "\n")
    redirects = {CLIENT_ID: [f"http://127.0.0.1:{gateway_port}/unused"],
                 APACHE_CLIENT_ID: [f"http://127.0.0.1:{proxy_port}/oauth2/callback"]}
    hebi = None
    try:
        with oidc_provider(base, redirects) as issuer:
            hebi = Hebi(base / "hebi", gateway_port, {
                "method": "trusted_header", "allowed_groups": ["savu-users"], "admin_groups": ["hebi-admins"],
                "unix_ids": "claims", "uid_claim": "Oidc-Claim-posix_uid", "gid_claim": "Oidc-Claim-posix_gid",
                "trusted_header": {"header": "X-Remote-User", "groups_header": "Oidc-Claim-groups",
                                   "secret_header": "X-Hebi-Proxy-Secret", **(
                                       {"secret_file": str(base / "proxy-secret")} if request.param == "secret"
                                       else {"trusted_proxies": ["127.0.0.1/32"]})}},
                launcher={"start_timeout": 120})
            with apache(base, proxy_port, issuer, gateway_port, secret) as proxy_url:
                yield World(proxy_url, hebi, secret)
    finally:
        if hebi:
            hebi.close()
        shutil.rmtree(base, ignore_errors=True)


def test_signing_in_at_the_proxy_lands_in_the_app_as_that_user(world, page):
    page.goto(f"{world.url}/")
    provider_login(page, "alice")
    page.wait_for_selector("[data-testid=user-name]:has-text('alice')", timeout=150_000)
    me = whoami(page, world.url)
    assert (me["user"], me["uid"], me["gid"]) == ("alice", 23001, 23101), me
    # Through Apache, with its session cookie: headers the browser adds to name someone else change nothing.
    forged = page.context.request.get(f"{world.url}/api/whoami", headers={
        "X-Remote-User": "bob", "X-Hebi-Proxy-Secret": "a-guess", "Oidc-Claim-groups": "hebi-admins",
        "Oidc-Claim-posix_uid": "0"})
    assert forged.status == 200 and forged.json()["user"] == "alice" and forged.json()["uid"] == 23001


def test_a_proxy_user_outside_the_allowed_groups_gets_a_page_saying_why(world, page):
    page.goto(f"{world.url}/")
    provider_login(page, "mallory")
    page.wait_for_selector("h1:has-text('Access refused')", timeout=150_000)
    assert "not in a group allowed to use hebi here" in page.inner_text("main")


def test_a_direct_client_cannot_name_a_user(world):
    for headers in ({"X-Remote-User": "alice"}, {"X-Remote-User": "alice", "Oidc-Claim-groups": "savu-users"},
                    {"X-Remote-User": "alice", "X-Hebi-Proxy-Secret": world.secret[:-1]},
                    {"x-remote-user": "alice", "X-Forwarded-For": "127.0.0.1"}):
        assert direct_get(world.hebi.url, "/api/whoami", headers) == 403, headers
    assert direct_get(world.hebi.url, "/api/whoami", {}) == 401
    # Through Apache without its login: sent to the provider, never to hebi.
    answer = requests.get(f"{world.url}/api/whoami", headers={"X-Remote-User": "alice"}, allow_redirects=False,
                          timeout=30)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("http://127.0.0.1:")
    assert "/auth?" in answer.headers["Location"]
