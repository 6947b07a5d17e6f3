"""The Role kubernetes/deploy ships covers every call the real kubernetes launcher makes with the shipped
hebi.yaml: a start (that times out, so its pod is removed again), status, list, logs and a stop, against
the fake API server (tests/fakekube), with each request recorded as the API server's authorizer sees it
(API group, resource, verb, namespace)."""
from __future__ import annotations

import re

import pytest
from aiohttp import web
from deploy_support import DEPLOY, built, one
from fakekube import FakeCluster

from hebi_common.config import load_config
from hebi_common.identity import Identity
from pod_launcher import LauncherError, make_launcher

RESOURCE_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<namespace>[^/]+)/"
                           r"(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")
#: Discovery, which every authenticated client may read (the cluster's system:discovery role).
DISCOVERY = re.compile(r"^/(api|apis|version)(/[^/]+){0,2}/?$")


def authorised_as(request: web.Request) -> tuple[str, str, str, str]:
    """(group, resource, verb, namespace) of a request, as Kubernetes' RBAC names it."""
    match = RESOURCE_PATH.match(request.path)
    assert match, f"a call outside a namespace: {request.method} {request.path}"
    group, resource, name, sub = match["group"] or "", match["resource"], match["name"], match["sub"]
    if sub and sub != "status":
        resource = f"{resource}/{sub}"
    if request.method == "GET":
        verb = "get" if name else "watch" if request.query.get("watch") in ("1", "true") else "list"
    else:
        verb = {"POST": "create", "PATCH": "patch", "PUT": "update",
                "DELETE": "delete" if name else "deletecollection"}[request.method]
    return group, resource, verb, match["namespace"]


def test_the_role_grants_every_call_the_launcher_makes(tmp_path):
    calls: set[tuple[str, str, str, str]] = set()

    @web.middleware
    async def record(request: web.Request, handler):
        if not DISCOVERY.match(request.path):
            calls.add(authorised_as(request))
        return await handler(request)

    cluster = FakeCluster(tmp_path / "cluster", kubelet=False, bookmark_interval=0.2)
    cluster.server.app.middlewares.append(record)
    with cluster:
        # The shipped file as it is, but for this machine's paths and a short start (no kubelet runs the pod).
        config = load_config(DEPLOY / "base" / "hebi.yaml", environ={
            "HEBI_LAUNCHER__KUBERNETES__KUBECONFIG": str(cluster.kubeconfig),
            "HEBI_LAUNCHER__KUBERNETES__STATE_DIR": str(tmp_path / "kube"),
            "HEBI_LAUNCHER__START_TIMEOUT": "3"})
        assert config.launcher.kubernetes.namespace == cluster.namespace
        launcher = make_launcher(config)
        try:
            with pytest.raises(LauncherError):
                launcher.start(Identity(user="alice", uid=20001, gid=20001))
            launcher.status("alice")
            launcher.list()
            try:
                launcher.logs("alice")
            except LauncherError:
                pass  # no pod left to read: the call was made all the same
            launcher.stop("alice")
        finally:
            launcher.close()

    made = {(group, resource, verb) for group, resource, verb, _ in calls}
    # Not vacuous: the start made the session's objects and watched.
    assert {("", "pods", "create"), ("", "secrets", "create"), ("", "pods", "watch"), ("", "events", "watch"),
            ("networking.k8s.io", "networkpolicies", "create"), ("", "persistentvolumeclaims", "create")} <= made
    assert {namespace for *_, namespace in calls} == {"hebi"}
    role = one(built("base"), "Role")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert made <= granted, f"calls the Role does not allow: {sorted(made - granted)}"
