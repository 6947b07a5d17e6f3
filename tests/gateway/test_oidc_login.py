"""OIDC login end to end: headless Chromium, the real npm oidc-provider and a whole hebi on loopback.

A person signs in at the provider and lands in the app shell as the provider's user, with the uid and
gid of the provider's posix-uid claims; one outside the allowed groups (or whose name, uid or gid hebi
cannot use) gets a page saying why and no login; a callback carried to another browser or replayed is
refused; a login ends when the provider's token does; and logins survive a gateway restart."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from login_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    SHORT_CLIENT_ID,
    SHORT_TTL,
    TAMPERED_CLIENT_ID,
    Hebi,
    free_port,
    new_base,
    oidc_auth,
    oidc_provider,
    provider_login,
    whoami,
)

from hebi_gateway.logins import LoginStore

pytestmark = pytest.mark.browser
CALLBACK = "/gateway/oidc/callback"
#: Milliseconds a first page may take to show the app: its session starts meanwhile (slow on a busy machine).
START_WAIT = 150_000


def is_callback(response) -> bool:
    return urlsplit(response.url).path == CALLBACK


class World:
    def __init__(self, base: Path, issuer: str, main: Hebi, short: Hebi, tampered: Hebi, public: Hebi):
        self.base, self.issuer, self.main, self.short, self.tampered = base, issuer, main, short, tampered
        self.public = public


@pytest.fixture(scope="module")
def world(nginx_mode, browser):
    base = new_base("hebi-oidc-")
    main_port, short_port, tampered_port, public_port = free_port(), free_port(), free_port(), free_port()
    secret = base / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    redirects = {CLIENT_ID: [f"http://127.0.0.1:{main_port}{CALLBACK}"],
                 SHORT_CLIENT_ID: [f"http://127.0.0.1:{short_port}{CALLBACK}"],
                 TAMPERED_CLIENT_ID: [f"http://127.0.0.1:{tampered_port}{CALLBACK}"],
                 PUBLIC_CLIENT_ID: [f"http://127.0.0.1:{public_port}{CALLBACK}"]}
    hebis: list[Hebi] = []
    try:
        with oidc_provider(base, redirects) as issuer:
            hebis.append(Hebi(base / "main", main_port, oidc_auth(issuer, secret), launcher={"start_timeout": 120}))
            hebis.append(Hebi(base / "short", short_port, oidc_auth(issuer, secret, SHORT_CLIENT_ID, leeway=0)))
            hebis.append(Hebi(base / "tampered", tampered_port, oidc_auth(issuer, secret, TAMPERED_CLIENT_ID)))
            hebis.append(Hebi(base / "public", public_port, oidc_auth(issuer, None, PUBLIC_CLIENT_ID)))
            yield World(base, issuer, *hebis)
    finally:
        for hebi in hebis:
            hebi.close()
        shutil.rmtree(base, ignore_errors=True)


def sign_in(page, hebi: Hebi, user: str, path: str = "/") -> None:
    page.goto(f"{hebi.url}{path}")
    provider_login(page, user)


def test_a_provider_login_lands_in_the_app_as_that_user_with_its_unix_ids(world, page):
    with page.expect_response(is_callback) as callback:
        sign_in(page, world.main, "alice", "/files?root=data")
    assert callback.value.status == 303 and callback.value.headers["location"] == "/files?root=data"
    page.wait_for_selector("[data-testid=user-name]:has-text('alice')", timeout=START_WAIT)
    me = whoami(page, world.main.url)
    assert (me["user"], me["uid"], me["gid"]) == ("alice", 23001, 23101), me
    assert "savu-users" in me["groups"]
    logins = LoginStore(Path(world.main.config_path.parent / "gateway" / "logins.json"), 3600).logins()
    assert [(x.user, x.method, x.admin) for x in logins if x.user == "alice"] == [("alice", "oidc", False)]


def test_a_member_of_the_admin_group_is_an_admin(world, page):
    with page.expect_response(is_callback) as callback:
        sign_in(page, world.main, "dora")
    assert callback.value.status == 303
    logins = LoginStore(Path(world.main.config_path.parent / "gateway" / "logins.json"), 3600).logins()
    assert {x.admin for x in logins if x.user == "dora"} == {True}


@pytest.mark.parametrize("user, reason", [
    ("mallory", "is not in a group allowed to use hebi here (savu-users)"),
    ("nouid", "gave no 'posix_uid'"),
    ("Bad.Name", "cannot be used by hebi"),
    ("rooty", "never runs a session as root"),
])
def test_a_person_hebi_may_not_let_in_gets_a_page_saying_why_and_no_login(world, page, user, reason):
    with page.expect_response(is_callback) as callback:
        sign_in(page, world.main, user)
    assert callback.value.status == 403
    page.wait_for_selector("h1:has-text('Access refused')")
    assert reason in page.inner_text("main")
    assert not [c for c in page.context.cookies() if c["name"] == "hebi_session"]
    assert page.context.request.get(f"{world.main.url}/api/whoami").status == 401


def test_a_public_client_logs_in_with_pkce_alone(world, page):
    with page.expect_response(is_callback) as callback:
        sign_in(page, world.public, "alice", "/jobs")
    assert callback.value.status == 303 and callback.value.headers["location"] == "/jobs"
    logins = LoginStore(world.public.config_path.parent / "gateway" / "logins.json", 3600).logins()
    assert [(x.user, x.identity.uid) for x in logins] == [("alice", 23001)]


def test_a_token_edited_on_its_way_is_refused(world, page):
    # alice signs in; the id_token that reaches hebi says "dora" over alice's signature.
    with page.expect_response(is_callback) as callback:
        sign_in(page, world.tampered, "alice")
    assert callback.value.status == 403
    page.wait_for_selector("h1:has-text('Access refused')")
    assert "token does not verify" in page.inner_text("main")
    assert not [c for c in page.context.cookies() if c["name"] == "hebi_session"]
    assert LoginStore(world.tampered.config_path.parent / "gateway" / "logins.json", 3600).logins() == []


def _callback_url(http: requests.Session, hebi: Hebi, user: str) -> str:
    """Walk a login as a program would (the provider's forms by hand) and keep the redirect back to
    hebi's callback instead of following it."""
    url = f"{hebi.url}/gateway/login?next=/"
    for _ in range(10):
        answer = http.get(url, allow_redirects=False, timeout=30)
        if answer.status_code == 200 and "<form" in answer.text:
            action = re.search(r'<form[^>]*action="([^"]+)"', answer.text).group(1)
            fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', answer.text))
            answer = http.post(urljoin(url, action), allow_redirects=False, timeout=30,
                               data={**fields, "login": user, "password": "any-password"})
        assert answer.status_code in (302, 303), answer.text[:500]
        url = urljoin(url, answer.headers["Location"])
        if url.startswith(f"{hebi.url}{CALLBACK}"):
            return url
    raise AssertionError("the provider never sent the browser back")


def test_a_callback_taken_to_another_browser_or_replayed_is_refused(world, page):
    attacker = requests.Session()
    url = _callback_url(attacker, world.main, "alice")
    assert "code=" in url and "state=" in url
    # Login CSRF: a victim's browser made to finish someone else's login (their code, their state) gets
    # nothing: the login is bound to the browser that began it.
    answer = page.goto(url)
    assert answer.status == 400 and "begun in another browser" in page.inner_text("main")
    assert not [c for c in page.context.cookies() if c["name"] == "hebi_session"]
    # The state is spent: not even the browser it belonged to can use it again.
    again = attacker.get(url, allow_redirects=False, timeout=30)
    assert again.status_code == 400 and "unknown or too old" in again.text
    assert "hebi_session" not in attacker.cookies


def test_a_login_ends_when_the_providers_token_expires(world, page):
    with page.expect_response(is_callback) as callback:
        sign_in(page, world.short, "alice")
    assert callback.value.status == 303
    began = time.time()
    logins = LoginStore(world.short.config_path.parent / "gateway" / "logins.json", 3600).logins()
    assert [x.user for x in logins] == ["alice"] and logins[0].expires <= began + SHORT_TTL, logins

    def sent_to_login() -> bool:
        answer = page.context.request.get(f"{world.short.url}/", headers={"Accept": "text/html"}, max_redirects=0)
        return answer.status == 303 and answer.headers["location"].startswith("/gateway/login")
    assert not sent_to_login(), "the login did not hold while the token did"
    while not sent_to_login() and time.time() - began < SHORT_TTL + 120:
        page.wait_for_timeout(500)
    assert sent_to_login(), "the login outlived the provider's token"
    # Back through the provider, whose own session still holds: in again without its login form.
    with page.expect_response(is_callback) as callback:
        page.goto(f"{world.short.url}/")
    assert callback.value.status == 303 and not sent_to_login()


def test_oidc_logins_survive_a_gateway_restart(world, page):
    sign_in(page, world.main, "dora")
    page.wait_for_selector("[data-testid=user-name]:has-text('dora')", timeout=START_WAIT)
    before = whoami(page, world.main.url)
    world.main.stop_gateway()
    world.main.start()
    after = whoami(page, world.main.url)
    assert after == before and after["uid"] == 23002


def test_logging_out_ends_the_login_and_stays_out_until_the_user_logs_in_again(world, page):
    sign_in(page, world.main, "alice")
    page.wait_for_selector("[data-testid=user-name]:has-text('alice')", timeout=START_WAIT)
    page.click("button.logout")
    # The provider still has its session, but hebi does not use it behind the user's back.
    page.wait_for_selector("h1:has-text('Logged out')")
    assert page.context.request.get(f"{world.main.url}/api/whoami").status == 401
    page.goto(f"{world.main.url}/")
    page.wait_for_selector("h1:has-text('Logged out')")
    with page.expect_response(is_callback) as callback:
        page.click("text=Log in again")
    assert callback.value.status == 303  # through the provider's session: no login form on the way
    page.wait_for_selector("[data-testid=user-name]:has-text('alice')", timeout=START_WAIT)
