"""FakeCluster: the fake API server, its store and its kubelet on one event loop in a thread of their own,
so synchronous tests (and the official, synchronous ``kubernetes`` client) talk to it over loopback HTTP."""
from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import threading
from pathlib import Path

import yaml
from aiohttp import web

from .faults import Faults
from .jobs import JobController
from .kubelet import Kubelet, Node
from .resources import RESOURCES, ResourceType
from .selectors import field_selector as parse_fields
from .selectors import label_selector as parse_labels
from .server import ApiServer
from .store import Store


def resource(plural: str) -> ResourceType:
    for rtype in RESOURCES.values():
        if rtype.plural == plural:
            return rtype
    raise KeyError(f"fakekube serves no resource {plural!r}")


class FakeCluster:
    """A one-node cluster on 127.0.0.1: ``with FakeCluster(tmp_path) as cluster: ...``.

    ``rules`` are a Role's rules: the kubeconfig's user (``user``) may do only what they grant, as the
    launcher's ServiceAccount in kubernetes/deploy; None allows everything. ``cluster_rules`` are a
    ClusterRole's, for the cluster-scoped Nodes (with ``rules`` given and none here, Nodes are forbidden).
    ``node_gpus``: the node's ``nvidia.com/gpu`` (data only: no container sees a GPU).

    ``base`` holds the kubeconfig, the kubelet's pod folders (secret and configMap volumes, emptyDirs)
    and the provisioned PVC folders. ``pod_ips`` is the range of N in the pods' 127.0.0.N addresses.
    """

    def __init__(self, base: Path, *, node_cpu: str = "4", node_memory: str = "8Gi", node_pods: int = 110,
                 namespace: str = "hebi", kubelet: bool = True, pod_ips: tuple[int, int] = (200, 249),
                 history: int = 500, bookmark_interval: float = 1.0, kubernetes_version: str = "1.33.0",
                 crash_backoff: float = 10.0, containers_conf: str | None = None, rules: list[dict] | None = None,
                 user: str = "system:serviceaccount:hebi:hebi-gateway", cluster_rules: list[dict] | None = None,
                 node_gpus: int = 0):
        self.base = Path(base)
        self.namespace = namespace
        self.token = secrets.token_urlsafe(16)
        self.store = Store({namespace, "default"}, kubernetes_version, history=history)
        self.faults = Faults(self)
        self.server = ApiServer(self.store, self.faults, self.token, bookmark_interval, rules=rules, user=user,
                                role_namespace=namespace, cluster_rules=cluster_rules)
        self.node = Node(cpu=node_cpu, memory=node_memory, pods=node_pods, gpus=node_gpus)
        self._kubelet_options = {"pod_ips": pod_ips, "crash_backoff": crash_backoff, "containers_conf": containers_conf}
        self.kubelet: Kubelet | None = None
        self.jobs: JobController | None = None
        self._with_kubelet = kubelet
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- life ------------------------------------------------------------------------------------------

    def start(self) -> FakeCluster:
        self.base.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fakekube", daemon=True)
        self._thread.start()
        self.run(self._start())
        self._write_kubeconfig()
        return self

    async def _start(self) -> None:
        self.store.loop = asyncio.get_running_loop()
        if self._with_kubelet:
            self.kubelet = Kubelet(self.store, self.node, self.base, **self._kubelet_options)
            self.server.kubelet = self.kubelet
            self.kubelet.start()
        self.jobs = JobController(self.store)
        self._runner = web.AppRunner(self.server.app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            self.run(self._stop(), timeout=180)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._loop = None

    async def _stop(self) -> None:
        self._cut_connections()
        if self.kubelet is not None:
            await self.kubelet.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def _cut_connections(self) -> None:
        for watcher in list(self.store.watchers):
            watcher.close()
        for transport in list(self.server.connections):
            transport.abort()
        self.server.connections.clear()

    def restart(self, downtime: float) -> None:
        async def restart():
            await self._site.stop()
            self._cut_connections()
            await asyncio.sleep(downtime)
            self.store.compact()
            await self._listen()
        self.run(restart())

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- running things on the loop ----------------------------------------------------------------------

    def run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, function, *args):
        """Runs ``function(*args)`` on the cluster's loop (the store is only touched there)."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def target():
            try:
                future.set_result(function(*args))
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                future.set_exception(err)
        self._loop.call_soon_threadsafe(target)
        return future.result(60)

    # -- what tests read and do directly ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.base / "kubeconfig"

    def _write_kubeconfig(self) -> None:
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "fakekube",
                  "clusters": [{"name": "fakekube", "cluster": {"server": self.url}}],
                  "users": [{"name": "fakekube", "user": {"token": self.token}}],
                  "contexts": [{"name": "fakekube", "context": {"cluster": "fakekube", "user": "fakekube",
                                                               "namespace": self.namespace}}]}
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict | None:
        return self.call(self.store.find, resource(plural), namespace or self.namespace, name)

    def list(self, plural: str, label_selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None) -> list[dict]:
        rtype = resource(plural)
        labels = parse_labels(label_selector)
        fields = parse_fields(field_selector, rtype.fields)
        return self.call(self.store.list, rtype, namespace or self.namespace, lambda o: labels(o) and fields(o))

    def create(self, plural: str, body: dict, namespace: str | None = None) -> dict:
        return self.call(self.store.create, resource(plural), namespace or self.namespace, body)

    def delete_behind_back(self, plural: str, name: str, namespace: str | None = None) -> None:
        """Someone else (an admin's kubectl, an eviction) deletes the object; clients learn it by watching."""
        self.call(lambda: self.store.delete(resource(plural), namespace or self.namespace, name))
