"""batch/v1 Jobs and Nodes in the fake, driven by the official client as the Kubernetes Jobs backend drives
a cluster: defaulting and the generated selector, validation, suspend and resume, the deadline's two
conditions, back-off limit 0, and Nodes readable only through a ClusterRole. No kubelet here: Pods are
made Succeeded or Failed by hand, as a kubelet would report them (test_kube_jobs.py runs them for real)."""
from __future__ import annotations

import json
import time

import kubernetes_validate
import pytest
from kubernetes.client.rest import ApiException

from fakekube import FakeCluster
from fakekube.fixtures import api_client
from fakekube.resources import RESOURCES
from kubernetes import client

NS = "hebi"


@pytest.fixture
def cluster(tmp_path):
    with FakeCluster(tmp_path / "fakekube", kubelet=False) as fake:
        yield fake


@pytest.fixture
def batch(cluster):
    return client.BatchV1Api(api_client(cluster))


def job(name: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {"hebi/user": "alice"}},
            "spec": {"template": {"metadata": {"labels": {"hebi/user": "alice"}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "job", "image": "localhost/hebi-api:x"}]}}, **spec}}


def wait_for(check, limit: float = 20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition did not come")


def pods_of(cluster, name: str) -> list[dict]:
    return cluster.list("pods", label_selector=f"batch.kubernetes.io/job-name={name}")


def conditions(cluster, name: str) -> dict[str, str]:
    status = cluster.get("jobs", name).get("status") or {}
    return {c["type"]: c.get("reason", "") for c in status.get("conditions") or [] if c["status"] == "True"}


def finish_pod(cluster, pod: dict, code: int) -> None:
    """What a kubelet reports when the Pod's one container exits with ``code``."""
    def change(obj):
        obj["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
        obj["status"]["containerStatuses"] = [{"name": "job", "image": "x", "imageID": "", "ready": False,
                                               "restartCount": 0, "state": {"terminated": {
                                                   "exitCode": code, "reason": "Completed" if code == 0 else "Error"}}}]
    cluster.call(cluster.store.internal_update, RESOURCES[("", "pods")], NS, pod["metadata"]["name"], change)


def test_a_job_is_defaulted_given_its_selector_and_one_owned_pod(cluster, batch):
    created = batch.create_namespaced_job(NS, job("one"), _preload_content=False)
    body = json.loads(created.data)
    uid = body["metadata"]["uid"]
    assert body["spec"]["backoffLimit"] == 6 and body["spec"]["completions"] == 1 and body["spec"]["suspend"] is False
    assert body["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert body["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "one"
    pod = wait_for(lambda: pods_of(cluster, "one"))[0]
    assert pod["metadata"]["name"].startswith("one-") and pod["metadata"]["labels"]["hebi/user"] == "alice"
    assert pod["metadata"]["ownerReferences"][0] == {"apiVersion": "batch/v1", "kind": "Job", "name": "one",
                                                    "uid": uid, "controller": True, "blockOwnerDeletion": True}
    finish_pod(cluster, pod, 0)
    assert wait_for(lambda: conditions(cluster, "one").get("Complete")) == "CompletionsReached"
    assert conditions(cluster, "one")["SuccessCriteriaMet"] == "CompletionsReached"
    assert cluster.get("jobs", "one")["status"]["succeeded"] == 1


def test_a_failed_pod_with_backoff_limit_0_fails_the_job(cluster, batch):
    batch.create_namespaced_job(NS, job("fails", backoffLimit=0))
    finish_pod(cluster, wait_for(lambda: pods_of(cluster, "fails"))[0], 3)
    assert wait_for(lambda: conditions(cluster, "fails").get("Failed")) == "BackoffLimitExceeded"
    assert len(pods_of(cluster, "fails")) == 1, "backoffLimit 0: the failed Pod is not replaced"


def test_the_deadline_first_marks_the_failure_then_fails_the_job_once_its_pod_is_gone(cluster, batch):
    batch.create_namespaced_job(NS, job("slow", backoffLimit=0, activeDeadlineSeconds=1))
    wait_for(lambda: pods_of(cluster, "slow"))
    assert wait_for(lambda: conditions(cluster, "slow").get("Failed")) == "DeadlineExceeded"
    assert conditions(cluster, "slow")["FailureTarget"] == "DeadlineExceeded"
    assert pods_of(cluster, "slow") == [], "the deadline deletes the Job's Pods"
    status = cluster.get("jobs", "slow")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["message"] == "Job was active longer than specified deadline"


def test_a_suspended_job_has_no_pod_until_resumed(cluster, batch):
    batch.create_namespaced_job(NS, job("held", suspend=True))
    assert wait_for(lambda: conditions(cluster, "held").get("Suspended")) == "JobSuspended"
    assert pods_of(cluster, "held") == []
    batch.patch_namespaced_job("held", NS, {"spec": {"suspend": False}})
    wait_for(lambda: pods_of(cluster, "held"))
    reasons = {c["type"]: c["reason"] for c in cluster.get("jobs", "held")["status"]["conditions"]}
    assert reasons["Suspended"] == "JobResumed"


def test_a_job_whose_pods_could_restart_in_place_is_refused(batch):
    bad = job("restarts")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as refused:
        batch.create_namespaced_job(NS, bad)
    assert refused.value.status == 422 and "spec.template.spec.restartPolicy" in refused.value.body
    long = job("x" * 64)
    with pytest.raises(ApiException) as refused:
        batch.create_namespaced_job(NS, long)
    assert "must be no more than 63 characters" in refused.value.body


def test_deleting_a_job_deletes_its_pods(cluster, batch):
    batch.create_namespaced_job(NS, job("gone"))
    wait_for(lambda: pods_of(cluster, "gone"))
    batch.delete_namespaced_job("gone", NS, body={"propagationPolicy": "Background"})
    wait_for(lambda: not pods_of(cluster, "gone"))


def test_nodes_are_listed_at_the_cluster_scope_only_with_a_cluster_role(tmp_path):
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    with FakeCluster(tmp_path / "a", node_cpu="3", node_gpus=2, rules=rules) as fake:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api_client(fake)).list_node()
        assert refused.value.status == 403 and "at the cluster scope" in refused.value.body
    with FakeCluster(tmp_path / "b", node_cpu="3", node_gpus=2, rules=rules,
                     cluster_rules=[{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]) as fake:
        nodes = client.CoreV1Api(api_client(fake)).list_node().items
        assert [n.status.allocatable for n in nodes] == [{"cpu": "3", "memory": "8Gi", "pods": "110",
                                                          "nvidia.com/gpu": "2"}]
        node = fake.call(fake.store.find, RESOURCES[("", "nodes")], "", nodes[0].metadata.name)
        kubernetes_validate.validate(node, "1.33.0", strict=True)
