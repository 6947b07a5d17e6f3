"""Operations: /gateway/metrics (read with the Prometheus client's own parser), who may read it, JSON
logs, and /gateway/health with the launcher's state. The first test runs the real gateway (hebi-gateway
serve, the local launcher, a real session behind nginx); the others run the gateway in-process in front
of a stand-in session, to give the launcher states a real backend reaches only by failing."""
from __future__ import annotations

import importlib
import io
import json
import logging
import os

import local_system
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import PASSWORDS, browser_like_session, run_async
from prometheus_client.parser import text_string_to_metric_families

from hebi_common.config import HebiConfig, LoggingConfig
from hebi_common.logs import setup_logging
from hebi_gateway.accounts import UsersFile
from hebi_gateway.app import SESSIONS, create_app
from pod_launcher import Launcher, LauncherError, SessionInfo

TOKEN = "scrape-token-of-the-facility-prometheus"


def samples(text: str) -> dict[tuple, float]:
    """Every sample by (name, sorted labels), parsed by prometheus_client's own text parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_a_failed_login_and_a_proxied_request_through_the_real_gateway(tmp_path, nginx_mode):
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    config_path = local_system.write_config(tmp_path / "system", nginx=nginx_mode)
    local_system.add_user(config_path, "alice", PASSWORDS["alice"])
    gateway = local_system.Gateway(config_path, env={"HEBI_GATEWAY__METRICS_TOKEN_FILE": str(token_file),
                                                     "HEBI_LOGGING__FORMAT": "json"})
    url = gateway.url.rstrip("/")
    try:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": TOKEN}):
            refused = requests.get(f"{url}/gateway/metrics", headers=headers, timeout=10)
            assert refused.status_code == 403 and "hebi_" not in refused.text
            assert refused.json()["error"]
        scrape = {"Authorization": f"Bearer {TOKEN}"}
        before = samples(requests.get(f"{url}/gateway/metrics", headers=scrape, timeout=10).text)
        assert before[("hebi_login_failures_total", (("reason", "refused"),))] == 0
        assert before[("hebi_sessions", (("state", "running"),))] == 0

        wrong = requests.post(f"{url}/gateway/login", data={"username": "alice", "password": "not-hers"},
                              allow_redirects=False, timeout=10)
        assert wrong.status_code == 401
        http = browser_like_session()
        assert http.post(f"{url}/gateway/login", data={"username": "alice", "password": PASSWORDS["alice"]},
                         allow_redirects=False, timeout=10).status_code == 303
        whoami = http.get(f"{url}/api/whoami", timeout=60)
        assert whoami.status_code == 200 and whoami.json()["user"] == "alice"

        answer = requests.get(f"{url}/gateway/metrics", headers=scrape, timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
        after = samples(answer.text)
        assert after[("hebi_login_failures_total", (("reason", "refused"),))] == 1
        proxied = ("hebi_proxy_request_duration_seconds_count", (("method", "GET"), ("proxy", "gateway"), ("status", "2xx")))
        assert after[proxied] == 1
        assert after[("hebi_session_starts_total", (("outcome", "started"),))] == 1
        assert after[("hebi_session_start_duration_seconds_count", ())] == 1
        assert after[("hebi_session_start_duration_seconds_sum", ())] > 0
        assert after[("hebi_sessions", (("state", "running"),))] == 1
        assert after[("hebi_launcher_healthy", (("backend", "local"),))] == 1

        health = requests.get(f"{url}/gateway/health", timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "launcher": {"backend": "local", "ok": True}}
    finally:
        gateway.stop()
        local_system.stop_all_sessions(config_path)
    # logging.format json: every line the gateway logged is one JSON object, the failed login among them.
    lines = [json.loads(line) for line in (config_path.parent / "gateway.log").read_text().splitlines() if line]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["level"] == "warning" and "failed login" in line["message"] and "alice" in line["message"]
               for line in lines)


def logged(write) -> list[str]:
    """The lines hebi's log handler writes while ``write()`` runs (its stream is the process's stderr)."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_hebi", False))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        write()
    finally:
        handler.setStream(previous)
    return buffer.getvalue().splitlines()


def test_json_log_lines_carry_the_exception_and_stay_one_line():
    log = setup_logging("test", "info", "json")

    def write():
        try:
            raise ValueError("a\nmultiline problem")
        except ValueError:
            log.exception("it failed for %s", "bøb")
    try:
        lines = logged(write)
        assert len(lines) == 1
        entry = json.loads(lines[0])
        assert entry["level"] == "error" and entry["message"] == "it failed for bøb" and entry["component"] == "test"
        assert "ValueError: a\nmultiline problem" in entry["exception"]
    finally:
        setup_logging("test", "info", "text")


@pytest.mark.parametrize("service", ["api", "dataserver"])
def test_the_session_services_log_json_when_configured(service, session_config, session_context):
    config = session_config.model_copy(update={"logging": LoggingConfig(level="info", format="json")})
    try:
        importlib.import_module(f"hebi_{service}.app").create_app(config, session_context)
        [line] = logged(lambda: logging.getLogger(f"hebi.{service}").warning("a problem with %s", "/data/x.nxs"))
        entry = json.loads(line)
        assert entry["component"] == service and entry["message"] == "a problem with /data/x.nxs"
    finally:
        setup_logging("test", "info", "text")


# -- in-process: the gateway in front of a stand-in session -------------------------------------------

class StandInLauncher(Launcher):
    name = "stand-in"

    def __init__(self, url: str):
        self.url, self.started, self.report, self.refuse = url, set(), {"ok": True}, False

    def start(self, identity, profile=None):
        if self.refuse:
            raise LauncherError("no capacity left")
        self.started.add(identity.user)
        return self.status(identity.user)

    def status(self, user):
        if user in self.started:
            return SessionInfo(user=user, state="running", url=self.url, secret="s" * 32, backend=self.name)
        return SessionInfo(user=user, state="stopped", backend=self.name)

    def stop(self, user):
        return self.started.discard(user) is None

    def list(self):
        return [self.status(u) for u in sorted(self.started)]

    def logs(self, user, lines=100):
        return ""

    def health(self):
        if isinstance(self.report, Exception):
            raise self.report
        return self.report

    def progress(self, user):
        return [f"the stand-in's own progress of {user}"]


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path})


def run(scenario, tmp_path, **gateway):
    async def main():
        upstream = TestServer(web.Application())
        upstream.app.router.add_route("*", "/{tail:.*}", echo)
        await upstream.start_server()
        settings = HebiConfig.model_validate({"gateway": dict({"state_dir": str(tmp_path / "gw")}, **gateway)})
        users = UsersFile(tmp_path / "gw" / "users.yaml")
        for user in ("alice", "bob"):
            users.set_password(user, f"{user}-password", uid=20001 if user == "alice" else 20002)
        launcher = StandInLauncher(str(upstream.make_url("")).rstrip("/"))
        client = TestClient(TestServer(create_app(settings, launcher)))
        await client.start_server()
        try:
            await scenario(client, launcher)
        finally:
            await client.close()
            await upstream.close()
    run_async(main)


async def login(client, user):
    answer = await client.post("/gateway/login", data={"username": user, "password": f"{user}-password"},
                               allow_redirects=False)
    assert answer.status == 303


def test_metrics_for_configured_addresses_never_for_a_forwarded_one(tmp_path):
    async def scenario(client, launcher):
        assert (await client.get("/gateway/metrics")).status == 200  # the test client is 127.0.0.1
    run(scenario, tmp_path, metrics_addresses=["127.0.0.0/8"])

    async def forwarded(client, launcher):
        answer = await client.get("/gateway/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
        assert answer.status == 403
    run(forwarded, tmp_path, metrics_addresses=["10.0.0.0/8"], trust_forwarded_proto=True)


def test_metrics_for_an_admin_not_for_other_users(tmp_path):
    async def scenario(client, launcher):
        await login(client, "bob")
        assert (await client.get("/gateway/metrics")).status == 403
        client.session.cookie_jar.clear()
        await login(client, "alice")
        answer = await client.get("/gateway/metrics")
        assert answer.status == 200 and "hebi_sessions" in await answer.text()
    run(scenario, tmp_path, auth={"admin_users": ["alice"]})


def test_a_failed_start_is_counted_and_the_failing_launcher_shown_by_health(tmp_path):
    async def scenario(client, launcher):
        launcher.refuse = True
        await login(client, "alice")
        assert (await client.get("/api/whoami")).status == 503
        launcher.report = {"ok": False, "watches": {"pods": {"state": "stalled", "quiet_seconds": 95.0}}}
        health = await client.get("/gateway/health")
        assert health.status == 503
        assert await health.json() == {"status": "failing", "launcher": {
            "backend": "stand-in", "ok": False, "watches": {"pods": {"state": "stalled", "quiet_seconds": 95.0}}}}
        found = samples(await (await client.get("/gateway/metrics")).text())
        assert found[("hebi_session_starts_total", (("outcome", "failed"),))] == 1
        assert found[("hebi_session_starts_total", (("outcome", "started"),))] == 0
        assert found[("hebi_sessions", (("state", "running"),))] == 0
        assert found[("hebi_launcher_healthy", (("backend", "stand-in"),))] == 0
        # A report that itself fails is a failing launcher, not a 500.
        launcher.report = RuntimeError("informer thread died")
        health = await client.get("/gateway/health")
        assert health.status == 503 and (await health.json())["launcher"]["ok"] is False

        launcher.report, launcher.refuse = {"ok": True}, False
        assert (await client.get("/gateway/health")).status == 200
    run(scenario, tmp_path, metrics_addresses=["127.0.0.1"])


@pytest.mark.parametrize("addresses", [["not an address"], ["10.0.0.0/33"]])
def test_a_bad_metrics_address_is_refused_at_start(addresses):
    with pytest.raises(ValueError, match="metrics_addresses"):
        HebiConfig.model_validate({"gateway": {"metrics_addresses": addresses}})


def test_counting_starts_hides_nothing_of_the_backend(tmp_path):
    async def scenario(client, launcher):
        measured = client.app[SESSIONS].launcher
        assert measured.progress("alice") == ["the stand-in's own progress of alice"]  # not Launcher's default
        assert measured.name == "stand-in" and measured.health() is launcher.report
    run(scenario, tmp_path)
