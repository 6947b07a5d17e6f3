"""A scientist's jobs through slurmrestd when its side of things goes wrong: the session's token expires
and is renewed, the token is one Slurm never issued (or another user's), slurmrestd or the controller
behind it stops. Each time the API says so with a 503 that names the cause, keeps every job, and
carries on once it is put right - without being restarted. Real slurmrestd and Slurm (support_slurmrest.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from jobs_support import ApiProcess, dataset, slurm, write_session  # noqa: F401 - session fixture
from support_slurmrest import SlurmRest, slurm_script, slurmrest  # noqa: F401 - session fixture

ENDED = {"finished", "failed", "lost", "cancelled", "timeout"}


class RestSession:
    def __init__(self, rest: SlurmRest, base: Path):
        self.rest = rest
        self.base = base
        self.token_file = base / "slurm-token"
        self.api: ApiProcess | None = None

    def start(self) -> ApiProcess:
        overrides = {"slurmrest": {"url": self.rest.url, "token_file": str(self.token_file), "timeout": 30}}
        self.api = ApiProcess(write_session(self.base, "slurmrest", **overrides)).start()
        return self.api

    def submit_body(self, name: str) -> dict:
        return {"process_list": "processing/tomo.nxs", "mode": "full", "output": "output/runs",
                "dataset": dataset(self.base, name, seconds=0.2, steps=1)}


@pytest.fixture
def session(slurmrest):
    base = Path(tempfile.mkdtemp(prefix="hebi-slurmrest-", dir="/tmp"))
    rest_session = RestSession(slurmrest, base)
    try:
        yield rest_session
    finally:
        if rest_session.api is not None:
            rest_session.api.stop()
        shutil.rmtree(base, ignore_errors=True)


def expiry(token: str) -> float:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def foreign_token(user: str = "root") -> str:
    """A well-formed HS256 JWT, valid for an hour, signed with a key this cluster does not have."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    now = int(time.time())
    signed = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps({"iat": now, "exp": now + 3600, "sun": user}).encode())
    return signed + "." + part(hmac.new(b"another cluster's key", signed.encode(), hashlib.sha256).digest())


def assert_unavailable_naming(api: ApiProcess, session: RestSession, *words: str) -> None:
    refused = api.post("/api/jobs", json=session.submit_body("refused.nxs"))
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error.startswith("cluster unavailable") and all(word in error for word in words), error
    # The queues' answer is kept for poll_interval: the reason may be the previous one for that long.
    deadline = time.monotonic() + 10
    modes = api.get("/api/cluster").json()["modes"]
    while not all(all(word in mode.get("reason", "") for word in words) for mode in modes) and time.monotonic() < deadline:
        time.sleep(0.1)
        modes = api.get("/api/cluster").json()["modes"]
    assert not any(mode["available"] for mode in modes)
    assert all(all(word in mode["reason"] for word in words) for mode in modes), modes


def test_an_expired_token_is_named_in_a_503_and_a_renewed_file_is_used_without_a_restart(session):
    token = session.rest.token(lifespan=15)
    session.token_file.write_text(token + "\n")
    api = session.start()
    job = api.submit(dataset(session.base, "across-expiry.nxs", seconds=25, steps=25))
    api.wait(job["id"], "running", timeout=60)
    time.sleep(max(expiry(token) + 1 - time.time(), 0))  # the token is now past its end

    assert_unavailable_naming(api, session, "token", str(session.token_file), "expired")
    listing = api.get("/api/jobs", params={"refresh": 1}).json()
    assert listing["cluster"]["available"] is False and "expired" in listing["cluster"]["unavailable"]["slurmrest"]
    assert [item["id"] for item in listing["jobs"]] == [job["id"]], "the refused submission left a job behind"
    assert listing["jobs"][0]["state"] == "running", "the job keeps its last known state"

    session.rest.write_token(session.token_file)  # the renewal, as a site's token service would do it
    done = api.wait(job["id"], ENDED, timeout=120)
    assert done["state"] == "finished" and done["end"]["exit_code"] == 0, done
    assert api.get("/api/jobs").json()["cluster"]["available"] is True
    again = api.submit(dataset(session.base, "after-renewal.nxs", seconds=0.2, steps=1))
    assert api.wait(again["id"], ENDED, timeout=90)["state"] == "finished"


@pytest.mark.parametrize("token", ["foreign", "other user's"])
def test_a_token_slurm_does_not_accept_gets_503_saying_so(session, token):
    session.token_file.write_text(foreign_token() if token == "foreign" else session.rest.token(user="nobody"))
    api = session.start()
    assert_unavailable_naming(api, session, "did not accept the token", str(session.token_file))
    assert api.get("/api/jobs").json()["total"] == 0

    session.rest.write_token(session.token_file)
    job = api.submit(dataset(session.base, "accepted.nxs", seconds=0.2, steps=1))
    assert api.wait(job["id"], ENDED, timeout=90)["state"] == "finished"


def test_a_missing_or_garbled_token_file_gets_503_naming_the_file(session):
    api = session.start()  # no token file yet
    assert_unavailable_naming(api, session, "cannot read", str(session.token_file))
    session.token_file.write_text("not a token\n")
    assert_unavailable_naming(api, session, "not a JWT", str(session.token_file))


@pytest.mark.parametrize("stopped", ["slurmrestd", "slurmctld"])
def test_slurmrestd_or_its_controller_stopped_gives_503_loses_nothing_and_works_once_started(session, stopped):
    session.rest.write_token(session.token_file)
    api = session.start()
    job = api.submit(dataset(session.base, "through-a-stop.nxs", seconds=12, steps=12))
    api.wait(job["id"], "running", timeout=60)
    if stopped == "slurmrestd":
        session.rest.stop()
        words = ("slurmrestd", session.rest.url, "cannot be reached")
    else:
        assert slurm_script("stop-controller").returncode == 0
        words = ("slurmrestd cannot reach slurmctld",)
    try:
        assert_unavailable_naming(api, session, *words)
        listing = api.get("/api/jobs", params={"refresh": 1}).json()
        assert listing["total"] == 1 and listing["jobs"][0]["state"] == "running"
        assert listing["cluster"]["available"] is False
        cancel = api.post(f"/api/jobs/{job['id']}/cancel")
        assert cancel.status_code == 503, "a cancel that did not reach Slurm must not look done"
    finally:
        started = session.rest.start() if stopped == "slurmrestd" else slurm_script("start")
        assert stopped == "slurmrestd" or started.returncode == 0, started.stderr
    done = api.wait(job["id"], ENDED, timeout=120)
    assert done["state"] == "finished" and done["end"]["exit_code"] == 0, done
    assert api.get("/api/jobs").json()["cluster"]["available"] is True
    again = api.submit(dataset(session.base, "after-the-stop.nxs", seconds=0.2, steps=1))
    assert api.wait(again["id"], ENDED, timeout=90)["state"] == "finished"
