"""The HTTP face of the fake: the real REST paths of the namespaced core/v1 and networking.k8s.io/v1
resources, JSON bodies, ``Status`` errors, list and watch with selectors, resourceVersions and
bookmarks, and the faults a test asks for (faults.Faults)."""
from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import TYPE_CHECKING

from aiohttp import web

from .errors import ApiError, bad_request, gone
from .resources import RESOURCES, ResourceType
from .selectors import field_selector, label_selector
from .store import Store, Watcher

if TYPE_CHECKING:
    from .faults import Faults
    from .kubelet import Kubelet

VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fakekube", "platform": "linux/amd64"}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _json(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _status(err: ApiError) -> web.Response:
    response = _json(err.status(), err.code)
    if err.code == 429:
        response.headers["Retry-After"] = "1"
    return response


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class ApiServer:
    def __init__(self, store: Store, faults: Faults, token: str, bookmark_interval: float,
                 rules: list[dict] | None = None, user: str = "", role_namespace: str = "",
                 cluster_rules: list[dict] | None = None):
        self.store = store
        self.rules = rules
        #: A ClusterRole's rules, for cluster-scoped types (Nodes) only.
        self.cluster_rules = cluster_rules or []
        self.role_namespace = role_namespace
        self.user = user
        self.faults = faults
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.kubelet: Kubelet | None = None
        self.connections: set[asyncio.Transport] = set()
        self.app = web.Application(client_max_size=8 * 1024 * 1024)
        self.app.router.add_route("*", "/{path:.*}", self.handle)

    # -- dispatch --------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None and transport not in self.connections:
            self.connections = {t for t in self.connections if not t.is_closing()} | {transport}
        try:
            if self.faults.delay:
                await asyncio.sleep(self.faults.delay)
            failure = self.faults.take_failure()
            if failure is not None:
                return _status(failure)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return _status(ApiError(401, "Unauthorized", "Unauthorized"))
            return await self.route(request)
        except ApiError as err:
            return _status(err)

    async def route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return _json(VERSION)
        if parts == ["api"]:
            return _json({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})
        if parts == ["apis"]:
            groups = sorted({r.group for r in RESOURCES.values() if r.group})
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]})
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, rest = parts[1], parts[3:]
            if parts[2] != "v1":
                raise _no_resource()
        else:
            raise _no_resource()
        if not rest:
            return _json(self._resource_list(group))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rtype = RESOURCES.get((group, rest[0]))
        if rtype is None or len(rest) > 3:
            raise _no_resource()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource not in ("", "status", "log") or (subresource == "log" and rtype.kind != "Pod") \
                or (subresource == "status" and not rtype.has_status):
            raise _no_resource()
        if rtype.namespaced and namespace is None and (name is not None or request.method != "GET"):
            raise _no_resource()
        if not rtype.namespaced:
            if namespace is not None or request.method != "GET":
                raise _no_resource()  # Nodes are the kubelet's to register; clients only read them
            namespace = "" if name is not None else None
        method = request.method
        self._authorize(request, rtype, namespace, name, subresource)
        if name is None:
            if method == "GET":
                if _flag(request.query.get("watch")):
                    return await self.watch(request, rtype, namespace)
                return _json(self.list(request, rtype, namespace))
            if method == "POST":
                return _json(self.store.create(rtype, namespace, await _body(request)), 201)
            raise _not_allowed(method)
        if subresource == "log":
            if method != "GET":
                raise _not_allowed(method)
            return await self.logs(request, namespace, name)
        if method == "GET":
            return _json(self.store.get(rtype, namespace, name))
        if method == "PUT":
            return _json(self.store.update(rtype, namespace, name, await _body(request), subresource=subresource))
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            return _json(self.store.patch(rtype, namespace, name, content_type, await _body(request),
                                          subresource=subresource))
        if method == "DELETE" and not subresource:
            return self.delete(request, rtype, namespace, name, await _body(request, optional=True) or {})
        raise _not_allowed(method)

    def _authorize(self, request: web.Request, rtype: ResourceType, namespace: str | None, name: str | None,
                   subresource: str) -> None:
        """RBAC as a Role of ``rules`` grants it (none given: everything is allowed)."""
        if self.rules is None:
            return
        method = request.method
        if method == "GET":
            verb = "get" if name else "watch" if _flag(request.query.get("watch")) else "list"
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
        resource = f"{rtype.plural}/{subresource}" if subresource else rtype.plural
        # A Role grants in its own namespace only; cluster-wide reads need the ClusterRole (cluster_rules).
        cluster_scope = not rtype.namespaced or namespace is None
        granting = self.rules if namespace == self.role_namespace else self.cluster_rules if cluster_scope else ()
        for rule in granting:
            if (rtype.group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) \
                    and (resource in rule.get("resources", []) or "*" in rule.get("resources", [])) \
                    and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])) \
                    and (not rule.get("resourceNames") or name in rule["resourceNames"]):
                return
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        subject = f'{rtype.plural} "{name}"' if name else rtype.plural
        raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{self.user}" cannot {verb} resource '
                       f'"{resource}" in API group "{rtype.group}" {where}',
                       {"kind": rtype.plural, **({"name": name} if name else {})})

    def _resource_list(self, group: str) -> dict:
        found = [r for r in RESOURCES.values() if r.group == group]
        listed = []
        for r in found:
            listed.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
                           "verbs": VERBS, **({"shortNames": [r.short]} if r.short else {})})
            if r.has_status:
                listed.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": True, "kind": r.kind,
                               "verbs": ["get", "patch", "update"]})
            if r.kind == "Pod":
                listed.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1" if group else "v1",
                "resources": listed}

    # -- list and watch --------------------------------------------------------------------------------

    def _match(self, request: web.Request, rtype: ResourceType):
        labels = label_selector(request.query.get("labelSelector"))
        fields = field_selector(request.query.get("fieldSelector"), rtype.fields)
        return lambda obj: labels(obj) and fields(obj)

    def list(self, request: web.Request, rtype: ResourceType, namespace: str | None) -> dict:
        match = self._match(request, rtype)
        query = request.query
        rv = query.get("resourceVersion")
        if rv not in (None, "", "0"):
            try:
                wanted = int(rv)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv}"') from None
            if wanted > self.store.rv:
                raise ApiError(504, "Timeout", f"Too large resource version: {wanted}, current: {self.store.rv}",
                               {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                "retryAfterSeconds": 1})
            if query.get("resourceVersionMatch") == "Exact" and wanted != self.store.rv:
                self.store.check_resource_version(rtype, rv)  # 410 when it is out of the window
        items = self.store.list(rtype, namespace, match)
        list_rv = self.store.rv
        start = 0
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"]))
                list_rv, start = int(token["rv"]), int(token["start"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid") from None
            if list_rv < self.store.oldest[rtype.key]:
                raise gone("The provided continue parameter is too old to display a consistent list result. You can "
                           "start a new list without the continue parameter.")
        meta: dict = {"resourceVersion": str(list_rv)}
        limit = int(query.get("limit") or 0)
        if limit > 0 and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"rv": list_rv, "start": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        for item in items:
            # The real server's list items carry neither kind nor apiVersion.
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": meta, "items": items}

    async def watch(self, request: web.Request, rtype: ResourceType, namespace: str | None) -> web.StreamResponse:
        match = self._match(request, rtype)
        bookmarks = _flag(request.query.get("allowWatchBookmarks"))
        timeout = float(request.query.get("timeoutSeconds") or random.uniform(1800, 3600))
        watcher = Watcher(rtype, namespace, match)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            since = self.store.check_resource_version(rtype, request.query.get("resourceVersion"))
        except ApiError as err:
            # The real server answers 200 and puts the 410 in the stream.
            await response.write(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
            return response
        if since is None:
            for obj in self.store.list(rtype, namespace, match):
                watcher.queue.put_nowait(("ADDED", obj))
        else:
            for change in self.store.replay(rtype, since):
                watcher.offer(change)
        self.store.watchers.add(watcher)
        if self.faults.watches_stalled:
            watcher.stalled = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), min(left, self.bookmark_interval))
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    if bookmarks and not watcher.stalled:
                        bookmark = {"kind": rtype.kind, "apiVersion": rtype.api_version,
                                    "metadata": {"resourceVersion": str(self.store.rv)}}
                        await response.write(json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n")
                    continue
                if event is None:
                    break
                if watcher.stalled:
                    continue
                kind, obj = event
                await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.watchers.discard(watcher)
        return response

    # -- the rest --------------------------------------------------------------------------------------

    def delete(self, request: web.Request, rtype: ResourceType, namespace: str, name: str, options: dict) -> web.Response:
        grace = request.query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        propagation = request.query.get("propagationPolicy", options.get("propagationPolicy")) or "Background"
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f'unsupported propagation policy "{propagation}"')
        deleted = self.store.delete(rtype, namespace, name, grace=None if grace is None else int(grace),
                                    propagation=propagation, preconditions=options.get("preconditions"))
        if rtype.return_deleted:
            return _json(deleted)
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": name, "kind": rtype.plural, "uid": deleted["metadata"]["uid"]}})

    async def logs(self, request: web.Request, namespace: str, name: str) -> web.Response:
        pod = self.store.get(RESOURCES[("", "pods")], namespace, name)
        containers = [c["name"] for c in pod["spec"].get("containers", [])]
        container = request.query.get("container")
        if not container:
            if len(containers) != 1:
                raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                  f"[{' '.join(containers)}]")
            container = containers[0]
        if container not in containers:
            raise bad_request(f"container {container} is not valid for pod {name}")
        tail = request.query.get("tailLines")
        text = await self.kubelet.logs(pod, container, tail=int(tail) if tail else None,
                                       previous=_flag(request.query.get("previous"))) if self.kubelet else ""
        return web.Response(text=text, content_type="text/plain")


async def _body(request: web.Request, optional: bool = False):
    raw = await request.read()
    if not raw:
        if optional:
            return None
        raise bad_request("the body of the request is empty")
    try:
        return json.loads(raw)
    except ValueError as err:
        raise bad_request(f"the body of the request was in an unknown format: {err}") from None


def _no_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})", {})
