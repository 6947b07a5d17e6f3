"""The kubernetes launcher's one watch against the fake API server (tests/fakekube), without a kubelet:
it finds labelled pods, follows changes, relists after 410 Gone, reconnects after dropped watches and an
API server restart, reports a stalled watch and recovers from it, and keeps nothing of a flood of other
pods' events."""
import time

import pytest
import yaml
from conftest import until
from fakekube import FakeCluster

from hebi_common.config import load_config
from pod_launcher import make_launcher
from pod_launcher.objects import labels, pod_name


@pytest.fixture
def api_only(tmp_path):
    with FakeCluster(tmp_path / "cluster", kubelet=False, bookmark_interval=0.2) as cluster:
        path = tmp_path / "hebi.yaml"
        path.write_text(yaml.safe_dump({"launcher": {"backend": "kubernetes", "kubernetes": {
            "kubeconfig": str(cluster.kubeconfig), "instance": "t1", "state_dir": str(tmp_path / "kube"),
            "watch_timeout": 5, "stall_timeout": 1.5, "backoff_max": 0.5}}}))
        launcher = make_launcher(load_config(path, environ={}), str(path))
        try:
            yield cluster, launcher
        finally:
            launcher.close()


def bare_pod(user, instance="t1"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(instance, user), "labels": labels(instance, user),
                         "annotations": {"hebi/user-name": user}},
            "spec": {"containers": [{"name": "web", "image": "localhost/hebi-web:x"}]}}


def known(launcher):
    return {p["metadata"]["name"] for p in launcher.informer().all_pods()}


def test_the_watch_follows_labelled_pods_only(api_only):
    cluster, launcher = api_only
    cluster.create("pods", bare_pod("alice"))
    cluster.create("pods", bare_pod("bob", instance="other"))  # another installation's
    until(lambda: known(launcher) == {"hebi-t1-alice"}, "alice's pod seen")
    assert [s.user for s in launcher.list()] == ["alice"]
    assert launcher.status("alice").state == "starting"
    cluster.delete_behind_back("pods", "hebi-t1-alice")
    until(lambda: launcher.status("alice").state == "stopped", "the deletion seen")


def test_dropped_watches_a_restarted_server_and_410_lose_nothing(api_only):
    cluster, launcher = api_only
    launcher.informer()
    cluster.faults.drop_watches()
    cluster.create("pods", bare_pod("alice"))
    until(lambda: "hebi-t1-alice" in known(launcher), "a pod created after a dropped watch")
    cluster.faults.restart()
    cluster.create("pods", bare_pod("carol"))
    until(lambda: {"hebi-t1-alice", "hebi-t1-carol"} <= known(launcher), "a pod created after a restart")
    # A watch that fell behind (no bookmarks came while it was silent) while the server compacted its
    # history gets 410 Gone, and lists again.
    reflector = launcher.informer().pod_reflector
    before = reflector.relists
    cluster.faults.stall_watches(True)
    for n in range(5):
        cluster.create("pods", bare_pod(f"other{n}", instance="other"))
    cluster.delete_behind_back("pods", "hebi-t1-carol")
    cluster.faults.compact()
    cluster.faults.stall_watches(False)
    cluster.faults.drop_watches()
    until(lambda: known(launcher) == {"hebi-t1-alice"}, "a deletion after 410")
    assert reflector.relists > before and reflector.gone >= 1
    until(lambda: launcher.health()["ok"], "healthy again")


def test_a_stalled_watch_is_reported_and_recovers(api_only):
    cluster, launcher = api_only
    assert launcher.health()["ok"]
    cluster.faults.stall_watches(True)
    until(lambda: launcher.health()["watches"]["pods"]["state"] == "stalled", "the stall reported")
    assert launcher.health()["ok"] is False
    cluster.faults.stall_watches(False)
    cluster.create("pods", bare_pod("alice"))
    until(lambda: "hebi-t1-alice" in known(launcher), "a change after the stall")
    until(lambda: launcher.health()["ok"], "healthy after the stall")


def test_a_flood_of_other_pods_events_is_not_kept(api_only):
    cluster, launcher = api_only
    cluster.create("pods", bare_pod("alice"))
    until(lambda: "hebi-t1-alice" in known(launcher), "alice's pod seen")
    cluster.faults.flood_events(3000)
    cluster.create("events", {"metadata": {"name": "hebi-t1-alice.1"}, "reason": "Scheduled",
                              "message": "Successfully assigned hebi/hebi-t1-alice to fakekube-node", "type": "Normal",
                              "involvedObject": {"kind": "Pod", "name": "hebi-t1-alice", "namespace": "hebi"}})
    until(lambda: launcher.informer().events("hebi-t1-alice"), "alice's event kept")
    assert set(launcher.informer()._events) == {"hebi-t1-alice"}
    assert [s.step for s in launcher.progress("alice")] == ["requested", "scheduled"]


def test_failed_api_calls_are_tried_again(api_only):
    cluster, launcher = api_only
    cluster.faults.fail_next(2, status=500)
    launcher.informer()
    assert launcher.stop("nobody") is False  # deletes answered 500 twice, then 404
