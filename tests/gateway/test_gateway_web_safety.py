"""The gateway against a hostile browser page and a hostile client (issue 9, web safety): redirects that
stay on the site, state changes only from the gateway's own origin, throttled password guessing, the
security headers on every answer, logins ended by a password change, and bodies that never arrive."""
import asyncio

import pytest
from test_gateway import login, run
from yarl import URL

from hebi_gateway.accounts import UsersFile
from hebi_gateway.app import COOKIE, THROTTLE

HOSTILE_NEXT = ["/%09/evil.example", "/%0d/evil.example", "/%0a/evil.example", "/%0D%0A/evil.example",
                "%09//evil.example", "/%5Cevil.example", "/%5C%5Cevil.example", "/%2F/evil.example",
                "/%252F/evil.example", "%2F%2Fevil.example", "/%00/evil.example", "/%E3%80%80/evil.example",
                "/%20/evil.example", "%20//evil.example", "/%7F/evil.example", "https:%2F%2Fevil.example"]


@pytest.mark.parametrize("raw_next", HOSTILE_NEXT)
def test_open_redirect_next_with_control_chars_or_encoded_slashes_stays_on_site(tmp_path, raw_next):
    async def scenario(client, launcher):
        # The login form's hidden field carries the decoded value back, as a browser would post it.
        page = await client.get(URL(f"/gateway/login?next={raw_next}", encoded=True))
        assert page.status == 200
        hidden = (await page.text()).split('name="next" value="', 1)[1].split('"', 1)[0]
        assert hidden == "/"
        answer = await client.post("/gateway/login", allow_redirects=False, data={
            "username": "alice", "password": "alice-password", "next": URL(f"/?x={raw_next}", encoded=True).query["x"]})
        assert answer.status == 303 and answer.headers["Location"] == "/"
        # Logged in, the login page redirects to next at once: that Location must stay on the site too.
        again = await client.get(URL(f"/gateway/login?next={raw_next}", encoded=True), allow_redirects=False)
        assert again.status == 303 and again.headers["Location"] == "/"
    run(scenario, tmp_path)


def test_open_redirect_an_ordinary_next_path_is_kept(tmp_path):
    async def scenario(client, launcher):
        answer = await client.post("/gateway/login", allow_redirects=False, data={
            "username": "alice", "password": "alice-password", "next": "/files/a b?root=data&x=1"})
        assert answer.headers["Location"] == "/files/a%20b?root=data&x=1"
    run(scenario, tmp_path)


def _origin(client) -> str:
    return str(client.make_url("")).rstrip("/")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("headers", [{"Origin": "http://127.0.0.1:1"}, {"Origin": "null"},
                                     {"Origin": "http://evil.example"},
                                     {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"}])
def test_csrf_state_changes_from_another_origin_are_refused(tmp_path, method, headers):
    async def scenario(client, launcher):
        await login(client, "alice")
        answer = await client.request(method, "/api/process-lists/x.nxs", data=b"{}", headers={
            "Content-Type": "text/plain", **headers})
        assert answer.status == 403
        assert "origin" in (await answer.json())["error"]
        assert launcher.started == [], "the request reached a session"
    run(scenario, tmp_path)


def test_csrf_same_origin_and_non_browser_clients_pass(tmp_path):
    async def scenario(client, launcher):
        await login(client, "alice")
        for headers in ({"Origin": _origin(client)}, {"Sec-Fetch-Site": "same-origin"}, {}):
            answer = await client.post("/api/x", data=b"{}", headers=headers)
            assert answer.status == 200, headers
        # Reading is never refused: a cross-site GET cannot change anything (and cannot read the answer).
        assert (await client.get("/api/x", headers={"Sec-Fetch-Site": "cross-site"})).status == 200
    run(scenario, tmp_path)


def test_csrf_login_and_logout_from_another_origin_are_refused(tmp_path):
    async def scenario(client, launcher):
        forged = await client.post("/gateway/login", allow_redirects=False,
                                   data={"username": "alice", "password": "alice-password"},
                                   headers={"Origin": "http://127.0.0.1:1"})
        assert forged.status == 403 and "text/html" in forged.headers["Content-Type"]
        assert COOKIE not in forged.cookies
        assert (await client.get("/api/x")).status == 401
        await login(client, "alice")
        logout = await client.post("/gateway/logout", allow_redirects=False,
                                   headers={"Sec-Fetch-Site": "cross-site"})
        assert logout.status == 403
        assert (await client.get("/api/x")).status == 200, "a forged logout ended the login"
    run(scenario, tmp_path)


def test_csrf_forwarded_origin_is_used_only_behind_a_trusted_proxy(tmp_path):
    headers = {"Origin": "https://hebi.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hebi.example"}

    async def trusted(client, launcher):
        answer = await client.post("/gateway/login", allow_redirects=False, headers=headers,
                                   data={"username": "alice", "password": "alice-password"})
        assert answer.status == 303
    run(trusted, tmp_path / "trusted", trust_forwarded_proto=True)

    async def untrusted(client, launcher):
        answer = await client.post("/gateway/login", allow_redirects=False, headers=headers,
                                   data={"username": "alice", "password": "alice-password"})
        assert answer.status == 403
    run(untrusted, tmp_path / "untrusted")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_login_throttle_refuses_even_the_right_password_until_the_delay_passes(tmp_path):
    async def scenario(client, launcher):
        clock = client.server.app[THROTTLE].clock = FakeClock()
        statuses = [(await login(client, "alice", "wrong-password")).status for _ in range(500)]
        assert statuses[:3] == [401] * 3
        assert set(statuses[3:]) == {429}, "guessing went on after the free attempts"
        right = await login(client, "alice")
        assert right.status == 429 and COOKIE not in right.cookies
        assert "Too many failed logins" in await right.text()
        wait = int(right.headers["Retry-After"])
        assert 1 <= wait <= 60
        clock.now += wait + 1
        assert (await login(client, "alice")).status == 303
    run(scenario, tmp_path, login_free_failures=3, login_delay=1, login_max_delay=60)


def test_login_throttle_counts_guesses_sent_at_once(tmp_path):
    async def scenario(client, launcher):
        client.server.app[THROTTLE].clock = FakeClock()
        answers = await asyncio.gather(*(login(client, "alice", f"guess-{i}") for i in range(50)))
        statuses = sorted(answer.status for answer in answers)
        assert statuses.count(401) == 3 and statuses.count(429) == 47, statuses
    run(scenario, tmp_path, login_free_failures=3)


def test_login_throttle_is_per_address_too(tmp_path):
    async def scenario(client, launcher):
        client.server.app[THROTTLE].clock = FakeClock()
        for name in ("alice", "bob", "carol", "mallory", "dave"):
            await login(client, name, "wrong-password")
        # Another account from the same address is refused too: spreading guesses over accounts is no way round.
        refused = await login(client, "bob")
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    run(scenario, tmp_path, login_free_failures=10, login_free_failures_per_address=4)


def test_login_throttle_tables_are_bounded(tmp_path):
    async def scenario(client, launcher):
        throttle = client.server.app[THROTTLE]
        for i in range(40):
            await login(client, f"user{i}", "wrong-password")
        assert len(throttle) <= 2 * 8
    run(scenario, tmp_path, login_throttle_entries=8, login_free_failures=100,
        login_free_failures_per_address=100)


SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


def test_security_headers_on_every_answer_the_browser_gets(tmp_path):
    async def scenario(client, launcher):
        answers = [await client.get("/gateway/login"), await client.get("/api/x")]
        await login(client, "alice")
        answers += [await client.get("/api/x"), await client.get("/files", headers={"Accept": "text/html"})]
        for answer in answers:
            for name in SECURITY_HEADERS:
                assert name in answer.headers, (answer.url, name)
            assert answer.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
    run(scenario, tmp_path)


def test_a_sessions_own_policy_goes_beside_the_gateways_and_cannot_loosen_it(tmp_path):
    async def scenario(client, launcher):
        await login(client, "alice")
        for policy in ("sandbox; default-src 'none'", "script-src *; frame-ancestors *"):
            answer = await client.get("/api/notebook", params={"csp": policy})
            policies = answer.headers.getall("Content-Security-Policy")
            assert policy in policies and any("frame-ancestors 'none'" in p for p in policies), policies
            assert len(policies) == 2  # the browser enforces both: the stricter wins
        plain = (await client.get("/api/x")).headers.getall("Content-Security-Policy")
        assert len(plain) == 1 and "frame-ancestors 'none'" in plain[0]
    run(scenario, tmp_path)


def test_password_change_ends_existing_logins(tmp_path):
    async def scenario(client, launcher):
        await login(client, "alice")
        assert (await client.get("/api/x")).status == 200
        UsersFile(tmp_path / "gw" / "users.yaml").set_password("alice", "a-new-password")
        assert (await client.get("/api/x")).status == 401, "the old login outlived the password change"
        assert (await login(client, "alice", "a-new-password")).status == 303
        assert (await client.get("/api/x")).status == 200
    run(scenario, tmp_path)


async def _hold_body(client, path: str, cookie: str = "") -> bytes:
    """Declare a 20 GiB body, send none of it, and return what the gateway answers (b'' when it closes)."""
    url = client.make_url("")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nContent-Length: {20 * 1024**3}\r\n"
                 f"Content-Type: application/x-www-form-urlencoded\r\nCookie: {COOKIE}={cookie}\r\n\r\n".encode())
    await writer.drain()
    try:
        # A safety net only (the test fails if it is reached): the gateway must answer long before.
        return await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()


def test_a_body_that_never_arrives_is_cut_after_the_idle_timeout(tmp_path):
    async def scenario(client, launcher):
        token = (await login(client, "alice")).cookies[COOKIE].value
        for path in ("/api/files?root=output&path=big", "/gateway/login"):
            try:
                answer = await _hold_body(client, path, token)
            except TimeoutError:
                pytest.fail(f"{path}: a body that never came held the connection open")
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    run(scenario, tmp_path, body_idle_timeout=2)
