"""The gateway behind its real nginx front (gateway.front.enabled): requests of a running session are
carried by nginx with the gateway's checks kept (the login, the same-origin rule, the headers a session
may see, its own user's session only), everything else is the gateway's to answer, and nothing of the
front's own (its route check, its secrets) can be reached or forged by a client."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from conftest import browser_like_session, until
from login_support import free_port
from prometheus_client.parser import text_string_to_metric_families

from hebi_common.identity import verify_identity
from hebi_gateway.accounts import UsersFile
from hebi_gateway.front import FrontSettings, render, render_pools

HERE = Path(__file__).resolve().parent
SECRETS = {"alice": "alice-session-secret-for-the-front", "bob": "bob-session-secret-for-the-front"}
PASSWORD = "front-password-1"


class FrontSystem:
    def __init__(self, base: Path):
        self.base = base
        self.echoes = {}
        sessions = {}
        for user in SECRETS:
            port = free_port()
            self.echoes[user] = subprocess.Popen([sys.executable, str(HERE / "front_support.py"), "echo", str(port), user])
            sessions[user] = {"url": f"http://127.0.0.1:{port}", "secret": SECRETS[user]}
        self.sessions_file = base / "sessions.json"
        self.sessions_file.write_text(json.dumps(sessions))
        config = base / "hebi.yaml"
        config.write_text(yaml.safe_dump({"gateway": {
            "host": "127.0.0.1", "port": 0, "state_dir": str(base / "gateway"), "metrics_addresses": ["127.0.0.2"],
            "front": {"enabled": True, "cache_seconds": 1, "workers": 1}}}))
        users = UsersFile(base / "gateway" / "users.yaml")
        for user in SECRETS:
            users.set_password(user, PASSWORD)
        self.log = open(base / "gateway.log", "ab")
        self.gateway = subprocess.Popen([sys.executable, str(HERE / "front_support.py"), "gateway", str(config),
                                         str(self.sessions_file)], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.gateway.stdout.readline()
        assert "listening on" in line, (base / "gateway.log").read_text()[-3000:]
        self.url = line.split("listening on ")[1].strip().rstrip("/")
        for port in (int(s["url"].rsplit(":", 1)[1]) for s in sessions.values()):
            until(lambda port=port: _listens(port), "an echo session listens", seconds=20)

    def login(self, user: str) -> requests.Session:
        client = browser_like_session()
        answer = client.post(self.url + "/gateway/login", data={"username": user, "password": PASSWORD},
                             allow_redirects=False)
        assert answer.status_code == 303, answer.text
        return client

    def proxied_count(self, proxy: str) -> float:
        """Requests proxied to sessions, as the metrics count them, by the gateway itself or by the front."""
        text = _get_from("127.0.0.2", self.url, "/gateway/metrics")[1]
        return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                   if s.name == "hebi_proxy_request_duration_seconds_count" and s.labels["proxy"] == proxy)

    def stop(self) -> None:
        self.gateway.terminate()
        self.gateway.wait(15)
        for echo in self.echoes.values():
            echo.terminate()
            echo.wait(10)
        self.log.close()


def _listens(port: int) -> bool:
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def _get_from(source: str, url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``path`` from the loopback address ``source`` (another client than 127.0.0.1)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def front(tmp_path_factory, nginx_mode):
    system = FrontSystem(tmp_path_factory.mktemp("front"))
    try:
        yield system
    finally:
        system.stop()


def seen(client: requests.Session, front: FrontSystem, path: str = "/api/thing", **headers) -> dict:
    answer = client.get(front.url + path, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_without_a_login_the_gateway_answers(front):
    page = requests.get(front.url + "/some/page", headers={"Accept": "text/html"}, allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"].startswith("/gateway/login")
    api = requests.get(front.url + "/api/files")
    assert api.status_code == 401 and api.json()["error"] == "not logged in"


def test_the_front_carries_a_running_sessions_requests_with_the_gateways_checks(front):
    alice = front.login("alice")
    alice.cookies.set("theme", "dark")
    first = seen(alice, front)  # the gateway learns that alice's session runs
    before = {proxy: front.proxied_count(proxy) for proxy in ("gateway", "front")}
    forged = {"X-Hebi-Identity": "forged", "X-Remote-User": "bob", "X-Hebi-Front": "guess",
              "X-Hebi-Peer": "10.1.2.3", "X-Hebi-Route": "guess", "X-Forwarded-For": "10.9.9.9"}
    answers = [seen(alice, front, **forged) for _ in range(30)]
    # Carried by nginx, the gateway proxied none of them itself; they are in its metrics all the same.
    until(lambda: front.proxied_count("front") == before["front"] + 30, "the front's requests in the metrics", seconds=20)
    assert front.proxied_count("gateway") == before["gateway"]
    for answer in [first, *answers]:
        headers = {k.lower(): v for k, v in answer["headers"].items()}
        assert answer["session"] == "alice"
        assert verify_identity(headers["x-hebi-identity"], SECRETS["alice"], "alice").user == "alice"
        assert headers.get("cookie") == "theme=dark"  # the gateway's cookie stays behind
        for name in ("x-remote-user", "x-hebi-front", "x-hebi-peer", "x-hebi-route"):
            assert name not in headers, name
        assert headers["x-forwarded-for"] == "127.0.0.1"
    answer = alice.get(front.url + "/api/thing")
    assert answer.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_two_users_each_reach_only_their_own_session(front):
    clients = {user: front.login(user) for user in SECRETS}
    for _ in range(20):
        for user, client in clients.items():
            answer = seen(client, front, path=f"/data/of/{user}")
            assert answer["session"] == user
            identity = {k.lower(): v for k, v in answer["headers"].items()}["x-hebi-identity"]
            assert verify_identity(identity, SECRETS[user], user).user == user


def test_the_route_check_answers_no_client(front):
    alice = front.login("alice")
    seen(alice, front)
    for headers in ({}, {"X-Hebi-Route": "guess", "X-Original-Method": "GET"}):
        for path in ("/gateway/route", "/gateway//route", "/gateway/%72oute"):
            answer = alice.get(front.url + path, headers=headers)
            assert answer.status_code == 404, (path, answer.status_code)
            assert "X-Hebi-Identity" not in answer.headers and "X-Hebi-Upstream" not in answer.headers


def test_a_cross_site_request_is_refused_as_without_the_front(front):
    alice = front.login("alice")
    seen(alice, front)
    answer = alice.post(front.url + "/api/jobs", json={}, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "another origin" in answer.json()["error"]
    same = alice.post(front.url + "/api/jobs", json={}, headers={"Origin": front.url})
    assert same.status_code == 200 and same.json()["method"] == "POST"


def test_a_logout_reaches_the_front_within_its_cache_time(front):
    alice = front.login("alice")
    seen(alice, front)
    cookie = alice.cookies["hebi_session"]
    logout = alice.post(front.url + "/gateway/logout", headers={"Origin": front.url}, allow_redirects=False)
    assert logout.status_code in (200, 303)
    # gateway.front.cache_seconds is 1 here, and nginx counts in whole seconds: at most 2 s.
    time.sleep(2.2)
    answer = requests.get(front.url + "/api/thing", cookies={"hebi_session": cookie})
    assert answer.status_code == 401


def test_the_client_address_is_the_one_the_front_saw(front):
    # metrics_addresses is 127.0.0.2: a client at 127.0.0.1 cannot claim it through the front.
    assert _get_from("127.0.0.1", front.url, "/gateway/metrics", {"X-Hebi-Peer": "127.0.0.2",
                                                                 "X-Hebi-Front": "guess"})[0] == 403
    assert _get_from("127.0.0.2", front.url, "/gateway/metrics")[0] == 200


def test_a_session_that_stopped_answering_gets_the_gateways_answer(front):
    bob = front.login("bob")
    seen(bob, front)
    front.echoes["bob"].terminate()
    front.echoes["bob"].wait(10)
    answer = bob.get(front.url + "/api/thing")
    # Not nginx's bare 502 page: the gateway found the session gone and says what to do.
    assert answer.status_code == 503 and "retry" in answer.json()["error"]


def test_the_front_configuration_keeps_every_login_input_in_its_cache_key():
    text = render(FrontSettings(listen="127.0.0.1:8000", gateway="127.0.0.1:9000", prefix="/run/front",
                                front_secret="f", route_secret="r",
                                dropped_headers=("x-hebi-identity", "x-remote-user", "cookie"),
                                login_headers=("authorization", "X-Remote-User")))
    key = next(line for line in text.splitlines() if "proxy_cache_key" in line)
    for variable in ("$remote_addr", "$http_host", "$request_method", "$http_origin", "$http_cookie",
                     "$http_authorization", "$http_x_remote_user"):
        assert variable in key
    assert 'proxy_set_header x-remote-user "";' in text and 'proxy_set_header x-hebi-front "";' in text
    pools = render_pools({"127.0.0.5:8080", "unix:/run/s/alice/session.sock:", "bad address;"})
    assert "server unix:/run/s/alice/session.sock;" in pools and "server 127.0.0.5:8080;" in pools
    assert "bad address" not in pools
    with pytest.raises(ValueError):
        render(FrontSettings(listen="x", gateway="y", prefix="/p", front_secret="f", route_secret="r",
                             dropped_headers=(), login_headers=("x-evil;\n include /etc/passwd",)))
