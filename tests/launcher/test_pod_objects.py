"""The session's Pod manifest (pod_launcher.objects) as data: whose uid it runs as, what of the host it
mounts, how it is hardened, how it is found again; and every manifest the contract makes is valid
Kubernetes (the official schema, strict)."""
import subprocess
import sys

import kubernetes_validate
import pytest

from hebi_common.identity import Identity
from pod_launcher.objects import MountedRoot, PodSettings, make_pod, pod_name, safe_name, scratch_volume, scratch_volumes
from pod_launcher.spec import GUNICORN_ARGS, SECRET_PATH, SESSION

#: A current Kubernetes release (kubernetes-validate ships its schemas).
KUBERNETES = "1.33.0"
SECRET = "the-session-secret-itself"
ALICE = Identity(user="alice", uid=20001, gid=20501, home="/home/alice")


def settings(user="alice", writable_data=False, **changes):
    roots = (MountedRoot("data", f"/dls/{user}/data", f"/srv/dls/{user}/data", writable_data),
             MountedRoot("processing", f"/dls/{user}/processing", f"/srv/dls/{user}/processing", True),
             MountedRoot("output", f"/dls/{user}/output", f"/srv/dls/{user}/output", True))
    folder = f"/var/lib/hebi/pods/{user}"
    values = dict(instance="a1b2c3", address="127.0.0.12",
                  images={"web": "localhost/hebi-web:1", "api": "localhost/hebi-api:1",
                          "dataserver": "localhost/hebi-dataserver:1"},
                  roots=roots, state_dir=f"{folder}/state", config_file=f"{folder}/hebi.yaml",
                  secret_file=f"{folder}/secret",
                  cpu_limit="1500m", memory_limit="768Mi")
    return PodSettings(**(values | changes))


def containers(pod):
    return {c["name"]: c for c in pod["spec"]["containers"]}


def test_every_part_runs_as_the_users_uid_and_gid():
    pod = make_pod(SESSION, ALICE, settings())
    assert pod["spec"]["securityContext"].items() >= {"runAsUser": 20001, "runAsGroup": 20501, "fsGroup": 20501,
                                                      "runAsNonRoot": True}.items()
    assert set(containers(pod)) == {"web", "api", "dataserver"}
    for container in pod["spec"]["containers"]:
        assert container["securityContext"]["runAsUser"] == 20001
        assert container["securityContext"]["runAsGroup"] == 20501


def test_an_account_without_a_gid_runs_in_the_group_of_its_uid_and_one_without_a_uid_is_refused():
    pod = make_pod(SESSION, Identity(user="carol", uid=20007), settings("carol"))
    assert pod["spec"]["securityContext"]["runAsGroup"] == 20007
    with pytest.raises(ValueError, match="carol has no uid"):
        make_pod(SESSION, Identity(user="carol"), settings("carol"))


def test_only_the_users_roots_state_and_the_sessions_own_files_come_from_the_host():
    pod = make_pod(SESSION, ALICE, settings())
    host = {v["name"]: v["hostPath"]["path"] for v in pod["spec"]["volumes"] if "hostPath" in v}
    assert host == {"root-data": "/srv/dls/alice/data", "root-processing": "/srv/dls/alice/processing",
                    "root-output": "/srv/dls/alice/output", "state": "/var/lib/hebi/pods/alice/state",
                    "config": "/var/lib/hebi/pods/alice/hebi.yaml", "secret": "/var/lib/hebi/pods/alice/secret"}
    others = [v for v in pod["spec"]["volumes"] if "hostPath" not in v]
    assert all(v == {"name": v["name"], "emptyDir": {}} for v in others)
    api = {m["mountPath"]: m for m in containers(pod)["api"]["volumeMounts"]}
    # Mounted where the configuration names them, read-only unless the root is writable.
    assert api["/dls/alice/data"]["readOnly"] is True
    assert api["/dls/alice/processing"]["readOnly"] is False
    assert api[SECRET_PATH]["readOnly"] is True
    # nginx sees none of the user's files.
    web = {m["name"] for m in containers(pod)["web"]["volumeMounts"]}
    assert web == {scratch_volume(pod["metadata"]["name"], "web")}


def test_no_two_pods_share_a_scratch_volume():
    # podman 4.3 makes each emptyDir a named volume: alike names would be one folder for every user.
    alice = scratch_volumes(make_pod(SESSION, ALICE, settings()))
    bob = scratch_volumes(make_pod(SESSION, Identity(user="bob", uid=20002), settings("bob")))
    assert len(alice) == len(set(alice)) == 3 and not set(alice) & set(bob)


def test_a_writable_data_root_is_mounted_writable():
    pod = make_pod(SESSION, ALICE, settings(writable_data=True))
    api = {m["mountPath"]: m for m in containers(pod)["api"]["volumeMounts"]}
    assert api["/dls/alice/data"]["readOnly"] is False


def test_every_container_is_hardened_and_limited():
    pod = make_pod(SESSION, ALICE, settings())
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["spec"]["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"] == {"cpu": "1500m", "memory": "768Mi"}
        # the one writable folder is its own emptyDir
        scratch = scratch_volume(pod["metadata"]["name"], container["name"])
        assert {"name": scratch, "mountPath": "/tmp"} in container["volumeMounts"]
        assert container["imagePullPolicy"] == "Never"


def test_the_pod_uses_the_host_network_on_its_own_loopback_address():
    pod = make_pod(SESSION, ALICE, settings())
    assert pod["spec"]["hostNetwork"] is True
    api = containers(pod)["api"]["command"]
    assert api[api.index("--bind") + 1] == "127.0.0.12:8081"
    assert [a for a in api if a in GUNICORN_ARGS] == [a for a in GUNICORN_ARGS]
    web = {e["name"]: e["value"] for e in containers(pod)["web"]["env"]}
    assert (web["HEBI_NGINX_LISTEN"], web["HEBI_NGINX_API"]) == ("127.0.0.12:8080", "127.0.0.12:8081")
    for container in pod["spec"]["containers"]:
        assert container["readinessProbe"]["tcpSocket"]["host"] == "127.0.0.12"
        assert "ports" not in container  # nothing is published: no bridge, no port mapping


def test_labels_find_the_pod_again_and_the_raw_name_is_kept():
    pod = make_pod(SESSION, ALICE, settings())
    assert pod["metadata"]["labels"] == {"app": "hebi", "hebi/instance": "a1b2c3", "hebi/user": "alice"}
    assert pod["metadata"]["name"] == "hebi-a1b2c3-alice"
    odd = make_pod(SESSION, Identity(user="_svc_1", uid=20002), settings("_svc_1"))
    assert odd["metadata"]["annotations"] == {"hebi/user-name": "_svc_1"}
    assert odd["metadata"]["labels"]["hebi/user"] == safe_name("_svc_1") != safe_name("svc-1")
    assert pod_name("a1b2c3", "_svc_1") != pod_name("a1b2c3", "svc-1")


def test_the_secret_is_a_file_never_in_the_environment():
    pod = make_pod(SESSION, ALICE, settings())
    rendered = repr(pod)
    assert SECRET not in rendered
    for container in pod["spec"]["containers"]:
        names = {e["name"] for e in container["env"]}
        assert "HEBI_SESSION_SECRET" not in names
    api_env = {e["name"]: e["value"] for e in containers(pod)["api"]["env"]}
    assert api_env["HEBI_SESSION_SECRET_FILE"] == SECRET_PATH
    assert api_env["HEBI_SESSION_USER"] == "alice"
    assert api_env["HEBI_SESSION_STATE_DIR"] == "/var/lib/hebi/pods/alice/state"
    assert api_env["HEBI_SESSION_ISOLATED"] == "1"  # a pod runs as the user: their own code may run (kind code)


def test_the_api_can_load_gridengines_drmaa_library():
    """libdrmaa needs static TLS reserved from the process start: a pod with GridEngine mounted submits
    through DRMAA only if the API part starts with it (the other parts do not need it)."""
    pod = make_pod(SESSION, ALICE, settings())
    envs = {name: {e["name"]: e.get("value") for e in c["env"]} for name, c in containers(pod).items()}
    assert envs["api"]["GLIBC_TUNABLES"] == "glibc.rtld.optional_static_tls=16384"
    assert "GLIBC_TUNABLES" not in envs["dataserver"] and "GLIBC_TUNABLES" not in envs["web"]


@pytest.mark.parametrize("identity,user_settings", [
    (ALICE, settings()),
    (Identity(user="_svc_1", uid=20002), settings("_svc_1", writable_data=True)),
    (Identity(user="bob", uid=20003, gid=20003), settings("bob", roots=(), cpu_limit="250m", memory_limit="1Gi")),
], ids=["alice", "odd-name-writable-data", "no-roots"])
def test_every_manifest_is_valid_kubernetes(identity, user_settings):
    pod = make_pod(SESSION, identity, user_settings)
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)  # raises on any error


def test_the_validator_refuses_what_kubernetes_would():
    pod = make_pod(SESSION, ALICE, settings())
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES, strict=True)


def test_the_command_line_validator_agrees(tmp_path):
    import yaml
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(make_pod(SESSION, ALICE, settings())))
    done = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES, str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_session_is_ready_only_when_every_part_answers():
    """A launcher waits for each part's health path through the router, so a fresh session's first
    /data/ request never lands on a dataserver still starting (it did when only /api/health was asked)."""
    from pod_launcher.spec import SESSION
    assert set(SESSION.readiness_paths) == {part.health for part in SESSION.parts}
    assert {"/api/health", "/data/"} <= set(SESSION.readiness_paths)
