"""Sessions through the Kubernetes API, for real: the kubernetes launcher sends its objects to the fake
API server (tests/fakekube), whose kubelet runs each pod with podman from the session images. A session
answers /api/health with a signed identity at its pod IP; its progress follows the pod; failures reach
the caller with their reason; watches dropped, a restarted API server, a 410, a pod deleted behind the
launcher's back and a new launcher instance lose no session. Needs root, podman and the images."""
import os
import shutil
import subprocess
import sys
import threading
import time

import local_system
import pytest
import requests
import yaml
from conftest import real_component
from fakekube import FakeCluster

from hebi_common.config import load_config
from hebi_common.identity import HEADER, Identity, sign_identity
from pod_launcher import LauncherError, make_launcher
from pod_launcher.objects import pod_name

pytestmark = pytest.mark.timeout(1800)  # the first test's fixture may build the session images
ALICE = Identity(user="alice", uid=20101, gid=20101, home="")
BOB = Identity(user="bob_k", uid=20102, gid=20102, home="")
INSTANCE = "kt"
PROFILES = [{"name": "standard", "display_name": "Standard", "default": True},
            {"name": "huge", "display_name": "Huge", "requests": {"memory": "64Gi"}, "limits": {"memory": "64Gi"}},
            {"name": "missing", "display_name": "Missing image", "images": {"api": "localhost/hebi-api:no-such-tag"}},
            # The web image has no python3: the api part exits at once, again and again.
            {"name": "crashing", "display_name": "Crashing", "images": {"api": "WEB"}}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    real_component("podman as root", os.geteuid() == 0 and shutil.which("podman") is not None,
                   "run as root with podman installed (scripts/install-system.sh podman)")
    base = tmp_path_factory.mktemp("kube")
    images = local_system.images()
    profiles = [dict(p, images={k: images["web"] if v == "WEB" else v for k, v in p.get("images", {}).items()})
                for p in PROFILES]
    with FakeCluster(base / "cluster", crash_backoff=1.0) as fake:
        users = base / "users"
        for identity in (ALICE, BOB):
            for root in ("data", "processing", "output", "state"):
                folder = users / identity.user / root
                folder.mkdir(parents=True)
                os.chown(folder, identity.uid, identity.gid)
        config = {"launcher": {"backend": "kubernetes", "start_timeout": 300, "kubernetes": {
            "kubeconfig": str(fake.kubeconfig), "instance": INSTANCE, "images": images, "pull_policy": "IfNotPresent",
            "state": {"host_path": str(users / "{user}" / "state")}, "state_dir": str(base / "kube"),
            "profiles": profiles, "watch_timeout": 10, "stall_timeout": 5, "backoff_max": 1}},
            "session": {"roots": {name: {"path": str(users / "{user}" / name), "writable": name != "data"}
                                  for name in ("data", "processing", "output")}}}
        path = base / "hebi.yaml"
        path.write_text(yaml.safe_dump(config))
        fake.config_path = path
        yield fake


def launcher_of(cluster):
    return make_launcher(load_config(cluster.config_path, environ={}), str(cluster.config_path))


@pytest.fixture(scope="module")
def launcher(cluster):
    launcher = launcher_of(cluster)
    yield launcher
    for user in (ALICE.user, BOB.user):
        launcher.stop(user)
    launcher.close()


def health(info, identity):
    answer = requests.get(f"{info.url}/api/health", headers={HEADER: sign_identity(identity, info.secret)}, timeout=10)
    return answer.status_code, answer.text


def test_a_session_pod_serves_its_user_at_its_pod_ip(cluster, launcher):
    info = launcher.start(ALICE)
    assert info.state == "running" and info.url.startswith("http://127.0.0.")
    assert health(info, ALICE)[0] == 200
    # an identity signed with another secret is refused
    forged = requests.get(f"{info.url}/api/health", headers={HEADER: sign_identity(ALICE, "wrong")}, timeout=10)
    assert forged.status_code in (401, 403)
    name = pod_name(INSTANCE, ALICE.user)
    pod = cluster.get("pods", name)
    assert pod["spec"]["securityContext"]["runAsUser"] == ALICE.uid and pod["spec"]["hostNetwork"] is False
    service, policy = cluster.get("services", name), cluster.get("networkpolicies", name)
    assert service["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    assert policy["spec"]["podSelector"]["matchLabels"]["hebi/user"] == "alice"
    assert pod["metadata"]["annotations"]["hebi/profile"] == "standard"  # the default profile
    steps = [p.step for p in launcher.progress(ALICE.user)]
    assert steps[0] == "requested" and steps[-1] == "ready"
    assert steps == [s for s in ("requested", "scheduled", "pulling", "pulled", "started", "ready") if s in steps]
    assert {"scheduled", "started"} <= set(steps)
    assert "==> api <==" in launcher.logs(ALICE.user, 5)


def test_a_new_launcher_finds_every_session_again(cluster, launcher):
    first = launcher.start(ALICE)
    again = launcher_of(cluster)
    try:
        found = again.status(ALICE.user)
        assert (found.state, found.url, found.secret) == ("running", first.url, first.secret)
        assert [s.user for s in again.list()] == [ALICE.user]
        assert health(found, ALICE)[0] == 200
    finally:
        again.close()


def test_the_cli_sees_the_cluster(cluster, launcher):
    launcher.start(ALICE)
    run = lambda *a: subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(cluster.config_path), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    listed = run("list")
    assert listed.returncode == 0 and "alice" in listed.stdout and "running" in listed.stdout, listed.stderr
    assert run("status", "-u", "alice").returncode == 0
    assert "huge" in run("profiles").stdout
    assert "==> web <==" in run("logs", "-u", "alice", "-n", "3").stdout


def start_failure(launcher, identity, profile):
    with pytest.raises(LauncherError) as failed:
        launcher.start(identity, profile=profile)
    assert launcher.progress(identity.user)[-1].step == "failed"
    assert launcher.status(identity.user).state == "stopped"  # removed: the next start begins afresh
    return str(failed.value)


def test_an_image_that_cannot_be_had_is_named(launcher):
    reason = start_failure(launcher, BOB, "missing")
    assert "localhost/hebi-api:no-such-tag" in reason


def test_an_image_missing_under_pull_policy_never_is_named(cluster):
    config = yaml.safe_load(cluster.config_path.read_text())
    config["launcher"]["kubernetes"]["pull_policy"] = "Never"  # what a site that preloads its images sets
    path = cluster.config_path.with_name("never.yaml")
    path.write_text(yaml.safe_dump(config))
    never = make_launcher(load_config(path, environ={}), str(path))
    try:
        reason = start_failure(never, BOB, "missing")
    finally:
        never.close()
    assert "localhost/hebi-api:no-such-tag" in reason and "ErrImageNeverPull" in reason


def test_a_pod_no_node_can_hold_says_what_the_scheduler_said(launcher):
    reason = start_failure(launcher, BOB, "huge")
    assert "cannot be scheduled" in reason and "Insufficient memory" in reason


def test_a_crashing_part_shows_its_last_lines(launcher):
    reason = start_failure(launcher, BOB, "crashing")
    assert "CrashLoopBackOff" in reason and "api" in reason
    assert "last lines" in reason


def test_the_last_profile_is_remembered(launcher):
    assert launcher.last_profile(BOB.user) == "crashing"  # the last one chosen, even if it failed
    assert launcher.last_profile(ALICE.user) is None  # never chose: the default was used
    with pytest.raises(LauncherError, match="no session profile"):
        launcher.start(BOB, profile="nope")


def in_thread(function, *args):
    result = {}

    def run():
        try:
            result["value"] = function(*args)
        except Exception as err:  # noqa: BLE001 - handed to the test
            result["error"] = err
    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_start_survives_dropped_watches_a_restarted_api_server_and_410(cluster, launcher):
    launcher.stop(BOB.user)
    thread, result = in_thread(launcher.start, BOB, "standard")
    name = pod_name(INSTANCE, BOB.user)
    deadline = time.monotonic() + 60
    while cluster.get("pods", name) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.faults.drop_watches()
    cluster.faults.restart()
    cluster.faults.compact()
    cluster.faults.drop_watches()
    thread.join(180)
    assert "error" not in result, result.get("error")
    assert health(result["value"], BOB)[0] == 200
    assert launcher.health()["ok"]


def test_a_pod_deleted_behind_the_launchers_back_is_seen_and_started_again(cluster, launcher):
    launcher.start(ALICE)
    cluster.delete_behind_back("pods", pod_name(INSTANCE, ALICE.user))
    deadline = time.monotonic() + 60
    while launcher.status(ALICE.user).state != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert launcher.status(ALICE.user).state == "stopped"
    info = launcher.start(ALICE)
    assert health(info, ALICE)[0] == 200


def test_two_users_run_as_their_own_uids_each_with_its_policy(cluster, launcher):
    for identity in (ALICE, BOB):
        launcher.start(identity, "standard")
    for identity in (ALICE, BOB):
        name = pod_name(INSTANCE, identity.user)
        assert cluster.get("pods", name)["spec"]["securityContext"]["runAsUser"] == identity.uid
        policy = cluster.get("networkpolicies", name)
        assert policy["spec"]["podSelector"]["matchLabels"] == cluster.get("services", name)["spec"]["selector"]
    assert launcher.stop(BOB.user) is True
    assert cluster.get("secrets", pod_name(INSTANCE, BOB.user)) is None


def test_a_start_that_outlasts_the_timeout_says_how_far_it_got(cluster, launcher):
    document = yaml.safe_load(cluster.config_path.read_text())
    document["launcher"]["start_timeout"] = 1
    path = cluster.config_path.with_name("impatient.yaml")
    path.write_text(yaml.safe_dump(document))
    impatient = make_launcher(load_config(path, environ={}), str(path))
    try:
        impatient.informer()  # listed before the server turns slow
        cluster.faults.slow(1.5)  # each call of the start alone outlasts the whole start_timeout
        try:
            with pytest.raises(LauncherError, match="did not start within 1 s") as failed:
                impatient.start(BOB, "standard")
        finally:
            cluster.faults.slow(0)
        assert "last step" in str(failed.value)
        assert impatient.progress(BOB.user)[-1].step == "failed"
    finally:
        impatient.close()
    deadline = time.monotonic() + 60
    while cluster.get("pods", pod_name(INSTANCE, BOB.user)) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.get("pods", pod_name(INSTANCE, BOB.user)) is None  # removed, so the next start is afresh


def test_a_pod_deleted_during_its_start_is_reported_not_waited_for(cluster, launcher):
    launcher.stop(BOB.user)
    thread, result = in_thread(launcher.start, BOB, "standard")
    name = pod_name(INSTANCE, BOB.user)
    deadline = time.monotonic() + 60
    while cluster.get("pods", name) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    cluster.delete_behind_back("pods", name)  # before podman has even started it
    thread.join(180)
    assert isinstance(result.get("error"), LauncherError), result
    assert "deleted while it started" in str(result["error"])
    assert launcher.progress(BOB.user)[-1].step == "failed"
