"""Web safety (issue 9, findings 6, 7, 8 and 11) through the real gateway and nginx: redirects, forged
cross-site requests, password guessing, frames, password changes, quotas, bodies that never come and
deeply nested JSON."""
from __future__ import annotations

import html
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

import local_system
import pytest
import yaml
from attack import (  # noqa: F401 - fixtures
    COUNT,
    IDLE_TIMEOUT,
    QUOTA_BYTES,
    Attacker,
    bob_untouched,
    guarded,
    throttled,
    world,
)

# -- 6. open redirect ------------------------------------------------------------------------------------

HOSTILE_NEXT = ["/%09/evil.example", "/%0d/evil.example", "/%0a/evil.example", "/%0D%0A/evil.example",
                "%09//evil.example", "//evil.example", "///evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
                "%5C%5Cevil.example", "/%2F/evil.example", "%2F%2Fevil.example", "/%252F/evil.example",
                "https://evil.example", "https:%2F%2Fevil.example", "http:evil.example", "javascript:alert(1)",
                "/%00/evil.example", "/%E3%80%80/evil.example", "/%20/evil.example", "%20//evil.example",
                "/%7F/evil.example", "/%09%09/evil.example", "/\t/evil.example", "%0d%0aSet-Cookie:x=1",
                "/gateway/login?next=//evil.example", "/.%2F/evil.example", "evil.example"]


def on_site(location: str) -> bool:
    """Where a browser goes for this Location, by the WHATWG URL parser's rules: tabs and newlines are
    dropped, leading controls and spaces stripped, backslashes read as slashes."""
    cleaned = "".join(c for c in location if c not in "\t\n\r").lstrip("".join(map(chr, range(33))))
    cleaned = cleaned.replace("\\", "/")
    parts = urlsplit(cleaned)
    return cleaned.startswith("/") and not cleaned.startswith("//") and not parts.scheme and not parts.netloc


@pytest.mark.parametrize("raw_next", HOSTILE_NEXT)
def test_finding_06_open_redirect(world, raw_next):
    alice = world.alice
    again = alice.hostile("GET", f"/gateway/login?next={raw_next}", json_error=False, finding="06")
    assert again.status_code == 303, again.text
    assert on_site(again.headers["Location"]), again.headers["Location"]
    fresh = Attacker(world.url)
    login = fresh.hostile("POST", "/gateway/login", json_error=False, finding="06", data={
        "username": "alice", "password": "alice-password-1", "next": unquote(raw_next)})
    assert login.status_code == 303 and on_site(login.headers["Location"]), login.headers.get("Location")
    page = Attacker(world.url).hostile("GET", f"/gateway/login?next={raw_next}", json_error=False, finding="06")
    hidden = page.text.split('name="next" value="', 1)[1].split('"', 1)[0]
    assert page.status_code == 200 and on_site(html.unescape(hidden)), hidden


def test_finding_06_an_ordinary_next_path_is_kept(world):
    fresh = Attacker(world.url)
    login = fresh.hostile("POST", "/gateway/login", json_error=False, data={
        "username": "alice", "password": "alice-password-1", "next": "/files?root=data"})
    assert login.status_code == 303 and login.headers["Location"] == "/files?root=data"


# -- 7. CSRF ---------------------------------------------------------------------------------------------

FORM_TYPES = ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=xyz", "application/javascript", "text/json", "application/jsonx",
              "application/x-json", "application/json-seq", "text/html", "application/octet-stream"]
JSON_WRITES = [("POST", "/api/process-lists/csrf_{n}.nxs", {}),
               ("PUT", "/api/process-lists/csrf_put_{n}.nxs", {"plugins": [{"name": "NxtomoLoader"}]}),
               ("POST", "/api/process-lists/alice_list.nxs/operations",
                {"operations": [{"op": "set", "plugin": "3", "param": "kernel_size", "value": "[1, 5, 5]"}]}),
               ("POST", "/api/jobs", {"process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs",
                                      "output": "output/csrf", "mode": "preview"})]


@pytest.mark.parametrize("content_type", FORM_TYPES)
def test_finding_07_csrf_json_endpoints_accept_only_json(world, content_type):
    import json
    before = (world.alice_folders["processing"] / "alice_list.nxs").read_bytes()
    jobs_before = world.alice.get(f"{world.url}/api/jobs", timeout=60).json()["total"]
    for n, (method, template, body) in enumerate(JSON_WRITES):
        path = template.format(n=f"{n}_{abs(hash(content_type))}")
        answer = world.alice.refused(method, path, data=json.dumps(body), headers={
            "Content-Type": content_type, "If-Match": "*"}, finding="07")
        assert answer.status_code == 415, answer.text
        assert not (world.alice_folders["processing"] / path.rsplit("/", 1)[-1]).exists()
    assert (world.alice_folders["processing"] / "alice_list.nxs").read_bytes() == before
    assert world.alice.get(f"{world.url}/api/jobs", timeout=60).json()["total"] == jobs_before


FOREIGN = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
           {"Origin": "http://localhost"}, {"Origin": "http://127.0.0.2"}, {"Sec-Fetch-Site": "cross-site"},
           {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"},
           {"Origin": "https://127.0.0.1"}, {"Referer": "http://evil.example/", "Origin": "http://evil.example"}]


@pytest.mark.parametrize("headers", FOREIGN)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_finding_07_csrf_the_gateway_checks_origin_on_state_changes(world, headers, method):
    path = "/api/process-lists/forged_by_evil.nxs"
    answer = world.alice.refused(method, path, json={"plugins": []}, headers=dict(headers, **{"If-Match": "*"}),
                                 finding="07")
    assert answer.status_code == 403, answer.text
    assert "origin" in answer.json()["error"].lower()
    assert not (world.alice_folders["processing"] / "forged_by_evil.nxs").exists()


def test_finding_07_csrf_same_origin_requests_still_work(world):
    created = world.alice.post(f"{world.url}/api/process-lists/same_origin.nxs", json={},
                               headers={"Origin": world.url, "Sec-Fetch-Site": "same-origin"}, timeout=60)
    assert created.status_code == 201, created.text
    world.alice.delete(f"{world.url}/api/process-lists/same_origin.nxs", headers={
        "Origin": world.url, "If-Match": created.headers["ETag"]}, timeout=60)


@pytest.mark.parametrize("headers", FOREIGN[:7])
def test_finding_07_csrf_login_and_logout_are_protected(world, headers):
    forged = Attacker(world.url)
    login = forged.refused("POST", "/gateway/login", json_error=False, headers=headers, finding="07", data={
        "username": "alice", "password": "alice-password-1", "next": "/"})
    assert login.status_code == 403 and "text/html" in login.headers["Content-Type"]
    assert "hebi_session" not in login.cookies
    victim = world.system.login("alice")
    victim_attacker = Attacker(world.url, victim.cookies)
    logout = victim_attacker.refused("POST", "/gateway/logout", json_error=False, headers=headers, finding="07")
    assert logout.status_code == 403
    assert victim.get(f"{world.url}/api/whoami", timeout=60).status_code == 200, "a forged logout ended the login"


# -- 8. login throttling (a gateway of its own: the shared accounts and 127.0.0.1 are never locked) ------

def test_finding_08_no_login_throttling(throttled):
    throttled.require("gateway.login_free_failures", "gateway.login_delay")
    guesser = Attacker(throttled.url)

    def guess(i: int):
        return guesser.hostile("POST", "/gateway/login", json_error=False, finding="08", data={
            "username": "carol", "password": f"guess-{i}", "next": "/"},
            headers={"X-Forwarded-For": f"10.0.{i}.1"})  # not trusted: must not split the address

    with ThreadPoolExecutor(8) as pool:
        statuses = [answer.status_code for answer in pool.map(guess, range(24))]
    assert set(statuses) <= {401, 429}, statuses
    assert 429 in statuses, f"24 wrong passwords in parallel and no 429: {statuses}"
    right = guesser.hostile("POST", "/gateway/login", json_error=False, finding="08", data={
        "username": "carol", "password": "carol-password-3", "next": "/"})
    assert right.status_code == 429, "the right password worked while throttled"
    assert "hebi_session" not in right.cookies
    assert "too many" in right.text.lower()
    wait = float(right.headers["Retry-After"])
    assert 0 < wait <= 60
    log = (throttled.base / "gateway.log").read_text()
    assert "carol" in log and ("throttl" in log.lower() or "too many" in log.lower()), log[-1000:]
    # The delay passes (bounded: login_max_delay), then the right password works again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(min(wait, 5) + 0.2)
        again = guesser.post(f"{throttled.url}/gateway/login", allow_redirects=False, timeout=60, data={
            "username": "carol", "password": "carol-password-3", "next": "/"})
        if again.status_code == 303:
            break
        wait = float(again.headers.get("Retry-After", 1))
    assert again.status_code == 303, again.text


def test_finding_08_throttling_is_per_address_too(throttled):
    throttled.require("gateway.login_free_failures_per_address")
    guesser = Attacker(throttled.url)
    statuses = [guesser.hostile("POST", "/gateway/login", json_error=False, finding="08", data={
        "username": f"made-up-{i}", "password": "wrong", "next": "/"}).status_code for i in range(12)]
    assert 429 in statuses, f"spreading guesses over accounts went unthrottled: {statuses}"
    other = guesser.hostile("POST", "/gateway/login", json_error=False, finding="08", data={
        "username": "dave", "password": "dave-password-5", "next": "/"})
    assert other.status_code == 429


# -- 11. smaller holes -----------------------------------------------------------------------------------

def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"plugins":' + b"[" * depth + b"]" * depth + b"}"


NESTED_TARGETS = [("PUT", "/api/process-lists/nested.nxs"), ("POST", "/api/process-lists/nested_new.nxs"),
                  ("POST", "/api/process-lists/alice_list.nxs/operations"), ("POST", "/api/jobs")]


@pytest.mark.parametrize("depth", [1000, 50_000, 400_000])
@pytest.mark.parametrize("kind", ["list", "object", "plugins"])
def test_finding_11_deeply_nested_json_is_a_4xx(world, depth, kind):
    for method, path in NESTED_TARGETS:
        answer = world.alice.refused(method, path, data=_nested(depth, kind), finding="11",
                                     headers={"Content-Type": "application/json", "If-Match": "*"})
        assert answer.status_code in (400, 413, 422), answer.text
    assert not (world.alice_folders["processing"] / "nested.nxs").exists()


FRAMED = [("GET", "/", {"Accept": "text/html"}), ("GET", "/files", {"Accept": "text/html"}),
          ("GET", "/api/whoami", {}), ("GET", "/api/files?root=data", {}), ("GET", "/api/no-such-thing", {}),
          ("GET", "/data/meta?file=data/scan.nxs&path=/", {}), ("GET", "/gateway/login", {"Accept": "text/html"})]


@pytest.mark.parametrize("method,path,headers", FRAMED)
def test_finding_11_frames_are_refused(world, method, path, headers):
    answer = world.alice.hostile(method, path, headers=dict(headers, **{"Sec-Fetch-Dest": "iframe"}),
                                 finding="11", json_error=False)
    assert answer.status_code in (200, 303, 404), answer.text
    assert answer.headers.get("X-Frame-Options", "").upper() == "DENY", dict(answer.headers)
    assert "frame-ancestors 'none'" in answer.headers.get("Content-Security-Policy", ""), dict(answer.headers)
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"


def test_finding_11_password_change_ends_logins(world):
    local_system.add_user(world.system.config_path, "erin", "erin-password-6")
    before = world.system.login("erin", "erin-password-6")
    assert before.get(f"{world.url}/api/whoami", timeout=60).status_code == 200
    subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(world.system.config_path), "adduser",
                    "erin", "--password-stdin"], input="erin-new-password-7\n", text=True, check=True,
                   capture_output=True)
    # Behind the nginx front a login's route answer is kept up to cache_seconds (+1: nginx counts whole
    # seconds), the documented bound of every revocation (docs/security.md, "The nginx front").
    front = yaml.safe_load(world.system.config_path.read_text())["gateway"].get("front") or {}
    if front.get("enabled"):
        time.sleep(front.get("cache_seconds", 1) + 1.2)
    stale = Attacker(world.url, before.cookies)
    answer = stale.hostile("GET", "/api/whoami", finding="11")
    assert answer.status_code == 401, "a login outlived the password change"
    assert world.system.login("erin", "erin-new-password-7").get(f"{world.url}/api/whoami",
                                                                 timeout=60).json()["user"] == "erin"


def test_finding_11_upload_over_quota(guarded):
    guarded.require("session.quota_bytes")
    carol = guarded.login("carol")
    chunk = b"q" * (QUOTA_BYTES // 2 + 1024)
    first = carol.hostile("PUT", "/api/files", params={"root": "output", "path": "one.bin"}, data=chunk,
                          finding="11")
    assert first.status_code == 201, first.text
    second = carol.refused("PUT", "/api/files", params={"root": "output", "path": "two.bin"}, data=chunk,
                           finding="11")
    assert second.status_code == 413 and "quota" in second.json()["error"].lower(), second.text
    folders = local_system.user_folders(guarded.config_path, "carol")
    assert not (folders["output"] / "two.bin").exists()
    # Declared too big up front: refused before a byte is stored.
    declared = carol.refused("PUT", "/api/files", params={"root": "processing", "path": "big.bin"},
                             data=b"x" * (QUOTA_BYTES + 1), finding="11")
    assert declared.status_code == 413
    carol.hostile("DELETE", "/api/files", params={"root": "output", "path": "one.bin"}, finding="11")


def _hold_body(url: str, path: str, cookie: str, limit: float) -> tuple[bytes, float]:
    """Declare a 20 GiB body, send none of it; what the gateway answers (b'' when it just closes) and
    how long it kept the connection. ``limit`` is only a safety net for a gateway that never closes."""
    parts = urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=limit) as sock:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {20 * 1024**3}\r\n"
                     f"Content-Type: application/octet-stream\r\nCookie: hebi_session={cookie}\r\n\r\n".encode())
        received = b""
        try:  # until the gateway closes or has answered (an answer ends the request; the socket may linger)
            while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
                received += chunk
        except TimeoutError:
            pytest.fail(f"{path}: a body that never came held the connection for {limit} s")
        except ConnectionResetError:
            pass
    return received, time.monotonic() - started


SLOW_PATHS = ["/api/files?root=output&path=slow.bin", "/api/process-lists/slow.nxs", "/gateway/login", "/data/meta"]


def test_finding_11_slow_body_is_cut_after_the_idle_timeout(guarded):
    """Bodies declared at 20 GiB that never come, four at a time on each path: each is answered 408 (or
    closed) after the idle timeout, and the user's other requests are served meanwhile."""
    guarded.require("gateway.body_idle_timeout")
    carol = guarded.login("carol")
    carol.get(f"{guarded.url}/api/whoami", timeout=60)  # the session is up: only the body is waited for
    cookie = carol.cookies.get("hebi_session")
    with ThreadPoolExecutor(len(SLOW_PATHS) * 4) as pool:
        held = [pool.submit(_hold_body, guarded.url, path, cookie, IDLE_TIMEOUT + 60) for path in SLOW_PATHS * 4]
        assert carol.get(f"{guarded.url}/api/whoami", timeout=60).status_code == 200
        answers = [future.result()[0] for future in held]
    COUNT.add(len(answers), "11")
    for path, answer in zip(SLOW_PATHS * 4, answers):
        assert answer == b"" or answer.split(b" ", 2)[1] in (b"408", b"413", b"400"), (path, answer[:300])
