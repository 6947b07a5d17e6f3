"""The kubernetes launcher's objects as data (pod_launcher.objects, cluster mode): the Pod binds its own
IP through $(POD_IP) and reads its files from a Secret; the Service is owned by the Pod; only the gateway
reaches the session; names are DNS labels that no two users share; profiles and volumes from the
configuration land where they should; and every object is valid Kubernetes (official schema, strict)."""
import base64

import kubernetes_validate
import pytest

from hebi_common.config import KubeProfileConfig, KubeVolumeConfig, load_config
from hebi_common.identity import Identity
from pod_launcher.objects import (
    NAME_LIMIT,
    MountedRoot,
    PodSettings,
    labels,
    make_network_policy,
    make_pod,
    make_pvc,
    make_secret,
    make_service,
    pod_name,
    safe_name,
    volume_source,
)
from pod_launcher.spec import CONFIG_PATH, SECRET_PATH, SESSION

KUBERNETES = "1.33.0"
ALICE = Identity(user="alice", uid=20001, gid=20501, home="/home/alice", groups=("20600", "staff"))
IMAGES = {"web": "registry.example/hebi-web:1", "api": "registry.example/hebi-api:1",
          "dataserver": "registry.example/hebi-dataserver:1"}


def cluster_settings(user="alice", **changes):
    identity = Identity(user=user, uid=20001, gid=20501)
    nfs, _ = volume_source(KubeVolumeConfig(nfs_server="nfs.example", nfs_path="/export/{user}/data"), identity)
    claim, sub = volume_source(KubeVolumeConfig(claim="processing-{gid}", sub_path="{user}"), identity)
    roots = (MountedRoot("data", f"/dls/{user}/data", f"/dls/{user}/data", False, source=nfs),
             MountedRoot("processing", f"/dls/{user}/processing", "", True, source=claim, sub_path=sub),
             MountedRoot("output", f"/dls/{user}/output", f"/dls/{user}/output", True))
    values = dict(instance="main", address="", images=IMAGES, roots=roots,
                  state_dir=f"/var/lib/hebi/sessions/{user}/state", config_file="", secret_file="",
                  pull_policy="IfNotPresent", network="cluster", session_secret=pod_name("main", user),
                  state_source={"emptyDir": {}}, supplemental_groups=(20600,), image_pull_secrets=("regcred",))
    return PodSettings(**(values | changes))


def containers(pod):
    return {c["name"]: c for c in pod["spec"]["containers"]}


def env(container):
    return {e["name"]: e for e in container["env"]}


def test_a_cluster_pod_binds_its_own_ip_never_the_host_network():
    pod = make_pod(SESSION, ALICE, cluster_settings())
    assert pod["spec"]["hostNetwork"] is False
    for container in pod["spec"]["containers"]:
        first = container["env"][0]
        # First, so that later values and the command may name it.
        assert first == {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        assert container["readinessProbe"] == {"tcpSocket": {"port": container["readinessProbe"]["tcpSocket"]["port"]},
                                               "periodSeconds": 2}
    api = containers(pod)["api"]["command"]
    assert api[api.index("--bind") + 1] == "$(POD_IP):8081"
    web = env(containers(pod)["web"])
    assert web["HEBI_NGINX_LISTEN"]["value"] == "$(POD_IP):8080"
    assert web["HEBI_NGINX_DATA"]["value"] == "$(POD_IP):8082"


def test_the_identity_gives_every_id_and_the_pod_is_hardened():
    pod = make_pod(SESSION, ALICE, cluster_settings())
    assert pod["spec"]["securityContext"] == {"runAsUser": 20001, "runAsGroup": 20501, "fsGroup": 20501,
                                              "supplementalGroups": [20600], "runAsNonRoot": True,
                                              "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_the_configuration_and_secret_come_from_the_secret_and_nothing_from_the_host_unless_configured():
    pod = make_pod(SESSION, ALICE, cluster_settings())
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["session"]["secret"] == {"secretName": "hebi-main-alice", "defaultMode": 0o400,
                                            "items": [{"key": "secret", "path": "secret"},
                                                      {"key": "hebi.yaml", "path": "hebi.yaml"}]}
    assert [v for v in volumes.values() if "hostPath" in v] == [volumes["root-output"]]  # the one not configured
    assert volumes["root-data"]["nfs"] == {"server": "nfs.example", "path": "/export/alice/data"}
    assert volumes["root-processing"]["persistentVolumeClaim"] == {"claimName": "processing-20501"}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}
    api = {m["mountPath"]: m for m in containers(pod)["api"]["volumeMounts"]}
    assert api["/etc/hebi"]["readOnly"] is True
    assert api["/dls/alice/processing"]["subPath"] == "alice"
    assert {CONFIG_PATH.rsplit("/", 1)[0], SECRET_PATH.rsplit("/", 1)[0]} == {"/etc/hebi"}
    assert "/etc/hebi" not in {m["mountPath"] for m in containers(pod)["web"]["volumeMounts"]}


def test_volume_templates_expand_user_uid_and_gid():
    bob = Identity(user="bob", uid=30002)
    source, sub = volume_source(KubeVolumeConfig(host_path="/srv/{user}/{uid}/{gid}", sub_path="x-{uid}"), bob)
    assert source == {"hostPath": {"path": "/srv/bob/30002/30002", "type": "Directory"}} and sub == "x-30002"
    with pytest.raises(ValueError, match="exactly one"):
        KubeVolumeConfig(host_path="/a", claim="b")
    with pytest.raises(ValueError, match="both"):
        KubeVolumeConfig(nfs_server="nfs.example")


def test_the_secret_holds_the_session_secret_and_configuration():
    secret = make_secret("main", "alice", "s3cret", "gateway: {}\n")
    assert secret["type"] == "Opaque" and secret["metadata"]["name"] == "hebi-main-alice"
    assert base64.b64decode(secret["data"]["secret"]) == b"s3cret"
    assert base64.b64decode(secret["data"]["hebi.yaml"]) == b"gateway: {}\n"
    assert secret["metadata"]["labels"] == labels("main", "alice")


def test_the_service_is_owned_by_the_pod_and_selects_it():
    pod = make_pod(SESSION, ALICE, cluster_settings()) | {}
    pod["metadata"] = dict(pod["metadata"], uid="0d5e-uid")
    service = make_service("main", "alice", pod, 8080)
    assert service["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": "hebi-main-alice",
                                                       "uid": "0d5e-uid"}]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["port"] == 8080


def test_only_the_gateways_pods_reach_the_session():
    policy = make_network_policy("main", "alice", {"app.kubernetes.io/name": "hebi-gateway"}, 8080)
    assert policy["spec"]["podSelector"] == {"matchLabels": labels("main", "alice")}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "hebi-gateway"}}}],
                                          "ports": [{"protocol": "TCP", "port": 8080}]}]


def test_a_profile_sets_the_computing_parts_resources_and_where_the_pod_runs():
    gpu = KubeProfileConfig(name="gpu", limits={"nvidia.com/gpu": "1"}, node_selector={"gpu": "true"},
                            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    settings = cluster_settings(part_resources={"api": {"limits": {"cpu": "2", "memory": "2Gi"} | gpu.limits,
                                                        "requests": {"cpu": "50m", "memory": "64Mi"}}},
                                node_selector=gpu.node_selector, tolerations=tuple(gpu.tolerations),
                                extra_annotations={"hebi/profile": "gpu"})
    pod = make_pod(SESSION, ALICE, settings)
    assert containers(pod)["api"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in containers(pod)["web"]["resources"]["limits"]
    assert pod["spec"]["nodeSelector"] == {"gpu": "true"}
    assert pod["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["metadata"]["annotations"] == {"hebi/user-name": "alice", "hebi/profile": "gpu"}
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)


def test_profiles_are_checked_at_load():
    with pytest.raises(Exception, match="two profiles"):
        load_config(environ={"HEBI_LAUNCHER__KUBERNETES__PROFILES": "[{name: a}, {name: a}]"})
    with pytest.raises(Exception, match="at most one"):
        load_config(environ={"HEBI_LAUNCHER__KUBERNETES__PROFILES": "[{name: a, default: true}, {name: b, default: true}]"})
    with pytest.raises(Exception, match="profiles"):
        load_config(environ={"HEBI_LAUNCHER__KUBERNETES__PROFILES": "[{name: Not_A_Label}]"})


@pytest.mark.parametrize("a,b", [("a_b", "a-b"), ("_x", "x"), ("svc_1", "svc-1"), ("a_b", "a-b-" + safe_name("a_b")[-6:])])
def test_two_users_that_sanitise_alike_get_different_names(a, b):
    assert safe_name(a) != safe_name(b)
    assert pod_name("main", a) != pod_name("main", b)


def test_a_raw_name_that_looks_like_a_changed_one_is_changed_too():
    # else "a-b-<hash of a_b>" would be both a_b's name and the raw name of another user
    looks = "a-b-" + safe_name("a_b")[-6:]
    assert safe_name(looks) != looks


def test_names_fit_63_characters_and_stay_apart_when_cut():
    long1, long2 = "a" * 31 + "1", "a" * 31 + "2"
    instance = "x" * 16
    names = {pod_name(instance, u) for u in (long1, long2, "a" * 32)}
    assert len(names) == 3 and all(len(n) <= NAME_LIMIT for n in names)
    assert all(len(safe_name(u)) <= NAME_LIMIT for u in ("_" * 32, "a" * 32))
    assert pod_name("main", "alice") == "hebi-main-alice"  # unchanged when it fits
    import re
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) for n in names)


def test_the_pvc_is_the_users_own_claim():
    pvc = make_pvc("main", "alice", "5Gi", ["ReadWriteOnce"], "fast")
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
                           "storageClassName": "fast"}
    assert pvc["metadata"]["annotations"] == {"hebi/user-name": "alice"}


@pytest.mark.parametrize("user", ["alice", "_svc_1", "b" * 32])
def test_every_object_is_valid_kubernetes(user):
    identity = Identity(user=user, uid=20002, gid=20002)
    pod = make_pod(SESSION, identity, cluster_settings(user, session_secret=pod_name("main", user)))
    pod["metadata"]["uid"] = "uid-1"
    for manifest in (pod, make_secret("main", user, "s", "x: 1\n"), make_service("main", user, pod, 8080),
                     make_network_policy("main", user, {"app.kubernetes.io/name": "hebi-gateway"}, 8080),
                     make_pvc("main", user, "1Gi", ["ReadWriteOnce"])):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        assert manifest["metadata"]["labels"] == labels("main", user)
        assert manifest["metadata"]["annotations"]["hebi/user-name"] == user
        assert len(manifest["metadata"]["name"]) <= NAME_LIMIT


def test_a_cluster_pod_needs_its_secret_named():
    with pytest.raises(ValueError, match="Secret"):
        make_pod(SESSION, ALICE, cluster_settings(session_secret=""))
