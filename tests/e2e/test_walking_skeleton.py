"""A scientist logs in through the gateway and reaches their own session, started on first use."""
import json
import subprocess
import sys


def test_login_then_whoami_names_the_user_and_session_is_listed(system):
    http = system.login("alice")
    answer = http.get(f"{system.url}/api/whoami")
    assert answer.status_code == 200
    assert answer.json()["user"] == "alice"
    listed = subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(system.config_path),
                             "--json", "list"], capture_output=True, text=True, check=True)
    sessions = {s["user"]: s for s in json.loads(listed.stdout)}
    assert sessions["alice"]["state"] == "running"
    assert "nginx" in sessions["alice"]["detail"]


def test_the_app_shell_and_data_come_through_nginx(system):
    http = system.login("alice")
    page = http.get(f"{system.url}/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and '<div id="root">' in page.text
    deep_link = http.get(f"{system.url}/some/app/route")  # single-page app: nginx falls back to index.html
    assert deep_link.status_code == 200 and '<div id="root">' in deep_link.text
    folders = system.folders("alice")
    from make_sample_data import write_nxtomo
    write_nxtomo(folders["data"] / "scan.nxs", angles=19, rows=4, columns=32)
    meta = http.get(f"{system.url}/data/meta", params={"file": "data/scan.nxs", "path": "/entry1/tomo_entry/data/data"})
    assert meta.status_code == 200, meta.text
    assert meta.json()["shape"] == [29, 4, 32]


def test_upload_streams_through_gateway_and_nginx(system):
    http = system.login("alice")
    body = bytes(range(256)) * 40_000  # 10 MB
    answer = http.put(f"{system.url}/api/files", params={"root": "output", "path": "upload.bin"}, data=iter([body]))
    assert answer.status_code == 201, answer.text
    assert (system.folders("alice")["output"] / "upload.bin").read_bytes() == body


def test_two_users_each_reach_only_their_own_session(system):
    alice, bob = system.login("alice"), system.login("bob")
    (system.folders("alice")["data"] / "alice-only.txt").write_text("a")
    assert alice.get(f"{system.url}/api/whoami").json()["user"] == "alice"
    bob_cookie = bob.cookies.get("hebi_session")
    attempts = [
        {"X-Hebi-User": "alice", "X-Remote-User": "alice", "Remote-User": "alice"},
        {"X-Hebi-Identity": "eyJ1c2VyIjoiYWxpY2UifQ.forged"},
        {"X-Forwarded-User": "alice", "X-Forwarded-For": "127.0.0.1"},
        {"Host": "alice.localhost"},
        {"Cookie": f"hebi_session=not-a-login; hebi_session={bob_cookie}"},
        {"Cookie": f"hebi_session={bob_cookie}; user=alice"},
    ]
    for headers in attempts:
        answer = bob.get(f"{system.url}/api/whoami", headers=headers)
        assert answer.status_code in (200, 401), headers
        if answer.status_code == 200:
            assert answer.json()["user"] == "bob", headers
    for path in ("/api/files?root=data&path=", "/api/files?root=data&path=../../alice/data",
                 "/api/files?root=data&path=%2e%2e/%2e%2e/alice/data"):
        answer = bob.get(f"{system.url}{path}")
        names = [e["name"] for e in answer.json().get("entries", [])] if answer.ok else []
        assert "alice-only.txt" not in names
        assert answer.status_code in (200, 400, 403, 404)


def test_a_session_socket_refuses_requests_that_did_not_come_through_the_gateway(system):
    system.login("alice").get(f"{system.url}/api/whoami")
    info = json.loads(subprocess.run(
        [sys.executable, "-m", "pod_launcher", "--config", str(system.config_path), "--json", "status", "-u", "alice"],
        capture_output=True, text=True).stdout)
    sock = info["url"][len("unix:"):]
    import http.client
    import socket as socketlib

    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socketlib.socket(socketlib.AF_UNIX)
            self.sock.connect(sock)

    for headers in ({}, {"X-Hebi-Identity": "forged.sig"}, {"X-Hebi-User": "alice"}):
        connection = UnixConnection("session")
        connection.request("GET", "/api/whoami", headers=headers)
        answer = connection.getresponse()
        assert answer.status == 401
        assert "error" in json.loads(answer.read())
