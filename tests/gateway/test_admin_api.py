"""The admin API and scoped tokens (/gateway/api/) through the real gateway (hebi-gateway serve, the local
launcher, real sessions behind nginx): what each token may do, that a user's token can never stop another
user's session, an admin's list and stop, revocation, expiry, and bad input answered with a 4xx JSON
error that changes nothing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import local_system
import pytest
import requests
import yaml
from conftest import gateway_login

PASSWORDS = {"ada": "ada-admin-password", "alice": "alice-password-1", "bob": "bob-password-22"}


class Hebi:
    def __init__(self, config_path: Path, gateway: local_system.Gateway):
        self.config_path = config_path
        self.gateway = gateway
        self.url = gateway.url.rstrip("/")

    def login(self, user: str, password: str | None = None) -> requests.Session:
        return gateway_login(self.url, user, password or PASSWORDS[user])

    def api(self, method: str, path: str, token: str | None = None, http: requests.Session | None = None,
            **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return (http or requests).request(method, f"{self.url}/gateway/api/{path}", headers=headers, timeout=60,
                                          **kwargs)

    def token(self, http: requests.Session, scopes: list[str], **fields) -> dict:
        answer = self.api("POST", "tokens", http=http, json={"scopes": scopes, **fields})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def running(self) -> set[str]:
        """Whose sessions run, as the launcher itself says (pod_launcher list), not as the API says."""
        listed = subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(self.config_path), "--json",
                                 "list"], capture_output=True, text=True, check=True).stdout
        return {s["user"] for s in json.loads(listed) if s["state"] == "running"}

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(self.config_path), *args],
                              capture_output=True, text=True)


@pytest.fixture(scope="module")
def hebi(nginx_mode):
    base = Path(tempfile.mkdtemp(prefix="hebi-admin-", dir="/tmp"))
    config_path = local_system.write_config(base, nginx=nginx_mode)
    config = yaml.safe_load(config_path.read_text())
    config["gateway"].setdefault("auth", {})["admin_users"] = ["ada"]
    # Idle after a second, but culled only when asked (test_an_admin_culls_idle_sessions): the culler's
    # own round would come an hour later.
    config["gateway"].update(idle_timeout=1, cull_interval=3600)
    config_path.write_text(yaml.safe_dump(config))
    for user, password in PASSWORDS.items():
        local_system.add_user(config_path, user, password)
    gateway = local_system.Gateway(config_path)
    try:
        yield Hebi(config_path, gateway)
    finally:
        gateway.stop()
        local_system.stop_all_sessions(config_path)
        shutil.rmtree(base, ignore_errors=True)


def start_session(hebi: Hebi, http: requests.Session, user: str) -> None:
    whoami = http.get(f"{hebi.url}/api/whoami", timeout=120)
    assert whoami.status_code == 200 and whoami.json()["user"] == user


def test_a_users_token_cannot_stop_another_users_session_and_an_admins_read_token_cannot_stop(hebi):
    ada, alice, bob = hebi.login("ada"), hebi.login("alice"), hebi.login("bob")
    start_session(hebi, alice, "alice")
    start_session(hebi, bob, "bob")
    assert {"alice", "bob"} <= hebi.running()

    assert hebi.api("GET", "me", http=ada).json() | {"scopes": None} == {
        "user": "ada", "admin": True, "scopes": None, "via": "login", "token": None}
    assert hebi.api("GET", "me", http=alice).json()["admin"] is False

    mine = hebi.token(alice, ["self"], note="alice's script")
    assert mine["token"].startswith("hebi_") and mine["user"] == "alice" and mine["scopes"] == ["self"]
    me = hebi.api("GET", "me", token=mine["token"]).json()
    assert me == {"user": "alice", "admin": False, "scopes": ["self"], "via": "token", "token": mine["id"]}
    # Her token sees her own session only, and cannot stop bob's, whatever scopes she asks for.
    listed = hebi.api("GET", "sessions", token=mine["token"]).json()["sessions"]
    assert [s["user"] for s in listed] == ["alice"] and listed[0]["state"] == "running" and listed[0]["started_at"]
    refused = hebi.api("DELETE", "sessions/bob", token=mine["token"])
    assert refused.status_code == 403 and refused.json()["error"].startswith("forbidden")
    wide = hebi.token(alice, ["sessions:read", "sessions:stop"])
    assert [s["user"] for s in hebi.api("GET", "sessions", token=wide["token"]).json()["sessions"]] == ["alice"]
    assert hebi.api("DELETE", "sessions/bob", token=wide["token"]).status_code == 403
    assert hebi.api("DELETE", "sessions/bob", http=alice).status_code == 403
    for asked in ({"scopes": ["users:read"]}, {"scopes": ["self"], "user": "bob"}):
        assert hebi.api("POST", "tokens", http=alice, json=asked).status_code == 403
    assert hebi.api("GET", "users", token=wide["token"]).status_code == 403
    assert "bob" in hebi.running()
    assert bob.get(f"{hebi.url}/api/whoami", timeout=60).status_code == 200

    # An admin's token with sessions:read lists every session but stops none.
    reader = hebi.token(ada, ["sessions:read"])
    users = {s["user"]: s for s in hebi.api("GET", "sessions", token=reader["token"]).json()["sessions"]}
    assert users["alice"]["state"] == users["bob"]["state"] == "running"
    assert set(users["bob"]) >= {"started_at", "last_activity"}
    assert hebi.api("DELETE", "sessions/bob", token=reader["token"]).status_code == 403
    assert "bob" in hebi.running()

    # An admin's token with sessions:stop stops bob's session; alice's own token stops hers.
    stopper = hebi.token(ada, ["sessions:stop"])
    stopped = hebi.api("DELETE", "sessions/bob", token=stopper["token"])
    assert stopped.status_code == 200 and stopped.json() == {"user": "bob", "stopped": True}
    assert "bob" not in hebi.running() and "alice" in hebi.running()
    assert hebi.api("DELETE", "sessions/bob", token=stopper["token"]).status_code == 404
    assert hebi.api("DELETE", "sessions/alice", token=mine["token"]).status_code == 200
    assert "alice" not in hebi.running()
    # bob comes back: the gateway starts his session again (it forgot the stopped one).
    start_session(hebi, bob, "bob")


def test_revoked_and_expired_tokens_are_refused(hebi):
    alice, ada = hebi.login("alice"), hebi.login("ada")
    made = hebi.token(alice, ["self"])
    assert hebi.api("GET", "sessions", token=made["token"]).status_code == 200
    assert made["id"] in [t["id"] for t in hebi.api("GET", "tokens", http=alice).json()["tokens"]]
    # Nobody else can revoke it, or learn it exists; its owner can.
    bob_token = hebi.token(hebi.login("bob"), ["self"])
    assert hebi.api("DELETE", f"tokens/{made['id']}", token=bob_token["token"]).status_code == 404
    assert hebi.api("GET", "sessions", token=made["token"]).status_code == 200
    revoked = hebi.api("DELETE", f"tokens/{made['id']}", http=alice)
    assert revoked.status_code == 200 and revoked.json() == {"id": made["id"], "revoked": True}
    after = hebi.api("GET", "sessions", token=made["token"])
    assert after.status_code == 401 and "not valid" in after.json()["error"]
    # An admin revokes another user's token.
    again = hebi.token(alice, ["self"])
    assert hebi.api("DELETE", f"tokens/{again['id']}", http=ada).status_code == 200
    assert hebi.api("GET", "me", token=again["token"]).status_code == 401

    short = hebi.token(alice, ["self"], expires_in=1)
    time.sleep(2)
    assert hebi.api("GET", "me", token=short["token"]).status_code == 401


def test_the_cli_makes_lists_and_revokes_tokens_the_running_gateway_honours(hebi):
    made = hebi.cli("token", "create", "--user", "ada", "--scope", "users:read", "--note", "monitoring")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    users = hebi.api("GET", "users", token=secret)
    assert users.status_code == 200
    names = {u["name"]: u for u in users.json()["users"]}
    assert set(names) >= {"ada", "alice", "bob"} and names["ada"]["admin"] and not names["alice"]["admin"]
    assert names["alice"]["uid"] and "password" not in names["alice"]
    # users:read is not sessions:read.
    assert hebi.api("GET", "sessions", token=secret).status_code == 403
    token_id = hebi.api("GET", "me", token=secret).json()["token"]
    assert token_id in hebi.cli("token", "list", "--user", "ada").stdout
    # Only sha256 digests are stored.
    stored = (hebi.config_path.parent / "gateway" / "tokens.json").read_text()
    assert secret not in stored and secret[5:] not in stored
    assert hebi.cli("token", "revoke", token_id).returncode == 0
    assert hebi.api("GET", "users", token=secret).status_code == 401
    # A user who is no admin gets no admin-only scope from the CLI either.
    refused = hebi.cli("token", "create", "--user", "alice", "--scope", "users:read")
    assert refused.returncode == 2 and "admin" in refused.stderr


def test_an_admin_adds_and_removes_a_local_account(hebi):
    ada, alice = hebi.login("ada"), hebi.login("alice")
    assert hebi.api("GET", "users", http=alice).status_code == 403
    assert hebi.api("POST", "users", http=alice, json={"name": "carol"}).status_code == 403
    added = hebi.api("POST", "users", http=ada, json={"name": "carol", "groups": ["savu-users"]})
    assert added.status_code == 201, added.text
    password = added.json()["password"]
    assert added.json()["user"]["name"] == "carol" and added.json()["user"]["groups"] == ["savu-users"]
    carol = hebi.login("carol", password)
    carol_token = hebi.token(carol, ["self"])
    assert hebi.api("POST", "users", http=ada, json={"name": "carol"}).status_code == 409
    assert hebi.cli("users").stdout.split() == ["ada", "alice", "bob", "carol"]

    assert hebi.api("DELETE", "users/carol", http=alice).status_code == 403
    removed = hebi.api("DELETE", "users/carol", http=ada)
    assert removed.status_code == 200 and removed.json() == {"user": "carol", "removed": True}
    # Her login, her token and her account are gone.
    assert hebi.api("GET", "me", http=carol).status_code == 401
    assert hebi.api("GET", "me", token=carol_token["token"]).status_code == 401
    refused = requests.post(f"{hebi.url}/gateway/login", data={"username": "carol", "password": password},
                            allow_redirects=False, timeout=30)
    assert refused.status_code == 401
    assert hebi.api("DELETE", "users/carol", http=ada).status_code == 404
    assert hebi.api("DELETE", "users/ada", http=ada).status_code == 409


def test_bad_input_gets_a_4xx_json_error_and_changes_nothing(hebi):
    ada = hebi.login("ada")
    tokens_before = hebi.api("GET", "tokens", http=ada).json()
    users_before = hebi.cli("users").stdout
    bad_tokens = [{"scopes": "self"}, {"scopes": []}, {"scopes": ["root"]}, {"scopes": [1]},
                  {"scopes": ["self"], "expires_in": -5}, {"scopes": ["self"], "expires_in": "soon"},
                  {"scopes": ["self"], "expires_in": 10**9}, {"scopes": ["self"], "user": "Bad.Name"},
                  {"scopes": ["self"], "note": "x" * 1000}, ["self"]]
    for body in bad_tokens:
        answer = hebi.api("POST", "tokens", http=ada, json=body)
        assert answer.status_code == 400 and answer.json()["error"], body
    for data in ("not json", "{", "x" * 100_000):
        answer = hebi.api("POST", "tokens", http=ada, data=data, headers={"Content-Type": "application/json"})
        assert 400 <= answer.status_code < 500 and answer.json()["error"]
    for body in ({"name": "Bad.Name"}, {"name": ""}, {"name": "dave", "groups": "x"}, {}):
        answer = hebi.api("POST", "users", http=ada, json=body)
        assert answer.status_code == 400 and answer.json()["error"], body
    for path in ("sessions/Bad.Name", "users/..%2F..%2Fetc"):
        answer = hebi.api("DELETE", path, http=ada)
        assert answer.status_code in (400, 404) and answer.json()["error"]
    nowhere = hebi.api("GET", "no-such-thing", http=ada)
    assert nowhere.status_code == 404 and nowhere.json()["error"]
    # A token cannot make tokens; a forged or badly sent one gets nothing.
    own = hebi.token(ada, ["self"])
    assert hebi.api("POST", "tokens", token=own["token"], json={"scopes": ["self"]}).status_code == 403
    hebi.api("DELETE", f"tokens/{own['id']}", http=ada)
    for header in ("Basic YWRhOng=", "Bearer hebi_forged", "Bearer", "token "):
        answer = hebi.api("GET", "sessions", headers={"Authorization": header})
        assert answer.status_code == 401 and answer.json()["error"]
    assert hebi.api("GET", "sessions").status_code == 401
    # Another site's page cannot make the admin's browser make a token (the gateway's CSRF rule).
    csrf = hebi.api("POST", "tokens", http=ada, json={"scopes": ["sessions:stop"]},
                    headers={"Origin": "https://evil.example"})
    assert csrf.status_code == 403 and csrf.json()["error"]
    for body in ({"dry_run": "yes"}, ["dry_run"]):
        cull = hebi.api("POST", "cull", http=ada, json=body)
        assert cull.status_code == 400 and cull.json()["error"]
    assert hebi.api("GET", "tokens", http=ada).json() == tokens_before
    assert hebi.cli("users").stdout == users_before


def test_an_admin_culls_idle_sessions_and_sees_their_last_activity(hebi):
    ada, alice = hebi.login("ada"), hebi.login("alice")
    start_session(hebi, alice, "alice")
    listed = {s["user"]: s for s in hebi.api("GET", "sessions", http=ada).json()["sessions"]}
    assert listed["alice"]["last_activity"] >= listed["alice"]["started_at"]
    time.sleep(2)  # longer than gateway.idle_timeout

    mine = hebi.token(alice, ["self", "sessions:stop"])
    reader = hebi.token(ada, ["sessions:read"])
    for refused in (hebi.api("POST", "cull", http=alice, json={}), hebi.api("POST", "cull", token=mine["token"]),
                    hebi.api("POST", "cull", token=reader["token"])):
        assert refused.status_code == 403 and refused.json()["error"]
    assert "alice" in hebi.running()

    dry = hebi.api("POST", "cull", http=ada, json={"dry_run": True})
    assert dry.status_code == 200, dry.text
    idle = {c["user"]: c for c in dry.json()["culled"]}
    assert idle["alice"]["reason"] == "idle" and idle["alice"]["seconds"] >= 1
    assert "alice" in hebi.running()
    done = hebi.api("POST", "cull", http=ada)
    assert done.status_code == 200 and "alice" in {c["user"] for c in done.json()["culled"]}
    assert "alice" not in hebi.running()
    assert all(s["user"] != "alice" or s["state"] != "running"
               for s in hebi.api("GET", "sessions", http=ada).json()["sessions"])
