"""The Admin area in Chromium through the real gateway and nginx: an admin sees every session and the
local accounts and stops a user's session with its button; a user who is no admin gets no Admin tab, and
the gateway refuses them the admin API even when they go to #/admin."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import local_system
import pytest
import requests
import yaml
from conftest import PASSWORDS, browser_login

pytestmark = pytest.mark.browser
ADMIN, USER = "ada", "bob"


class Hebi:
    def __init__(self, config_path: Path, gateway: local_system.Gateway):
        self.config_path, self.gateway, self.url = config_path, gateway, gateway.url.rstrip("/")

    def running(self) -> set[str]:
        listed = subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(self.config_path), "--json",
                                 "list"], capture_output=True, text=True, check=True).stdout
        return {s["user"] for s in json.loads(listed) if s["state"] == "running"}


@pytest.fixture(scope="module")
def hebi(nginx_mode):
    PASSWORDS.setdefault(ADMIN, "ada-admin-password")
    base = Path(tempfile.mkdtemp(prefix="hebi-adminweb-", dir="/tmp"))
    config_path = local_system.write_config(base, nginx=nginx_mode)
    config = yaml.safe_load(config_path.read_text())
    config["gateway"].setdefault("auth", {})["admin_users"] = [ADMIN]
    config_path.write_text(yaml.safe_dump(config))
    for user in (ADMIN, USER):
        local_system.add_user(config_path, user, PASSWORDS[user])
    gateway = local_system.Gateway(config_path)
    try:
        yield Hebi(config_path, gateway)
    finally:
        gateway.stop()
        local_system.stop_all_sessions(config_path)
        shutil.rmtree(base, ignore_errors=True)


def test_an_admin_stops_a_users_session_from_the_admin_page_and_a_user_sees_no_admin_tab(hebi, browser):
    # bob is working: his session runs.
    bob = requests.Session()
    assert bob.post(f"{hebi.url}/gateway/login", data={"username": USER, "password": PASSWORDS[USER]},
                    allow_redirects=False, timeout=30).status_code == 303
    assert bob.get(f"{hebi.url}/api/whoami", timeout=120).json()["user"] == USER
    assert USER in hebi.running()

    for user in (USER, ADMIN):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        try:
            browser_login(page, hebi, user)
            if user == USER:
                page.wait_for_selector("nav[aria-label=Areas] a:has-text('Jobs')")
                assert page.locator("nav[aria-label=Areas] a:has-text('Admin')").count() == 0
                page.goto(f"{hebi.url}/#/admin")
                page.wait_for_selector("[data-testid=user-name]:has-text('bob')")
                assert page.locator("[data-testid=admin-sessions]").count() == 0
                continue
            page.click("nav[aria-label=Areas] a:has-text('Admin')")
            row = page.locator("[data-testid=admin-sessions] tr[data-user=bob]")
            row.wait_for()
            assert "running" in row.inner_text()
            users = page.locator("[data-testid=admin-users]")
            users.wait_for()
            assert "bob" in users.inner_text() and "admin" in users.locator("tr[data-user=ada]").inner_text()
            page.once("dialog", lambda dialog: dialog.accept())
            row.locator("button:has-text('Stop')").click()
            page.locator("[data-testid=admin-sessions] tr[data-user=bob]").wait_for(state="detached")
            assert USER not in hebi.running() and ADMIN in hebi.running()
        finally:
            context.close()
