"""The fake's kubelet runs pods for real with podman, from the project's own images, and reports them as a
real kubelet and scheduler do: Ready on a 127.0.0.N address that answers, secret files with the real
mode and owner, ImagePullBackOff naming the image, Unschedulable with the scheduler's message, and
CrashLoopBackOff with the crashed container's last state and log lines. Needs root and podman (a
failure under HEBI_REQUIRE_REAL=1); one cluster for the module, and few pods (2 cores)."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from images.images_support import images  # noqa: F401 - the session's image fixture

from fakekube import FakeCluster
from fakekube.fixtures import api_client, require_podman
from kubernetes import client

NS = "hebi"
UID = 4321
#: Not the pod's runAsGroup: files of the fsGroup are readable only through the group a kubelet adds.
FSGROUP = 4329
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(images):  # noqa: F811
    require_podman()
    base = Path(tempfile.mkdtemp(prefix="fakekube-", dir="/tmp"))
    fake = FakeCluster(base, node_cpu="2", node_memory="4Gi", pod_ips=(230, 239)).start()
    try:
        yield fake
    finally:
        fake.stop()
    # Nothing is left behind: no pod of this kubelet, no bridge network.
    env = dict(os.environ, CONTAINERS_CONF=str(REPO / "images" / "containers.conf"))
    left = subprocess.run(["podman", "pod", "ps", "-q", "--filter", f"label=fakekube.cluster={fake.kubelet.cluster_id}"],
                          capture_output=True, text=True, env=env)
    assert left.stdout.strip() == ""
    assert subprocess.run(["podman", "network", "exists", "podman-default-kube-network"], env=env).returncode != 0


@pytest.fixture(scope="module")
def core(cluster):
    return client.CoreV1Api(api_client(cluster))


def wait_for(check, limit: float = 180):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("condition not reached")


def condition(pod: dict, kind: str) -> dict:
    return next((c for c in (pod or {}).get("status", {}).get("conditions", []) if c["type"] == kind), {})


def waiting(cluster, name: str) -> dict:
    pod = cluster.get("pods", name) or {}
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting") or {}


def events(cluster, name: str) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in cluster.list("events", field_selector=f"involvedObject.name={name}")]


def test_a_pod_is_ready_on_its_loopback_address_and_reads_its_secret(cluster, core, images):  # noqa: F811
    core.create_namespaced_secret(NS, {"metadata": {"name": "session"}, "stringData": {"secret": "s3cret"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}, "data": {"mode": "demo"}})
    core.create_namespaced_persistent_volume_claim(NS, {"metadata": {"name": "home"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    created = core.create_namespaced_pod(NS, {"metadata": {"name": "web", "labels": {"app": "hebi"}}, "spec": {
        "securityContext": {"runAsUser": UID, "runAsGroup": UID, "fsGroup": FSGROUP},
        "containers": [{
            "name": "srv", "image": images["api"], "imagePullPolicy": "IfNotPresent",
            # Writes what it was given into its claim, then serves the folder of its secret: what it
            # answers is what the pod's uid can read.
            "command": ["sh", "-c", "echo $(LISTEN) $SECRET $MODE > /data/given && exec python3 -m http.server "
                                    "--bind $(POD_IP) --directory /etc/hebi $(PORT)"],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "PORT", "value": "8081"}, {"name": "PYTHONUNBUFFERED", "value": "1"},
                    {"name": "LISTEN", "value": "$(POD_IP):$(PORT)"},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "session", "key": "secret"}}},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
            "volumeMounts": [{"name": "secret", "mountPath": "/etc/hebi/secret", "subPath": "secret"},
                             {"name": "home", "mountPath": "/data"}],
            "readinessProbe": {"tcpSocket": {"port": 8081}, "periodSeconds": 1}},
            {"name": "second", "image": images["api"], "imagePullPolicy": "IfNotPresent",
             "command": ["python3", "-m", "http.server", "--bind", "$(POD_IP)", "8082"],
             "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
             "readinessProbe": {"httpGet": {"path": "/", "port": 8082}, "periodSeconds": 1}}],
        "volumes": [{"name": "secret", "secret": {"secretName": "session", "defaultMode": 0o400}},
                    {"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]}})
    core.create_namespaced_service(NS, {"metadata": {"name": "web", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": created.metadata.uid}]},
        "spec": {"selector": {"app": "hebi"}, "ports": [{"port": 8081}]}})
    pod = wait_for(lambda: (p := cluster.get("pods", "web")) and condition(p, "Ready").get("status") == "True" and p)
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.0.0.") and 230 <= int(ip.rsplit(".", 1)[1]) <= 239
    assert pod["status"]["phase"] == "Running" and pod["status"]["hostIP"] == "127.0.0.1"
    assert [condition(pod, c)["status"] for c in ("PodScheduled", "Initialized", "ContainersReady")] == ["True"] * 3
    assert [(c["name"], c["ready"], "running" in c["state"]) for c in pod["status"]["containerStatuses"]] == [
        ("srv", True, True), ("second", True, True)]
    assert urllib.request.urlopen(f"http://{ip}:8081/secret", timeout=5).read() == b"s3cret"
    claim = cluster.get("persistentvolumeclaims", "home")
    assert claim["status"]["phase"] == "Bound" and claim["status"]["capacity"] == {"storage": "1Gi"}
    given = cluster.base / "volumes" / claim["spec"]["volumeName"] / "given"
    assert given.read_text().split() == [f"{ip}:8081", "s3cret", "demo"] and given.stat().st_uid == UID
    # The kubelet's volume ownership: root's file, the fsGroup's group, group-readable.
    stat = (cluster.base / "pods" / created.metadata.uid / "volumes" / "secret" / "secret").stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, FSGROUP, 0o440)
    reasons = [reason for reason, _ in events(cluster, "web")]
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(reasons)
    assert f"Serving HTTP on {ip} port 8081" in core.read_namespaced_pod_log("web", NS, container="srv", tail_lines=5)
    # Graceful deletion: the pod stays, terminating, until the kubelet stopped it; then its Service goes.
    deleted = core.delete_namespaced_pod("web", NS, grace_period_seconds=1)
    assert deleted.metadata.deletion_timestamp is not None
    wait_for(lambda: cluster.get("pods", "web") is None and cluster.get("services", "web") is None)
    assert {("Killing", "Stopping container srv"), ("Killing", "Stopping container second")} <= set(events(cluster, "web"))
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{ip}:8081/", timeout=2)


def test_a_missing_image_is_ImagePullBackOff_naming_it(cluster, core):
    image = "localhost/hebi-api:no-such-build"
    core.create_namespaced_pod(NS, {"metadata": {"name": "noimage"}, "spec": {
        "containers": [{"name": "api", "image": image, "imagePullPolicy": "IfNotPresent"}]}})
    state = wait_for(lambda: waiting(cluster, "noimage").get("reason") == "ImagePullBackOff" and waiting(cluster, "noimage"))
    assert image in state["message"]
    assert any(reason == "Failed" and image in message for reason, message in events(cluster, "noimage"))
    assert ("BackOff", f'Back-off pulling image "{image}"') in events(cluster, "noimage")
    # With pull policy Never the kubelet says so instead (it never pulls).
    core.create_namespaced_pod(NS, {"metadata": {"name": "neverpull"}, "spec": {
        "containers": [{"name": "api", "image": image, "imagePullPolicy": "Never"}]}})
    state = wait_for(lambda: waiting(cluster, "neverpull").get("reason") == "ErrImageNeverPull" and waiting(cluster, "neverpull"))
    assert state["message"] == f'Container image "{image}" is not present with pull policy of Never'
    for name in ("noimage", "neverpull"):
        core.delete_namespaced_pod(name, NS)
    wait_for(lambda: not cluster.list("pods", field_selector="metadata.name=noimage"))


def test_a_request_larger_than_the_node_is_unschedulable(cluster, core, images):  # noqa: F811
    core.create_namespaced_pod(NS, {"metadata": {"name": "huge"}, "spec": {"containers": [{
        "name": "api", "image": images["api"], "resources": {"requests": {"memory": "64Gi", "cpu": "1"}}}]}})
    scheduled = wait_for(lambda: condition(cluster.get("pods", "huge"), "PodScheduled").get("reason") == "Unschedulable"
                         and condition(cluster.get("pods", "huge"), "PodScheduled"))
    assert scheduled["status"] == "False"
    assert scheduled["message"].startswith("0/1 nodes are available: 1 Insufficient memory.")
    assert ("FailedScheduling", scheduled["message"]) in events(cluster, "huge")
    assert "nodeName" not in cluster.get("pods", "huge")["spec"]
    core.delete_namespaced_pod("huge", NS)
    assert cluster.get("pods", "huge") is None  # on no node: gone at once


def test_a_crashing_container_is_CrashLoopBackOff_with_its_last_state_and_logs(cluster, core, images):  # noqa: F811
    core.create_namespaced_pod(NS, {"metadata": {"name": "crash"}, "spec": {
        "securityContext": {"runAsUser": UID, "runAsGroup": UID},
        "containers": [{"name": "api", "image": images["api"], "imagePullPolicy": "Never",
                        "command": ["python3", "-c", "print('hebi.yaml: no such file'); raise SystemExit(3)"]}]}})
    state = wait_for(lambda: waiting(cluster, "crash").get("reason") == "CrashLoopBackOff" and waiting(cluster, "crash"))
    assert "restarting failed container=api pod=crash_hebi" in state["message"]
    status = cluster.get("pods", "crash")["status"]["containerStatuses"][0]
    assert status["restartCount"] >= 1 and status["ready"] is False
    assert status["lastState"]["terminated"]["exitCode"] == 3 and status["lastState"]["terminated"]["reason"] == "Error"
    assert "hebi.yaml: no such file" in core.read_namespaced_pod_log("crash", NS, tail_lines=3)
    assert any(reason == "BackOff" and "Back-off restarting failed container api" in message
               for reason, message in events(cluster, "crash"))
    core.delete_namespaced_pod("crash", NS, grace_period_seconds=0)
    wait_for(lambda: cluster.get("pods", "crash") is None)


def test_a_container_failing_its_liveness_probe_is_restarted(cluster, core, images):  # noqa: F811
    core.create_namespaced_pod(NS, {"metadata": {"name": "stuck"}, "spec": {
        "terminationGracePeriodSeconds": 1, "securityContext": {"runAsUser": UID, "runAsGroup": UID},
        "containers": [{"name": "api", "image": images["api"], "imagePullPolicy": "Never",
                        "command": ["python3", "-c", "import time; time.sleep(600)"],
                        # Nothing listens there: the probe fails, as a hung server's would.
                        "livenessProbe": {"tcpSocket": {"port": 8089}, "periodSeconds": 1, "failureThreshold": 2}}]}})
    wait_for(lambda: (cluster.get("pods", "stuck")["status"].get("containerStatuses") or [{}])[0].get("restartCount", 0) >= 1)
    assert ("Killing", "Container api failed liveness probe, will be restarted") in events(cluster, "stuck")
    core.delete_namespaced_pod("stuck", NS, grace_period_seconds=0)
    wait_for(lambda: cluster.get("pods", "stuck") is None)
