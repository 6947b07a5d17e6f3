"""The profile picker (hebi_gateway/profiles.py): with more than one profile offered, a browser's first
page load shows the choice with the user's last one checked, and the form starts the session with the
profile picked; API calls start with the launcher's own choice; a form from another origin, an unknown
profile and an anonymous post change nothing."""
import asyncio
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient, TestServer
from conftest import run_async

from hebi_common.config import HebiConfig
from hebi_gateway.accounts import UsersFile
from hebi_gateway.app import create_app
from pod_launcher import Launcher, Profile, SessionInfo

HTML = {"Accept": "text/html"}


class ProfiledLauncher(Launcher):
    """Records each start's profile; its sessions never come up (the picker is all this tests)."""

    name = "profiled"

    def __init__(self, offered=("standard", "large")):
        self.offered = [Profile(n, n.title(), f"the {n} one", default=n == "standard") for n in offered]
        self.starts: list[tuple[str, str | None]] = []
        self.last = {"alice": "large"}

    def profiles(self):
        return self.offered

    def last_profile(self, user):
        return self.last.get(user)

    def start(self, identity, profile=None):
        self.starts.append((identity.user, profile))
        raise TimeoutError("never comes up")

    def status(self, user):
        return SessionInfo(user=user, state="stopped", backend=self.name)

    def stop(self, user):
        return False

    def list(self):
        return []

    def logs(self, user, lines=100):
        return ""


def scenario(tmp_path, launcher, steps):
    async def main():
        settings = HebiConfig.model_validate({"gateway": {"state_dir": str(tmp_path / "gw")}})
        users = UsersFile(tmp_path / "gw" / "users.yaml")
        for user in ("alice", "bob"):
            users.set_password(user, f"{user}-password")
        client = TestClient(TestServer(create_app(settings, launcher)))
        await client.start_server()
        try:
            await steps(client)
        finally:
            await client.close()
    run_async(main)


async def started(launcher):
    """The start runs in a task of its own (the page does not wait for it); the bound only ends a broken build."""
    for _ in range(200):
        if launcher.starts:
            return
        await asyncio.sleep(0.05)


async def login(client, user):
    answer = await client.post("/gateway/login", data={"username": user, "password": f"{user}-password", "next": "/"},
                               allow_redirects=False)
    assert answer.status == 303


def test_a_browser_picks_its_profile_with_its_last_choice_checked(tmp_path):
    launcher = ProfiledLauncher()

    async def steps(client):
        anonymous = await client.post("/gateway/start", data={"profile": "large", "next": "/"}, allow_redirects=False)
        assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/gateway/login")
        await login(client, "alice")
        page = await client.get("/files?x=1", headers=HTML)
        text = await page.text()
        assert page.status == 200 and "Choose your session" in text
        assert 'value="large" checked' in text and 'value="standard">' in text  # alice's last choice
        assert 'name="next" value="/files?x=1"' in text and launcher.starts == []
        unknown = await client.post("/gateway/start", data={"profile": "gpu", "next": "/"}, allow_redirects=False)
        assert unknown.status == 400 and "standard, large" in (await unknown.json())["error"]
        forged = await client.post("/gateway/start", data={"profile": "large", "next": "/"}, allow_redirects=False,
                                   headers={"Origin": "http://127.0.0.2:9"})
        assert forged.status == 403
        assert launcher.starts == []
        chosen = await client.post("/gateway/start", data={"profile": "standard", "next": "//elsewhere/x"},
                                   allow_redirects=False)
        assert chosen.status == 303 and not urlsplit(chosen.headers["Location"]).netloc  # stays on this site
        await started(launcher)
        assert launcher.starts == [("alice", "standard")]
    scenario(tmp_path, launcher, steps)


def test_api_calls_and_a_single_profile_start_without_a_page(tmp_path):
    launcher = ProfiledLauncher()

    async def steps(client):
        await login(client, "bob")
        answer = await client.get("/api/whoami")
        await started(launcher)
        assert answer.status == 503 and launcher.starts == [("bob", None)]  # the launcher's choice: the default
    scenario(tmp_path, launcher, steps)

    single = ProfiledLauncher(offered=("standard",))

    async def one(client):
        await login(client, "bob")
        page = await client.get("/", headers=HTML)
        await started(single)
        assert "Choose your session" not in await page.text() and single.starts == [("bob", None)]
    scenario(tmp_path / "single", single, one)
