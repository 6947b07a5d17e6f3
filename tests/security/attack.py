"""Support for the security suite, the attacker's view of hebi (issue 9): two real users, alice (the
attacker) and bob (the victim), through the real gateway and nginx, plus gateways of the suite's own for
what would disturb the shared one (throttled logins, short idle timeouts, quotas, killed sessions).

Every hostile request goes through ``Attacker.hostile``, which counts it and asserts what holds for
every answer: never a 5xx, an API/data refusal is JSON with an ``error``, and nothing of bob's
(``MARK``, his values) appears in it. After every test, bob's folders are compared with the snapshot
taken before the first attack: file list, sizes, modification times and contents.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import local_system  # noqa: E402 - on sys.path through tests/conftest.py
import numpy as np
import pytest
import requests
import yaml
from conftest import REPO as REPO_ROOT

from hebi_common.config import HebiConfig

#: Appears in bob's files, lists, job and values; never in anything alice is answered.
MARK = "BOB-SECRET-5c1e"
#: A value only bob's series files hold (as float64, also checked as its bytes).
BOB_VALUE = 4242.25
JOB_WAIT = 120  # seconds a small job may take on a busy machine before a test gives up on it


class HostileCount:
    """How many hostile requests the suite sent (reported at the end, asserted >= 300 by the last test)."""

    def __init__(self):
        self.sent = 0
        self.by_finding: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}

    def outcome(self, finding: str, what: str) -> None:
        """How a hostile job ended (refused at submission, or failed when it ran), for the final report."""
        key = f"{finding} {what}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def add(self, n: int = 1, finding: str = "") -> None:
        self.sent += n
        if finding:
            self.by_finding[finding] = self.by_finding.get(finding, 0) + n


COUNT = HostileCount()


def leaks_bob(content: bytes) -> bool:
    value = np.array([BOB_VALUE], "<f8").tobytes()
    return MARK.encode() in content or value in content or b"4242.25" in content


class Attacker(requests.Session):
    """A logged-in user's HTTP client whose hostile requests are counted and checked."""

    def __init__(self, base_url: str, cookies=None):
        super().__init__()
        self.base_url = base_url
        if cookies is not None:
            self.cookies.update(cookies)

    def hostile(self, method: str, path: str, *, expect=None, json_error: bool | None = None,
                finding: str = "", **kwargs) -> requests.Response:
        """Send one hostile request; ``expect`` is a status, a set of them, or "4xx"."""
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 120)
        answer = self.request(method, self.base_url + path, **kwargs)
        COUNT.add(1, finding)
        what = f"{method} {path} -> {answer.status_code}: {answer.text[:300]!r}"
        assert answer.status_code < 500, what
        assert not leaks_bob(answer.content), f"bob's data reached alice: {what}"
        assert not any(leaks_bob(str(v).encode()) for v in answer.headers.values()), what
        if expect == "4xx":
            assert 400 <= answer.status_code < 500, what
        elif isinstance(expect, int):
            assert answer.status_code == expect, what
        elif expect is not None:
            assert answer.status_code in expect, what
        if json_error is None:
            json_error = path.startswith(("/api/", "/data/"))
        if json_error and 400 <= answer.status_code < 500:
            assert answer.headers.get("Content-Type", "").startswith("application/json"), what
            assert "error" in answer.json(), what
        return answer

    def refused(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.hostile(method, path, expect="4xx", **kwargs)


# -- bob's world: his files, lists, a finished job, and the snapshot of it all ---------------------------

def tiny_scan(path: Path, **attrs) -> Path:
    from make_sample_data import write_nxtomo
    write_nxtomo(path, angles=9, rows=2, columns=16, darks=2, flats=2)
    with h5py.File(path, "a") as f:
        f.attrs.update(attrs)
    return path


def simple_list(path: Path, plugins=("NxtomoLoader", "DarkFlatFieldCorrection", "MedianFilter"),
                edit: dict[str, dict] | None = None) -> Path:
    """A process list written by hebi's savu_config, then with plugin parameters set straight in the file
    (``edit``: position -> params), as a hand-crafted upload would be."""
    from hebi_common.savu.catalogue import load_catalogue
    from hebi_common.savu.operations import apply_operations
    from hebi_common.savu.process_list import ProcessList, write_process_list
    process_list, _, _ = apply_operations(ProcessList(), [{"op": "add", "name": n} for n in plugins],
                                          load_catalogue("bundled"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_process_list(process_list, path)
    for position, params in (edit or {}).items():
        set_params(path, position, params)
    return path


def set_params(path: Path, position: str, params: dict) -> None:
    with h5py.File(path, "a") as f:
        node = f[f"entry/plugin/{position}/data"]
        current = json.loads(node[()][0] if node.shape else node[()])
        current.update(params)
        del f[f"entry/plugin/{position}/data"]
        f[f"entry/plugin/{position}/data"] = np.array([json.dumps(current).encode()])


def snapshot(folders: dict[str, Path]) -> dict[str, tuple]:
    seen = {}
    for name, folder in folders.items():
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                st = path.lstat()
                digest = ""
                if path.is_file() and not path.is_symlink():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                seen[f"{name}/{path.relative_to(folder)}"] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return seen


@dataclass
class World:
    system: object
    alice: Attacker
    bob: requests.Session
    alice_folders: dict[str, Path]
    bob_folders: dict[str, Path]
    bob_job: dict
    baseline: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.system.url

    def bob_path(self, ref: str) -> Path:
        root, _, rest = ref.partition("/")
        return self.bob_folders[root] / rest


def wait_for_job(http: requests.Session, url: str, job_id: str, timeout: float = JOB_WAIT) -> dict:
    """Poll until the job has ended (bounded); the job as last seen."""
    deadline = time.monotonic() + timeout
    job = http.get(f"{url}/api/jobs/{job_id}", timeout=60).json()
    while job.get("state") in ("submitting", "queued", "running", "unknown") and time.monotonic() < deadline:
        time.sleep(0.3)
        # refresh=1: the scheduler is asked now, not at the next poll (jobs.poll_interval)
        job = http.get(f"{url}/api/jobs/{job_id}", params={"refresh": "1"}, timeout=60).json()
    return job


_ONCE: dict[str, object] = {}


def once(name: str, make, config):
    """One instance per test run of what several modules share (a fixture imported into each module is
    its own fixture there, so the sharing happens here); ``make`` returns (value, cleanup or None)."""
    if name not in _ONCE:
        value, cleanup = make()
        _ONCE[name] = value
        if cleanup:
            config.add_cleanup(cleanup)
    return _ONCE[name]


@pytest.fixture(scope="session")
def world(system, pytestconfig) -> World:
    return once("world", lambda: (_make_world(system), None), pytestconfig)


def _make_world(system) -> World:
    bob_folders = system.folders("bob")
    alice_folders = system.folders("alice")
    tiny_scan(bob_folders["data"] / "scan.nxs", title=MARK)
    (bob_folders["data"] / "secret").mkdir(exist_ok=True)
    (bob_folders["data"] / "secret" / "notes.txt").write_text(f"{MARK} bob's private notes\n")
    (bob_folders["processing"] / "private.txt").write_text(MARK)
    for i in range(2):
        with h5py.File(bob_folders["data"] / f"series_{i}.h5", "w") as f:
            f["data"] = np.full((4,), BOB_VALUE)
            f["data"].attrs["owner"] = MARK
    simple_list(bob_folders["processing"] / "bob_list.nxs")
    simple_list(bob_folders["processing"] / "marked.nxs",
                edit={"1": {"data_path": f"/entry1/{MARK}/data"}, "3": {"kernel_size": [1, 3, 3]}})
    shutil.copy(bob_folders["processing"] / "marked.nxs", bob_folders["processing"] / "list_0.nxs")
    tiny_scan(alice_folders["data"] / "scan.nxs")
    simple_list(alice_folders["processing"] / "alice_list.nxs")

    bob = system.login("bob")
    submitted = bob.post(f"{system.url}/api/jobs", json={
        "process_list": "processing/bob_list.nxs", "dataset": "data/scan.nxs", "output": "output/runs",
        "mode": "full", "name": f"job {MARK}"})
    assert submitted.status_code == 201, submitted.text
    bob_job = wait_for_job(bob, system.url, submitted.json()["id"])
    assert bob_job["state"] == "finished", bob_job

    alice = Attacker(system.url, system.login("alice").cookies)
    found = World(system, alice, bob, alice_folders, bob_folders, bob_job)
    found.baseline = snapshot(bob_folders)
    return found


@pytest.fixture(autouse=True)
def bob_untouched(request):
    """After each test that attacks bob's world: his folders are exactly as they were."""
    if "world" not in request.fixturenames:
        yield
        return
    found: World = request.getfixturevalue("world")
    yield
    after = snapshot(found.bob_folders)
    changed = sorted(set(after) ^ set(found.baseline) |
                     {k for k in after.keys() & found.baseline.keys() if after[k] != found.baseline[k]})
    assert not changed, f"bob's folders changed: {changed[:10]}"
    job = found.bob.get(f"{found.url}/api/jobs/{found.bob_job['id']}", timeout=60).json()
    assert job["state"] == "finished" and not job["cancel_requested"], job


# -- gateways of the suite's own ---------------------------------------------------------------------------

def schema_keys(section: str) -> set[str]:
    return set(HebiConfig.model_fields[section].annotation.model_fields)


class OwnSystem:
    """A gateway + local launcher + nginx on a base folder of its own, with configuration overrides.
    Keys the schema does not (yet) have are left out and listed in ``missing``, so a test can say so."""

    def __init__(self, overrides: dict[str, dict], users: dict[str, str]):
        self.base = Path(tempfile.mkdtemp(prefix="hebi-sec-", dir="/tmp"))
        self.config_path = local_system.write_config(self.base, nginx="required")
        config = yaml.safe_load(self.config_path.read_text())
        self.missing: list[str] = []
        for section, values in overrides.items():
            known = schema_keys(section)
            for key, value in values.items():
                if key in known:
                    config.setdefault(section, {})[key] = value
                else:
                    self.missing.append(f"{section}.{key}")
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.users = users
        for user, password in users.items():
            local_system.add_user(self.config_path, user, password)
        self.gateway = local_system.Gateway(self.config_path)
        self.url = self.gateway.url.rstrip("/")

    def login(self, user: str, password: str | None = None) -> Attacker:
        http = Attacker(self.url)
        answer = http.post(f"{self.url}/gateway/login", allow_redirects=False, timeout=60,
                           data={"username": user, "password": password or self.users[user], "next": "/"})
        assert answer.status_code == 303, answer.text
        return http

    def require(self, *keys: str) -> None:
        absent = [k for k in keys if k in self.missing]
        assert not absent, f"the configuration has no key {', '.join(absent)} (issue 9 asks for it)"

    def close(self) -> None:
        self.gateway.stop()
        local_system.stop_all_sessions(self.config_path)
        shutil.rmtree(self.base, ignore_errors=True)


IDLE_TIMEOUT = 3.0
THROTTLE = {"login_free_failures": 3, "login_free_failures_per_address": 8, "login_delay": 1.0,
            "login_max_delay": 4.0, "login_failure_window": 600.0}
QUOTA_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="session")
def guarded(nginx_mode, pytestconfig) -> OwnSystem:
    """A gateway with a short body idle timeout and a small per-user quota, and users of its own."""
    def make():
        own = OwnSystem({"gateway": {"body_idle_timeout": IDLE_TIMEOUT},
                         "session": {"quota_bytes": QUOTA_BYTES, "max_upload_bytes": 64 * 1024 * 1024}},
                        {"carol": "carol-password-3", "frank": "frank-password-4"})
        return own, own.close
    return once("guarded", make, pytestconfig)


@pytest.fixture
def throttled(nginx_mode):
    """A gateway of its own for password guessing, so the shared accounts and address are never locked."""
    own = OwnSystem({"gateway": THROTTLE}, {"carol": "carol-password-3", "dave": "dave-password-5"})
    try:
        yield own
    finally:
        own.close()

