"""The fake API server, driven by the official ``kubernetes`` client as the launcher drives a cluster:
CRUD with resourceVersions, selectors, the real errors, watches with bookmarks, 410 and relisting,
graceful deletion, garbage collection, and every fault. No kubelet here (tests/fakekube/test_kubelet.py
runs pods for real)."""
from __future__ import annotations

import threading
import time

import pytest
from kubernetes.client.rest import ApiException

from fakekube import FakeCluster
from fakekube.fixtures import api_client
from kubernetes import client, watch

NS = "hebi"


@pytest.fixture
def cluster(tmp_path):
    with FakeCluster(tmp_path / "fakekube", kubelet=False, bookmark_interval=0.2, history=50) as fake:
        yield fake


@pytest.fixture
def core(cluster):
    return client.CoreV1Api(api_client(cluster))


@pytest.fixture
def networking(cluster):
    return client.NetworkingV1Api(api_client(cluster))


def pod(name: str, labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "hebi"}},
            "spec": {"containers": [{"name": "main", "image": "localhost/hebi-api:x"}], **spec}}


def events_until(stream, stop, limit: float = 20) -> list[dict]:
    """Events of a watch until ``stop(events)`` says enough (or the limit, as a safety net)."""
    seen = []
    deadline = time.monotonic() + limit
    for event in stream:
        seen.append(event)
        if stop(seen) or time.monotonic() > deadline:
            break
    return seen


def raw(cluster, method: str, path: str, body=None):
    import requests
    return requests.request(method, cluster.url + path, json=body, timeout=10,
                            headers={"Authorization": f"Bearer {cluster.token}"})


def wait_for(check, limit: float = 20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not reached")


# -- objects ---------------------------------------------------------------------------------------------

def test_crud_with_resource_versions(core, networking):
    created = core.create_namespaced_secret(NS, {"metadata": {"name": "s", "labels": {"app": "hebi"}},
                                                 "stringData": {"secret": "x"}})
    assert created.type == "Opaque" and created.data == {"secret": "eA=="} and created.metadata.uid
    assert created.metadata.generation == 1 and created.metadata.creation_timestamp is not None
    listed = core.list_namespaced_secret(NS)
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    patched = core.patch_namespaced_secret("s", NS, {"metadata": {"labels": {"extra": "1"}}})
    assert patched.metadata.labels == {"app": "hebi", "extra": "1"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    again = core.patch_namespaced_secret("s", NS, [{"op": "remove", "path": "/metadata/labels/extra"}])
    assert again.metadata.labels == {"app": "hebi"}
    service = core.create_namespaced_service(NS, {"metadata": {"name": "svc"}, "spec": {
        "selector": {"app": "hebi"}, "ports": [{"port": 8080}]}})
    assert service.spec.type == "ClusterIP" and service.spec.cluster_ip.startswith("127.")
    assert service.spec.ports[0].target_port == 8080
    policy = networking.create_namespaced_network_policy(NS, {"metadata": {"name": "np"}, "spec": {
        "podSelector": {"matchLabels": {"app": "hebi"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "hebi-gateway"}}}],
                     "ports": [{"port": 8080}]}]}})
    assert policy.spec.policy_types == ["Ingress"]
    claim = core.create_namespaced_persistent_volume_claim(NS, {"metadata": {"name": "home"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert claim.status.phase == "Pending"
    status = core.delete_namespaced_secret("s", NS)
    assert status["status"] == "Success"  # this client gives deletions back as plain dicts
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_secret("s", NS)
    assert gone.value.status == 404 and '"reason":"NotFound"' in gone.value.body.replace(" ", "")
    assert core.delete_namespaced_service("svc", NS).metadata.name == "svc"  # the object, as the real server


def test_the_real_errors(core, cluster):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}, "data": {"hebi.yaml": "a: 1"}})
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    assert exists.value.status == 409 and "AlreadyExists" in exists.value.body
    current = core.read_namespaced_config_map("c", NS)
    core.patch_namespaced_config_map("c", NS, {"data": {"hebi.yaml": "a: 2"}})
    current.data = {"hebi.yaml": "a: 3"}
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("c", NS, current)
    assert stale.value.status == 409 and '"reason":"Conflict"' in stale.value.body.replace(" ", "")
    with pytest.raises(ApiException) as stale_patch:
        core.patch_namespaced_config_map("c", NS, {"metadata": {"resourceVersion": current.metadata.resource_version},
                                                   "data": {"x": "y"}})
    assert stale_patch.value.status == 409
    assert core.read_namespaced_config_map("c", NS).data == {"hebi.yaml": "a: 2"}
    for bad, field in ((pod("Bad_Name"), "metadata.name"),
                       (pod("p", {"hebi/user": "not a label value!"}), "metadata.labels"),
                       ({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}]}}, "containers[0].name"),
                       ({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x", "imagePolicy": "x"}]}},
                        "imagePolicy"),
                       ({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x",
                                                                             "imagePullPolicy": "Sometimes"}]}},
                        "imagePullPolicy")):
        # Sent as they are: the client's own checks would refuse some before the server sees them.
        answer = raw(cluster, "POST", f"/api/v1/namespaces/{NS}/pods", bad)
        assert answer.status_code == 422 and answer.json()["reason"] == "Invalid" and field in answer.text, answer.text
    assert not cluster.list("pods")
    with pytest.raises(ApiException) as missing_namespace:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}})
    assert missing_namespace.value.status == 404 and 'namespaces \\"nowhere\\" not found' in missing_namespace.value.body
    core.create_namespaced_pod(NS, pod("p"))
    with pytest.raises(ApiException) as immutable:
        core.patch_namespaced_pod("p", NS, {"spec": {"restartPolicy": "Never"}})
    assert immutable.value.status == 422 and "Forbidden" in immutable.value.body


def test_the_fixture_gives_a_cluster_a_kubeconfig_reaches(fake_cluster):
    from kubernetes import config
    contexts, current = config.list_kube_config_contexts(config_file=str(fake_cluster.kubeconfig))
    assert current["context"]["namespace"] == fake_cluster.namespace == NS
    core = client.CoreV1Api(api_client(fake_cluster))
    assert core.list_namespaced_pod(NS).items == [] and fake_cluster.url.startswith("http://127.0.0.1:")


def test_a_role_grants_only_its_verbs(tmp_path):
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create"]},
             {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    with FakeCluster(tmp_path / "rbac", kubelet=False, rules=rules) as cluster:
        core = client.CoreV1Api(api_client(cluster))
        core.create_namespaced_pod(NS, pod("p"))
        assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == ["p"]
        with pytest.raises(ApiException) as forbidden:
            core.delete_namespaced_pod("p", NS)
        assert forbidden.value.status == 403 and (
            'pods \\"p\\" is forbidden: User \\"system:serviceaccount:hebi:hebi-gateway\\" cannot delete resource '
            '\\"pods\\" in API group \\"\\" in the namespace \\"hebi\\"') in forbidden.value.body
        with pytest.raises(ApiException) as secrets:
            core.list_namespaced_secret(NS)
        assert secrets.value.status == 403
        with pytest.raises(ApiException) as everywhere:
            core.list_pod_for_all_namespaces()
        assert everywhere.value.status == 403 and "at the cluster scope" in everywhere.value.body


def test_requests_without_the_token_are_refused(cluster):
    import requests
    answer = requests.get(f"{cluster.url}/api/v1/namespaces/{NS}/pods", timeout=5)
    assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"


def test_label_and_field_selectors(core):
    for name, labels in (("a", {"app": "hebi", "hebi/user": "alice"}), ("b", {"app": "hebi", "hebi/user": "bob"}),
                         ("c", {"app": "other"})):
        core.create_namespaced_pod(NS, pod(name, labels))

    def names(**kwargs):
        return sorted(p.metadata.name for p in core.list_namespaced_pod(NS, **kwargs).items)
    assert names(label_selector="app=hebi") == ["a", "b"]
    assert names(label_selector="app==hebi,hebi/user!=alice") == ["b"]
    assert names(label_selector="hebi/user in (alice, carol)") == ["a"]
    assert names(label_selector="hebi/user notin (alice)") == ["b", "c"]
    assert names(label_selector="hebi/user") == ["a", "b"]
    assert names(label_selector="!hebi/user") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="status.phase=Pending,metadata.name!=a") == ["b", "c"]
    with pytest.raises(ApiException) as unsupported:
        names(field_selector="spec.hostNetwork=true")
    assert unsupported.value.status == 400 and "field label not supported" in unsupported.value.body
    listed = core.list_namespaced_pod(NS, limit=2)
    assert len(listed.items) == 2 and listed.metadata._continue
    rest = core.list_namespaced_pod(NS, limit=2, _continue=listed.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["c"] and not rest.metadata._continue


def test_events_selected_by_their_object(core, cluster):
    cluster.faults.flood_events(300)
    core.create_namespaced_event(NS, {"metadata": {"name": "mine.1"}, "involvedObject": {
        "kind": "Pod", "name": "hebi-alice", "namespace": NS}, "reason": "Started", "message": "Started container api"})
    assert len(core.list_namespaced_event(NS).items) == 301
    mine = core.list_namespaced_event(NS, field_selector="involvedObject.kind=Pod,involvedObject.name=hebi-alice")
    assert [e.reason for e in mine.items] == ["Started"]


# -- watches ---------------------------------------------------------------------------------------------

def test_watch_streams_changes_and_bookmarks(core):
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, {"metadata": {"name": "w", "labels": {"app": "hebi"}}})
    core.patch_namespaced_config_map("w", NS, {"data": {"k": "v"}})
    core.patch_namespaced_config_map("w", NS, {"metadata": {"labels": {"app": "gone"}}})  # leaves the selection
    core.create_namespaced_config_map(NS, {"metadata": {"name": "other"}})
    stream = watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=start,
                                  label_selector="app=hebi", allow_watch_bookmarks=True, timeout_seconds=10)
    seen = events_until(stream, lambda s: s[-1]["type"] == "BOOKMARK")
    assert [e["type"] for e in seen] == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    assert seen[1]["object"].data == {"k": "v"}
    versions = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions) and versions[-1] > int(start)
    # Without a resourceVersion a watch starts with the current objects.
    first = watch.Watch().stream(core.list_namespaced_config_map, NS, timeout_seconds=10)
    initial = events_until(first, lambda s: len(s) == 2)
    assert sorted((e["type"], e["object"].metadata.name) for e in initial) == [("ADDED", "other"), ("ADDED", "w")]


def test_a_too_old_resource_version_is_410_and_a_relist_recovers(core, cluster):
    old = core.list_namespaced_pod(NS).metadata.resource_version
    for i in range(60):  # more changes than the history window (50)
        core.create_namespaced_config_map(NS, {"metadata": {"name": f"c{i}"}})
    core.create_namespaced_pod(NS, pod("p"))
    assert watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=old, timeout_seconds=2)  # pods: fine
    with pytest.raises(ApiException) as expired:
        list(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=old, timeout_seconds=2))
    assert expired.value.status == 410 and "Expired" in expired.value.reason
    relisted = core.list_namespaced_config_map(NS)
    assert len(relisted.items) == 60
    stream = watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=relisted.metadata.resource_version,
                                  allow_watch_bookmarks=True, timeout_seconds=10)
    core.delete_namespaced_config_map("c0", NS)
    seen = events_until(stream, lambda s: s[-1]["type"] == "DELETED")
    assert seen[-1]["object"].metadata.name == "c0"
    # A list at an old resourceVersion with NotOlderThan is served (from the current state).
    assert len(core.list_namespaced_config_map(NS, resource_version=old, resource_version_match="NotOlderThan").items) == 59


# -- deletion ----------------------------------------------------------------------------------------------

def test_graceful_deletion_of_a_pod_on_a_node(core, cluster):
    core.create_namespaced_pod(NS, pod("p", nodeName="fakekube-node"))
    start = core.read_namespaced_pod("p", NS).metadata.resource_version
    deleted = core.delete_namespaced_pod("p", NS)
    assert deleted.metadata.deletion_timestamp is not None and deleted.metadata.deletion_grace_period_seconds == 30
    assert core.read_namespaced_pod("p", NS).metadata.deletion_timestamp is not None  # still there: its kubelet stops it
    from fakekube.cluster import resource
    cluster.call(cluster.store.finish_deletion, resource("pods"), NS, "p")  # what the kubelet does once it stopped
    stream = watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=start, timeout_seconds=5)
    assert [e["type"] for e in events_until(stream, lambda s: s[-1]["type"] == "DELETED")] == ["MODIFIED", "DELETED"]
    # A pod no node runs goes at once.
    core.create_namespaced_pod(NS, pod("q"))
    core.delete_namespaced_pod("q", NS)
    assert cluster.get("pods", "q") is None


def test_owned_objects_are_garbage_collected(core, cluster):
    owner = core.create_namespaced_pod(NS, pod("p"))
    reference = [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner.metadata.uid}]
    core.create_namespaced_service(NS, {"metadata": {"name": "svc", "ownerReferences": reference},
                                        "spec": {"selector": {"app": "hebi"}, "ports": [{"port": 8080}]}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "kept", "ownerReferences": reference}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "unowned"}})
    core.delete_namespaced_pod("p", NS)
    wait_for(lambda: cluster.get("services", "svc") is None and cluster.get("secrets", "kept") is None)
    assert cluster.get("secrets", "unowned") is not None
    # Orphan propagation keeps the dependents and removes the reference.
    owner = core.create_namespaced_pod(NS, pod("p2"))
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "p2", "uid": owner.metadata.uid}]}})
    core.delete_namespaced_pod("p2", NS, propagation_policy="Orphan")
    wait_for(lambda: not (cluster.get("configmaps", "c") or {}).get("metadata", {}).get("ownerReferences"))


# -- faults ----------------------------------------------------------------------------------------------

def watch_in_thread(core, **kwargs) -> tuple[list, threading.Thread]:
    seen: list = []

    def target():
        try:
            for event in watch.Watch().stream(core.list_namespaced_config_map, NS, timeout_seconds=30, **kwargs):
                seen.append(event["type"])
            seen.append("END")
        except Exception as err:  # noqa: BLE001 - what the client saw is the assertion
            seen.append(type(err).__name__)
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return seen, thread


def test_dropped_watches_end_their_streams(core, cluster):
    seen, thread = watch_in_thread(core, allow_watch_bookmarks=True)
    wait_for(lambda: "BOOKMARK" in seen)
    cluster.faults.drop_watches()
    thread.join(10)
    assert seen[-1] == "END"


def test_stalled_watches_send_nothing_not_even_bookmarks(core, cluster):
    cluster.faults.stall_watches(True)
    seen, thread = watch_in_thread(core, allow_watch_bookmarks=True, resource_version=str(cluster.store.rv))
    core.create_namespaced_config_map(NS, {"metadata": {"name": "unseen"}})
    thread.join(1.5)
    assert seen == []  # the stream is open, and silent
    cluster.faults.stall_watches(False)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "still-unseen"}})
    thread.join(1)
    assert seen == []  # a stalled stream never recovers
    fresh, _ = watch_in_thread(core, allow_watch_bookmarks=True)
    wait_for(lambda: "BOOKMARK" in fresh)  # a new watch does
    cluster.faults.drop_watches()


def test_a_restart_cuts_every_connection_and_keeps_the_objects(core, cluster):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "kept"}})
    before = core.list_namespaced_config_map(NS).metadata.resource_version
    seen, thread = watch_in_thread(core, allow_watch_bookmarks=True, resource_version=before)
    wait_for(lambda: "BOOKMARK" in seen)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "newer"}})
    wait_for(lambda: "ADDED" in seen)
    cluster.faults.restart()
    thread.join(10)
    assert seen[-1] != "BOOKMARK"  # the stream ended (or broke) with the restart
    assert core.read_namespaced_config_map("kept", NS).metadata.name == "kept"
    with pytest.raises(ApiException) as expired:  # the new server's watch cache starts empty
        list(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=before, timeout_seconds=2))
    assert expired.value.status == 410


def test_compact_makes_every_older_version_410(core, cluster):
    before = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    cluster.faults.compact()
    with pytest.raises(ApiException) as expired:
        list(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=before, timeout_seconds=2))
    assert expired.value.status == 410


def test_fail_next_and_slow(core, cluster):
    cluster.faults.fail_next(2, status=500)
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            core.list_namespaced_pod(NS)
        assert failed.value.status == 500 and "InternalError" in failed.value.body
    assert core.list_namespaced_pod(NS).items == []
    # 429 comes with Retry-After, as the real server's: urllib3 under the client waits and asks again.
    cluster.faults.fail_next(1, status=429)
    assert core.list_namespaced_pod(NS).items == [] and not cluster.faults.take_failure()
    cluster.faults.slow(2)
    import urllib3
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.MaxRetryError)):
        core.list_namespaced_pod(NS, _request_timeout=0.5)
    cluster.faults.slow(0)
    assert core.list_namespaced_pod(NS).items == []


def test_deleted_behind_the_clients_back(core, cluster):
    core.create_namespaced_pod(NS, pod("p"))
    start = core.list_namespaced_pod(NS).metadata.resource_version
    cluster.delete_behind_back("pods", "p")
    stream = watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=start, timeout_seconds=5)
    seen = events_until(stream, lambda s: s[-1]["type"] == "DELETED")
    assert seen[-1]["object"].metadata.name == "p"
