"""The starting page follows a start's real steps: the gateway streams Launcher.progress of the logged-in
user as server-sent events (/gateway/progress) until ready or failed, to that user only; the page loads
the streaming script from the gateway (the CSP allows no inline script) and still refreshes without it."""
import json

from aiohttp.test_utils import TestClient, TestServer
from conftest import run_async

from hebi_common.config import HebiConfig
from hebi_gateway.accounts import UsersFile
from hebi_gateway.app import create_app
from hebi_gateway.pages import starting_page
from pod_launcher import Launcher, Progress, SessionInfo


class SteppingLauncher(Launcher):
    """A start that reaches one more step each time it is asked, as a pod would."""

    name = "stepping"
    STEPS = [("requested", "session requested"), ("scheduled", "Successfully assigned hebi/x to node-1"),
             ("pulled", 'Container image "hebi-api:1" already present on machine'), ("started", "Started container api"),
             ("ready", "session ready")]

    def __init__(self):
        self.asked = {}

    def progress(self, user):
        n = self.asked[user] = self.asked.get(user, 0) + 1
        return [Progress(step, message, 1000.0 + i) for i, (step, message) in enumerate(self.STEPS[:min(n, 5)])]

    def start(self, identity, profile=None):
        return self.status(identity.user)

    def status(self, user):
        return SessionInfo(user=user, state="starting", backend=self.name)

    def stop(self, user):
        return False

    def list(self):
        return []

    def logs(self, user, lines=100):
        return ""


def events(text):
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_the_steps_stream_in_order_to_their_user_only(tmp_path):
    async def main():
        settings = HebiConfig.model_validate({"gateway": {"state_dir": str(tmp_path / "gw")}})
        users = UsersFile(tmp_path / "gw" / "users.yaml")
        users.set_password("alice", "alice-password")
        launcher = SteppingLauncher()
        client = TestClient(TestServer(create_app(settings, launcher)))
        await client.start_server()
        try:
            anonymous = await client.get("/gateway/progress")
            assert anonymous.status == 401
            await client.post("/gateway/login", data={"username": "alice", "password": "alice-password", "next": "/"},
                              allow_redirects=False)
            answer = await client.get("/gateway/progress")
            assert answer.headers["Content-Type"].startswith("text/event-stream")
            received = events(await answer.text())
            assert received[-1][0] == "end"
            lists = [data["steps"] for kind, data in received if kind == "message"]
            assert [s["step"] for s in lists[-1]] == ["requested", "scheduled", "pulled", "started", "ready"]
            assert all(a == b[:len(a)] for a, b in zip(lists, lists[1:], strict=False))  # each list grows
            assert set(launcher.asked) == {"alice"}
            script = await client.get("/gateway/static/progress.js")
            assert script.status == 200 and "EventSource" in await script.text()
        finally:
            await client.close()
    run_async(main)


def test_the_starting_page_loads_the_script_and_refreshes_without_it():
    page = starting_page("alice")
    assert '<script src="/gateway/static/progress.js" defer></script>' in page
    assert "<noscript><meta http-equiv=\"refresh\" content=\"1\"></noscript>" in page
    assert 'id="hebi-progress"' in page
    assert "<script>" not in page  # nothing inline: the CSP would refuse it


def test_the_gateway_lets_go_of_its_launcher_when_it_stops(tmp_path):
    closed = []

    class Closing(SteppingLauncher):
        def close(self):
            closed.append(True)

    async def main():
        settings = HebiConfig.model_validate({"gateway": {"state_dir": str(tmp_path / "gw")}})
        client = TestClient(TestServer(create_app(settings, Closing())))
        await client.start_server()
        assert not closed
        await client.close()
    run_async(main)
    assert closed == [True]  # the kubernetes launcher's watch threads end with the gateway
