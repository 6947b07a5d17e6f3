"""Sessions as real containers: two users through the real gateway with ``launcher.backend: podman``,
each in their own pod as their own uid, seeing only their own roots; sessions found again after a
gateway restart, a removed pod started again, a missing image named. Needs root, podman and the images
(build_docker_images.sh, incremental); under HEBI_REQUIRE_REAL=1 a missing one fails."""
import contextlib
import json
import os
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
from code_support import OCTAVE_PROJECT, PLOT, WHEEL_PACKAGE, octave_result, write_project, write_wheel
from conftest import PASSWORDS, System, real_component
from make_sample_data import write_nxtomo, write_sample_process_list

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = str(REPO / "images" / "containers.conf")
KUBE_NETWORK = "podman-default-kube-network"


def podman(*args, check=False):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF))


def cli(system, *args):
    return subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(system.config_path), *args],
                          capture_output=True, text=True)


def accounts(system):
    state = yaml.safe_load(system.config_path.read_text())["gateway"]["state_dir"]
    return yaml.safe_load((Path(state) / "users.yaml").read_text())["users"]


def record(system, user):
    pods = yaml.safe_load(system.config_path.read_text())["launcher"]["podman"]["state_dir"]
    return json.loads((Path(pods) / user / "session.json").read_text())


def no_bridge_network():
    """The network rule: pods use the host network, so kube play must never have made its bridge."""
    if podman("network", "exists", KUBE_NETWORK).returncode == 0:
        podman("network", "rm", "-f", KUBE_NETWORK)
        pytest.fail(f"{KUBE_NETWORK} was created (a pod without hostNetwork?)")


@pytest.fixture(scope="module")
def wheelhouse_page(tmp_path_factory):
    """A facility's wheelhouse as a web page on loopback (what ``jobs.code.find_links`` may name): pods
    see only their user's folders, but they share the host's network."""
    import functools
    import http.server
    import threading
    folder = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def pods(wheelhouse_page):
    real_component("podman as root", os.geteuid() == 0 and shutil.which("podman") is not None,
                   "run as root with podman installed (scripts/install-system.sh podman)")
    base = Path(tempfile.mkdtemp(prefix="hebi-pods-", dir="/tmp"))
    config_path = local_system.write_config(base, launcher="podman")
    config = yaml.safe_load(config_path.read_text())
    config["jobs"] = {"code": {"index_url": "", "find_links": [wheelhouse_page]}}
    config_path.write_text(yaml.safe_dump(config))
    for user, password in PASSWORDS.items():
        local_system.add_user(config_path, user, password)
    gateway = local_system.Gateway(config_path)
    system = System(base, config_path, gateway)
    try:
        yield system
    finally:
        system.gateway.stop()
        local_system.stop_all_sessions(config_path)
        no_bridge_network()
        shutil.rmtree(base, ignore_errors=True)


def test_each_user_works_in_their_own_pod_as_their_own_uid(pods):
    uids = {user: account["uid"] for user, account in accounts(pods).items()}
    assert uids["alice"] != uids["bob"]
    for user in ("alice", "bob"):
        http = pods.login(user)
        whoami = http.get(f"{pods.url}/api/whoami")
        assert whoami.status_code == 200, whoami.text
        assert (whoami.json()["user"], whoami.json()["uid"]) == (user, uids[user])
        folders = pods.folders(user)
        write_nxtomo(folders["data"] / "scan.nxs", angles=19, rows=4, columns=32)
        listed = http.get(f"{pods.url}/api/files", params={"root": "data", "path": ""})
        assert "scan.nxs" in [e["name"] for e in listed.json()["entries"]], listed.text
        body = os.urandom(1 << 20)
        upload = http.put(f"{pods.url}/api/files", params={"root": "output", "path": f"{user}.bin"}, data=body)
        assert upload.status_code == 201, upload.text
        stored = folders["output"] / f"{user}.bin"
        assert stored.read_bytes() == body
        assert stored.stat().st_uid == uids[user]  # the kernel's view: the user's own file
        meta = http.get(f"{pods.url}/data/meta", params={"file": "data/scan.nxs",
                                                        "path": "/entry1/tomo_entry/data/data"})
        assert meta.status_code == 200, meta.text
        assert meta.json()["shape"] == [29, 4, 32]
        page = http.get(f"{pods.url}/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and '<div id="root">' in page.text
    listed = json.loads(cli(pods, "--json", "list").stdout)
    assert {s["user"]: s["state"] for s in listed} == {"alice": "running", "bob": "running"}
    no_bridge_network()


def test_a_preview_job_runs_in_the_pod_and_writes_the_users_files(pods):
    preview_job(pods, "alice", accounts(pods)["alice"]["uid"])


def preview_job(pods, user: str, uid: int) -> None:
    """A preview of a sample reconstruction on the session's local job backend, as ``user``: it finishes,
    the viewer reads its result, and every file it wrote belongs to ``uid`` (also the kubernetes tests')."""
    folders = pods.folders(user)
    write_nxtomo(folders["data"] / "first" / "scan.nxs", angles=91, rows=8, columns=96)
    write_sample_process_list(folders["processing"] / "first_recon.nxs")
    local_system.hand_over(pods.config_path, user)
    http = pods.login(user)
    submitted = http.post(f"{pods.url}/api/jobs", json={
        "process_list": "processing/first_recon.nxs", "dataset": "data/first/scan.nxs",
        "output": "output/first", "mode": "preview", "preview": 3})
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    deadline = time.monotonic() + 240
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        job = http.get(f"{pods.url}/api/jobs/{job['id']}", params={"refresh": 1}).json()
    log = http.get(f"{pods.url}/api/jobs/{job['id']}/log").text
    assert job["state"] == "finished", f"{job}\n{log}"
    outputs = http.get(f"{pods.url}/api/jobs/{job['id']}/outputs").json()
    processed = [o for o in outputs["files"] if o["path"].endswith("_processed.nxs")]
    assert processed, outputs
    meta = http.get(f"{pods.url}/data/meta", params={"file": processed[0]["path"], "path": "/entry/final_result_tomo"})
    assert meta.status_code == 200, meta.text
    written = [p for p in (folders["output"] / "first").rglob("*") if p.is_file()]
    assert written and {p.stat().st_uid for p in written} == {uid}


def test_inside_alices_pod_bobs_roots_are_not_mounted_and_the_secret_is_not_shown(pods):
    pods.login("alice").get(f"{pods.url}/api/whoami")
    pods.login("bob").get(f"{pods.url}/api/whoami")
    container = f"{record(pods, 'alice')['pod']}-api"
    mounts = podman("exec", container, "cat", "/proc/self/mountinfo", check=True).stdout
    bob = pods.folders("bob")
    assert str(pods.folders("alice")["data"]) in mounts
    assert not any(str(folder) in mounts for folder in bob.values()), mounts
    assert podman("exec", container, "ls", str(bob["data"])).returncode != 0
    assert podman("exec", container, "id", "-u", check=True).stdout.strip() == str(accounts(pods)["alice"]["uid"])
    # the root filesystem is read-only
    assert podman("exec", container, "touch", "/opt/x").returncode != 0
    inspected = podman("pod", "inspect", record(pods, "alice")["pod"], check=True).stdout
    inspected += podman("inspect", container, check=True).stdout
    assert record(pods, "alice")["secret"] not in inspected


def test_a_link_to_bobs_file_leads_nowhere_in_alices_pod(pods):
    """What hebi's sandbox refuses, the kernel now refuses too: in alice's pod, bob's folders do not
    exist, and the pod's uid could not read them if they did."""
    pods.login("bob").get(f"{pods.url}/api/whoami")
    alice = pods.login("alice")
    assert alice.get(f"{pods.url}/api/whoami").status_code == 200
    bob_data = pods.folders("bob")["data"]
    assert bob_data.stat().st_uid == accounts(pods)["bob"]["uid"] and bob_data.stat().st_mode & 0o077 == 0
    secret = bob_data / "bob-private.txt"
    secret.write_text("bob's")
    link = pods.folders("alice")["data"] / "to-bob.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    container = f"{record(pods, 'alice')['pod']}-api"
    read = podman("exec", container, "cat", str(link))
    assert read.returncode != 0 and "bob's" not in read.stdout
    assert "No such file" in read.stderr
    python = podman("exec", container, "python3", "-c", f"open({str(secret)!r}).read()")
    assert python.returncode != 0 and "No such file" in python.stderr
    listed = alice.get(f"{pods.url}/api/files", params={"root": "data", "path": ""}).json()
    assert "to-bob.txt" not in [e["name"] for e in listed["entries"]]
    opened = alice.get(f"{pods.url}/data/meta", params={"file": "data/to-bob.txt", "path": "/"})
    assert opened.status_code in (400, 403, 404) and "bob's" not in opened.text


PROBE = """\
import json, os
report = {"uid": os.getuid()}
for what, action in (("read", lambda: open(BOB_FILE).read()), ("list", lambda: os.listdir(BOB_DATA)),
                     ("link", lambda: (os.symlink(BOB_FILE, "output/to-bob"), open("output/to-bob").read())),
                     ("image", lambda: open("/opt/x", "w"))):
    try:
        action()
        report[what] = "done"
    except OSError as error:
        report[what] = type(error).__name__
json.dump(report, open("output/report.json", "w"))
"""


def test_alices_own_code_runs_in_her_pod_as_her_and_the_kernel_keeps_bob_out(pods):
    """A code job on the pod's local backend (the session is isolated, so code is allowed): it runs as
    alice's uid, and what it tries against bob - reading his file by path, listing his folder, a link it
    makes to his file - fails in the kernel, as does writing to the image. (Handed a link to bob's file as
    its data, hebi refuses the job before it runs.)"""
    pods.login("bob").get(f"{pods.url}/api/whoami")
    uid = accounts(pods)["alice"]["uid"]
    bob_data = pods.folders("bob")["data"]
    (bob_data / "bob-private.txt").write_text("bob's")
    alice = pods.folders("alice")
    project = alice["processing"] / "probe"
    project.mkdir(parents=True, exist_ok=True)
    (project / "code.py").write_text(f"BOB_FILE = {str(bob_data / 'bob-private.txt')!r}\nBOB_DATA = {str(bob_data)!r}\n"
                                     + PROBE)
    link = alice["data"] / "to-bob.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(bob_data / "bob-private.txt")
    local_system.hand_over(pods.config_path, "alice")
    http = pods.login("alice")
    body = {"kind": "code", "project": "processing/probe", "output": "output/probe", "mode": "preview"}
    refused = http.post(f"{pods.url}/api/jobs", json={**body, "data": "data/to-bob.txt"})
    assert refused.status_code == 403 and "outside its root" in refused.json()["error"]
    job, log = wait_code_job(pods, http, body, seconds=120)
    assert job["state"] == "finished", f"{job}\n{log}"
    report_file = alice["output"].parent / job["run_folder"] / "output" / "report.json"
    report = json.loads(report_file.read_text())
    assert report["uid"] == uid and report_file.stat().st_uid == uid
    assert report["read"] == "FileNotFoundError" and report["list"] == "FileNotFoundError", report
    assert report["link"] == "FileNotFoundError" and report["image"] in ("OSError", "PermissionError"), report


def wait_code_job(pods, http, body: dict, seconds: float = 180) -> tuple[dict, str]:
    """Submit a code job and wait (at most ``seconds``) for it to end: the job and its stderr."""
    submitted = http.post(f"{pods.url}/api/jobs", json=body)
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    deadline = time.monotonic() + seconds
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = http.get(f"{pods.url}/api/jobs/{job['id']}", params={"refresh": 1}).json()
    return job, http.get(f"{pods.url}/api/jobs/{job['id']}/log", params={"stream": "stderr"}).text


def test_requirements_from_the_facilitys_wheelhouse_a_notebook_and_octave_run_in_the_pod(pods):
    """In alice's pod (read-only image, her uid): a project's requirements.txt installed from the
    wheelhouse page into an environment in her output root, a notebook that plots, kept as HTML, and
    an Octave app.m with the image's GNU Octave."""
    uid = accounts(pods)["alice"]["uid"]
    alice = pods.folders("alice")
    write_project(alice["processing"] / "needs-probe", {
        "requirements.txt": "hebi-probe\n",
        "code.py": f"import {WHEEL_PACKAGE}\nopen('output/value.txt', 'w').write({WHEEL_PACKAGE}.VALUE)\n"})
    (alice["processing"] / "angles.ipynb").write_text(PLOT)
    local_system.hand_over(pods.config_path, "alice")
    http = pods.login("alice")
    job, log = wait_code_job(pods, http, {"kind": "code", "project": "processing/needs-probe",
                                          "output": "output/code", "mode": "preview"})
    assert job["state"] == "finished", f"{job}\n{log}"
    value = alice["output"].parent / job["run_folder"] / "output" / "value.txt"
    assert value.read_text() == "from the wheelhouse 1.0" and value.stat().st_uid == uid
    assert "made in" in log
    envs = [p for p in (alice["output"] / ".hebi" / "envs").iterdir() if not p.name.startswith(".")]
    assert len(envs) == 1 and envs[0].stat().st_uid == uid
    job, log = wait_code_job(pods, http, {"kind": "code", "project": "processing/angles.ipynb", "output": "output/nb",
                                          "mode": "preview", "parameters": {"angle": 5, "title": "in a pod"}})
    assert job["state"] == "finished", f"{job}\n{log}"
    plot = alice["output"].parent / job["run_folder"] / "output" / "plot.png"
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_uid == uid
    page = http.get(f"{pods.url}/api/jobs/{job['id']}/notebook")
    assert page.status_code == 200 and "plotted 5 in a pod" in page.text
    assert "sandbox; default-src 'none'" in page.headers["Content-Security-Policy"]  # kept beside the gateway's
    write_project(alice["processing"] / "octave", OCTAVE_PROJECT)
    (alice["data"] / "scan.txt").write_text("a scan")
    local_system.hand_over(pods.config_path, "alice")
    job, log = wait_code_job(pods, http, {"kind": "code", "project": "processing/octave", "data": "data/scan.txt",
                                          "output": "output/octave", "mode": "preview"})
    assert job["state"] == "finished" and job["language"] == "octave", f"{job}\n{log}"
    result = alice["output"].parent / job["run_folder"] / "output" / "result.txt"
    assert result.read_text() == octave_result("scan.txt") and result.stat().st_uid == uid


def test_the_admin_reads_a_pods_logs(pods):
    pods.login("alice").get(f"{pods.url}/api/whoami")
    logs = cli(pods, "logs", "-u", "alice")
    assert logs.returncode == 0 and "==> api <==" in logs.stdout and "==> web <==" in logs.stdout
    status = cli(pods, "status", "-u", "alice")
    assert status.returncode == 0 and "alice: running" in status.stdout


def test_a_gateway_restart_finds_every_session_from_its_labels(pods):
    alice = pods.login("alice")
    assert alice.get(f"{pods.url}/api/whoami").status_code == 200
    before = record(pods, "alice")["started_at"]
    pod_id = podman("pod", "inspect", "--format", "{{.ID}}", record(pods, "alice")["pod"], check=True).stdout
    pods.gateway.stop()
    pods.gateway = local_system.Gateway(pods.config_path)
    pods.url = pods.gateway.url.rstrip("/")
    again = alice.get(f"{pods.url}/api/whoami")
    assert again.status_code == 200 and again.json()["user"] == "alice"
    assert record(pods, "alice")["started_at"] == before
    assert podman("pod", "inspect", "--format", "{{.ID}}", record(pods, "alice")["pod"]).stdout == pod_id


def test_a_pod_removed_behind_the_gateways_back_is_started_on_the_next_request(pods):
    bob = pods.login("bob")
    assert bob.get(f"{pods.url}/api/whoami").status_code == 200
    podman("pod", "rm", "-f", record(pods, "bob")["pod"], check=True)
    answer = bob.get(f"{pods.url}/api/whoami")
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"] == "bob"


@contextlib.contextmanager
def alone(change):
    """A gateway of its own for one podman launcher setting changed by ``change(podman_settings, base)``,
    with alice as its only user."""
    real_component("podman as root", os.geteuid() == 0 and shutil.which("podman") is not None,
                   "run as root with podman installed (scripts/install-system.sh podman)")
    base = Path(tempfile.mkdtemp(prefix="hebi-alone-", dir="/tmp"))
    config_path = local_system.write_config(base, launcher="podman")
    config = yaml.safe_load(config_path.read_text())
    change(config["launcher"]["podman"], base)
    config_path.write_text(yaml.safe_dump(config))
    local_system.add_user(config_path, "alice", PASSWORDS["alice"])
    gateway = local_system.Gateway(config_path)
    try:
        yield System(base, config_path, gateway)
    finally:
        gateway.stop()
        local_system.stop_all_sessions(config_path)
        shutil.rmtree(base, ignore_errors=True)


def test_a_missing_image_is_shown_to_the_user_with_its_name():
    def no_such_build(podman_settings, base):
        podman_settings["images"]["api"] = "localhost/hebi-api:no-such-build"
    with alone(no_such_build) as system:
        try:
            answer = system.login("alice").get(f"{system.url}/api/whoami", timeout=30)
        except requests.Timeout:
            pytest.fail("a missing image was not reported")
        assert answer.status_code == 503
        assert "localhost/hebi-api:no-such-build" in answer.json()["error"]


def test_a_pod_gone_while_it_starts_is_reported_with_what_podman_said():
    """The pod removed right after kube play (an admin's podman pod rm, a cleanup script): the user is told
    the pod is gone and what podman listed, not an empty reason."""
    def removed_after_play(podman_settings, base):
        wrapper = base / "podman-then-rm"
        wrapper.write_text(f"""#!{sys.executable}
import subprocess, sys, yaml
done = subprocess.run(["podman", *sys.argv[1:]])
if sys.argv[1:3] == ["kube", "play"] and done.returncode == 0:
    with open(sys.argv[3]) as manifest:
        name = yaml.safe_load(manifest)["metadata"]["name"]
    subprocess.run(["podman", "pod", "rm", "-f", name], capture_output=True)
sys.exit(done.returncode)
""")
        wrapper.chmod(0o755)
        podman_settings["podman"] = str(wrapper)
    with alone(removed_after_play) as system:
        answer = system.login("alice").get(f"{system.url}/api/whoami", timeout=120)
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert "is gone although podman kube play succeeded" in error, error
        assert "podman lists: no pod" in error, error
