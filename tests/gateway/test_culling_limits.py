"""Culling and start limits through the real gateway (hebi-gateway serve, the local launcher, real
sessions behind nginx): an idle session is stopped and an active one is not, the user coming back is
told why, a job started before the cull finishes; max_age; ``pod_launcher cull``; a start storm under
gateway.concurrent_start_limit; gateway.max_sessions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import local_system
import pytest
import requests
import yaml
from conftest import browser_like_session
from make_sample_data import write_nxtomo, write_sample_process_list
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "scrape-token-for-the-culling-tests"
HTML = {"Accept": "text/html"}


class Site:
    def __init__(self, base: Path, nginx: str, users: list[str], **gateway):
        self.config_path = local_system.write_config(base, nginx=nginx)
        token_file = base / "metrics-token"
        token_file.write_text(TOKEN)
        os.chmod(token_file, 0o600)
        config = yaml.safe_load(self.config_path.read_text())
        config["gateway"].update(gateway, metrics_token_file=str(token_file))
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        for user in users:
            local_system.add_user(self.config_path, user, f"{user}-password-1")
        self.gateway = local_system.Gateway(self.config_path)
        self.url = self.gateway.url.rstrip("/")

    def login(self, user: str) -> requests.Session:
        http = browser_like_session()
        answer = http.post(f"{self.url}/gateway/login", data={"username": user, "password": f"{user}-password-1"},
                           allow_redirects=False, timeout=30)
        assert answer.status_code == 303, answer.text
        return http

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(self.config_path), *args],
                              capture_output=True, text=True, timeout=120)

    def sessions(self) -> dict[str, dict]:
        listed = self.cli("--json", "list")
        assert listed.returncode == 0, listed.stderr
        return {s["user"]: s for s in json.loads(listed.stdout)}

    def metrics(self) -> dict[tuple, float]:
        text = requests.get(f"{self.url}/gateway/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def log(self) -> str:
        return (self.config_path.parent / "gateway.log").read_text(errors="replace")

    def close(self) -> None:
        self.gateway.stop()
        local_system.stop_all_sessions(self.config_path)


@pytest.fixture
def site_factory(nginx_mode, tmp_path_factory):
    made: list[Site] = []

    def make(users: list[str], **gateway) -> Site:
        # Short base path: the sessions' Unix sockets live under it.
        site = Site(tmp_path_factory.mktemp("cull"), nginx_mode, users, **gateway)
        made.append(site)
        return site
    yield make
    for site in made:
        site.close()


def wait_until(what, condition, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"never happened: {what}")


def test_idle_session_is_culled_the_active_one_is_not_and_its_job_finishes(site_factory):
    site = site_factory(["alice", "bob"], idle_timeout=6, cull_interval=1)
    folders = local_system.user_folders(site.config_path, "alice")
    write_nxtomo(folders["data"] / "scan.nxs", angles=91, rows=8, columns=96)
    write_sample_process_list(folders["processing"] / "recon.nxs")
    alice, bob = site.login("alice"), site.login("bob")
    job = alice.post(f"{site.url}/api/jobs", json={"process_list": "processing/recon.nxs", "dataset": "data/scan.nxs",
                                                   "output": "output/recon", "mode": "preview", "preview": 3}, timeout=120)
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    assert bob.get(f"{site.url}/api/whoami", timeout=120).status_code == 200
    bob_started = site.sessions()["bob"]["started_at"]

    # bob keeps using his session; alice does nothing until the culler stops hers.
    stop = threading.Event()

    def keep_busy():
        while not stop.is_set():
            bob.get(f"{site.url}/api/whoami", timeout=60)
            stop.wait(0.5)
    busy = threading.Thread(target=keep_busy)
    busy.start()
    try:
        wait_until("alice's session culled", lambda: "alice" not in site.sessions())
    finally:
        stop.set()
        busy.join()
    assert site.sessions()["bob"]["started_at"] == bob_started  # never stopped
    assert "culled the session of alice" in site.log()
    assert site.metrics()[("hebi_session_culls_total", (("reason", "idle"),))] == 1

    # Coming back, alice is told what happened, also after a gateway restart.
    site.gateway.stop()
    site.gateway = local_system.Gateway(site.config_path)
    site.url = site.gateway.url.rstrip("/")
    alice = site.login("alice")
    page = alice.get(f"{site.url}/", headers=HTML, timeout=60)
    assert page.status_code == 200
    assert "Your session was stopped after" in page.text and "idle; your jobs kept running" in page.text

    def finished():
        answer = alice.get(f"{site.url}/api/jobs/{job_id}", timeout=120)
        return answer.status_code == 200 and answer.json()["state"] not in ("queued", "running") and answer.json()
    ended = wait_until("alice's job ended", finished, 300)
    assert ended["state"] == "finished", ended
    # Once back in her session, the notice is gone.
    wait_until("alice's page served", lambda: "Starting your session" not in alice.get(
        f"{site.url}/", headers=HTML, timeout=60).text)
    assert "stopped after" not in alice.get(f"{site.url}/", headers=HTML, timeout=60).text


def test_max_age_stops_even_a_busy_session_and_says_so(site_factory):
    site = site_factory(["alice"], max_age=4, cull_interval=1)
    alice = site.login("alice")
    assert alice.get(f"{site.url}/api/whoami", timeout=120).status_code == 200

    def culled():
        alice.get(f"{site.url}/api/whoami", timeout=60)  # busy all along
        return "culled the session of alice" in site.log()
    wait_until("alice's session culled for its age", culled)
    page = wait_until("the notice", lambda: (t := alice.get(f"{site.url}/", headers=HTML, timeout=60).text)
                      and "Your session was stopped" in t and t)
    assert "after running for" in page and "your jobs kept running" in page
    assert site.metrics()[("hebi_session_culls_total", (("reason", "max_age"),))] >= 1


def test_pod_launcher_cull_lists_with_dry_run_then_stops(site_factory):
    site = site_factory(["alice"])  # no culling configured: the admin culls by hand
    alice = site.login("alice")
    assert alice.get(f"{site.url}/api/whoami", timeout=120).status_code == 200
    assert site.cli("cull", "--dry-run").stdout.startswith("no session to cull")
    time.sleep(6)  # alice's idle time grows past --idle 2 (the activity file is written every 5 s)
    dry = site.cli("cull", "--idle", "2", "--dry-run")
    assert dry.returncode == 0 and "alice: would be stopped (idle" in dry.stdout, dry.stdout + dry.stderr
    assert site.sessions()["alice"]["state"] == "running"
    done = site.cli("cull", "--idle", "2")
    assert done.returncode == 0 and "alice: stopped" in done.stdout
    assert "alice" not in site.sessions()
    page = alice.get(f"{site.url}/", headers=HTML, timeout=60)
    assert "Your session was stopped after" in page.text
    assert site.cli("cull", "--idle", "-1").returncode == 2


def test_a_start_storm_gets_429_with_retry_after_and_everyone_gets_in(site_factory):
    users = ["alice", "bob", "carol", "dave"]
    site = site_factory(users, concurrent_start_limit=1, start_retry_after=1)
    logins = {user: site.login(user) for user in users}
    first: dict[str, requests.Response] = {}
    barrier = threading.Barrier(len(users))

    def arrive(user: str, browser: bool):
        barrier.wait()
        first[user] = (logins[user].get(f"{site.url}/", headers=HTML, timeout=120) if browser
                       else logins[user].get(f"{site.url}/api/whoami", timeout=120))
    threads = [threading.Thread(target=arrive, args=(u, i % 2 == 0)) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refused = {u: r for u, r in first.items() if r.status_code == 429}
    assert len(refused) >= len(users) - 1, {u: r.status_code for u, r in first.items()}
    for answer in refused.values():
        assert answer.headers["Retry-After"] == "1"
        if "text/html" in answer.headers["Content-Type"]:
            assert 'http-equiv="refresh" content="1"' in answer.text and "hebi is busy" in answer.text
        else:
            assert "Retry in 1 s" in answer.json()["error"] and answer.json()["limit"] == "concurrent_starts"
    assert any("text/html" in r.headers["Content-Type"] for r in refused.values())
    assert any("application/json" in r.headers["Content-Type"] for r in refused.values())

    for user in users:  # each retries as told, and gets in
        def whoami(user=user):
            answer = logins[user].get(f"{site.url}/api/whoami", timeout=120)
            if answer.status_code == 429:
                time.sleep(int(answer.headers["Retry-After"]))
            return answer.status_code == 200 and answer.json()
        assert wait_until(f"{user} in", whoami)["user"] == user
    assert site.metrics()[("hebi_session_starts_refused_total", (("limit", "concurrent_starts"),))] >= len(users) - 1
    assert set(site.sessions()) == set(users)


def test_max_sessions_refuses_a_new_user_with_the_reason_until_a_session_ends(site_factory):
    site = site_factory(["alice", "bob"], max_sessions=1)
    alice, bob = site.login("alice"), site.login("bob")
    assert alice.get(f"{site.url}/api/whoami", timeout=120).status_code == 200
    api = bob.get(f"{site.url}/api/whoami", timeout=60)
    assert api.status_code == 503 and api.json()["limit"] == "max_sessions" and "Retry-After" in api.headers
    assert "as many sessions as it may (1)" in api.json()["error"]
    page = bob.get(f"{site.url}/", headers=HTML, timeout=60)
    assert page.status_code == 503 and "as many sessions as it may (1)" in page.text
    assert alice.get(f"{site.url}/api/whoami", timeout=60).status_code == 200  # hers goes on
    assert "refused by gateway.max_sessions" in site.log()
    assert site.metrics()[("hebi_session_starts_refused_total", (("limit", "max_sessions"),))] == 2

    assert site.cli("stop", "-u", "alice").returncode == 0
    assert bob.get(f"{site.url}/api/whoami", timeout=120).json()["user"] == "bob"
