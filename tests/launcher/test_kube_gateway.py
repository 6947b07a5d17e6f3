"""The whole of hebi on Kubernetes, end to end: the real gateway (hebi-gateway serve) with
``launcher.backend: kubernetes`` against the fake API server (tests/fakekube), whose kubelet runs each
session pod with podman from the session images. A browser picks a profile and follows the start's real
steps to the app shell; each user's own session pod, as their own uid behind its NetworkPolicy, serves
whoami, the files, the viewer's data and a preview job; a restarted gateway finds every session again,
and a pod deleted behind the gateway's back is started again on the next request. Needs root, podman,
chromium and the images."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import local_system
import pytest
import requests
import yaml
from conftest import PASSWORDS, System, real_component
from fakekube import FakeCluster
from make_sample_data import write_nxtomo
from test_podman_sessions import preview_job

from pod_launcher.objects import labels, pod_name

pytestmark = pytest.mark.timeout(1800)  # the fixture may build the session images
INSTANCE = "e2e"
PROFILES = [{"name": "standard", "display_name": "Standard", "description": "for most work", "default": True},
            {"name": "large", "display_name": "Large memory", "description": "for big reconstructions",
             "requests": {"memory": "256Mi"}, "limits": {"memory": "2Gi"}}]


def add_users(config_path: Path) -> None:
    for user, password in PASSWORDS.items():
        local_system.add_user(config_path, user, password)
        local_system.hand_over(config_path, user)  # the roots and the state folder: the user's own


def accounts_of(config_path: Path) -> dict:
    state = yaml.safe_load(config_path.read_text())["gateway"]["state_dir"]
    return yaml.safe_load((Path(state) / "users.yaml").read_text())["users"]


@pytest.fixture(scope="module")
def kube():
    real_component("podman as root", os.geteuid() == 0 and shutil.which("podman") is not None,
                   "run as root with podman installed (scripts/install-system.sh podman)")
    base = Path(tempfile.mkdtemp(prefix="hebi-kgw-", dir="/tmp"))
    try:
        with FakeCluster(base / "cluster") as cluster:
            config_path = local_system.write_config(base)
            local_system.use_kubernetes(config_path, cluster.kubeconfig, instance=INSTANCE, profiles=PROFILES)
            add_users(config_path)
            system = System(base, config_path, local_system.Gateway(config_path))
            system.cluster = cluster
            try:
                yield system
            finally:
                system.gateway.stop()
                local_system.stop_all_sessions(config_path)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def pod_of(kube, user):
    return kube.cluster.get("pods", pod_name(INSTANCE, user))


@pytest.mark.browser
def test_a_browser_picks_a_profile_and_follows_the_real_steps_to_the_app_shell(kube, page):
    page.goto(f"{kube.url}/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector("text=Choose your session")
    assert page.is_checked("input[value=standard]")  # alice never chose: the default
    page.check("input[value=large]")
    page.click("button[type=submit]")
    # the starting page lists the steps the kubelet and the scheduler reported, as they come
    page.wait_for_selector("#hebi-progress li.step-scheduled", timeout=120_000)
    page.wait_for_selector("[data-testid=user-name]:has-text('alice')", timeout=240_000)
    pod = pod_of(kube, "alice")
    assert pod["metadata"]["annotations"]["hebi/profile"] == "large"
    api = next(c for c in pod["spec"]["containers"] if c["name"] == "api")  # the profile sizes the api part
    assert api["resources"]["requests"]["memory"] == "256Mi"
    # the stream's last list: the pod's own events, in order, ending ready
    http = requests.Session()
    http.cookies.update({c["name"]: c["value"] for c in page.context.cookies()})
    stream = http.get(f"{kube.url}/gateway/progress", timeout=60).text
    assert "event: end" in stream and '"step": "ready"' in stream
    assert "Successfully assigned hebi/" in stream and "Started container" in stream


def test_each_user_works_in_their_own_pod_as_their_own_uid_behind_its_policy(kube):
    uids = {user: account["uid"] for user, account in accounts_of(kube.config_path).items()}
    assert uids["alice"] != uids["bob"]
    for user in ("alice", "bob"):
        http = kube.login(user)
        whoami = http.get(f"{kube.url}/api/whoami", timeout=240)  # an API call: no picker, the launcher's choice
        assert whoami.status_code == 200, whoami.text
        assert (whoami.json()["user"], whoami.json()["uid"]) == (user, uids[user])
        folders = kube.folders(user)
        write_nxtomo(folders["data"] / "scan.nxs", angles=19, rows=4, columns=32)
        local_system.hand_over(kube.config_path, user)
        listed = http.get(f"{kube.url}/api/files", params={"root": "data", "path": ""})
        assert "scan.nxs" in [e["name"] for e in listed.json()["entries"]], listed.text
        meta = http.get(f"{kube.url}/data/meta", params={"file": "data/scan.nxs", "path": "/entry1/tomo_entry/data/data"})
        assert meta.status_code == 200 and meta.json()["shape"] == [29, 4, 32], meta.text
        pod = pod_of(kube, user)
        security = pod["spec"]["securityContext"]
        assert (security["runAsUser"], security["fsGroup"]) == (uids[user], accounts_of(kube.config_path)[user]["gid"])
        policy = kube.cluster.get("networkpolicies", pod_name(INSTANCE, user))
        selected = policy["spec"]["podSelector"]["matchLabels"]
        assert selected == labels(INSTANCE, user) and selected.items() <= pod["metadata"]["labels"].items()
        other = "bob" if user == "alice" else "alice"
        assert not labels(INSTANCE, other).items() <= selected.items()  # selects only this user's pod
        (rule,) = policy["spec"]["ingress"]
        assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "hebi-gateway"}}}]
        assert [p["port"] for p in rule["ports"]] == [8080]
    assert {p["metadata"]["name"] for p in kube.cluster.list("pods", label_selector=f"hebi/instance={INSTANCE}")} == {
        pod_name(INSTANCE, "alice"), pod_name(INSTANCE, "bob")}


def test_a_preview_job_runs_in_the_session_pod(kube):
    preview_job(kube, "bob", accounts_of(kube.config_path)["bob"]["uid"])


def test_a_gateway_restart_finds_every_session_and_nobody_notices(kube):
    before = {user: pod_of(kube, user)["metadata"]["uid"] for user in ("alice", "bob")}
    logged_in = {user: kube.login(user) for user in before}
    kube.gateway.stop()
    kube.gateway = local_system.Gateway(kube.config_path)
    kube.url = kube.gateway.url.rstrip("/")
    for user, http in logged_in.items():
        again = http.get(f"{kube.url}/api/whoami", timeout=60)  # the same login cookie, no new start
        assert again.status_code == 200 and again.json()["user"] == user
        page = http.get(f"{kube.url}/", headers={"Accept": "text/html"})
        assert '<div id="root">' in page.text  # straight to the app: no picker, no starting page
        assert pod_of(kube, user)["metadata"]["uid"] == before[user]


def test_a_pod_deleted_behind_the_gateways_back_is_started_on_the_next_request(kube):
    bob = kube.login("bob")
    assert bob.get(f"{kube.url}/api/whoami", timeout=240).status_code == 200
    old = pod_of(kube, "bob")["metadata"]["uid"]
    kube.cluster.delete_behind_back("pods", pod_name(INSTANCE, "bob"))
    deadline = time.monotonic() + 60  # the kubelet stops its containers; bounded only for a broken build
    while kube.cluster.get("pods", pod_name(INSTANCE, "bob")) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    answer = bob.get(f"{kube.url}/api/whoami", timeout=240)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"] == "bob" and pod_of(kube, "bob")["metadata"]["uid"] != old
