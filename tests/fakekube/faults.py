"""The faults a test injects, each one a way a real API server (or the network in front of it) hurts
its clients: watches that end or go silent, restarts, compaction (410 Gone), errors, slowness and floods
of other people's events."""
from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

from .errors import ApiError
from .resources import RESOURCES
from .store import now

if TYPE_CHECKING:
    from .cluster import FakeCluster

_REASONS = {500: ("InternalError", "Internal error occurred: fakekube: injected failure"),
            503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
            429: ("TooManyRequests", "Too many requests, please try again later."),
            504: ("Timeout", "the server was unable to return a response in the time allotted")}


class Faults:
    def __init__(self, cluster: FakeCluster):
        self._cluster = cluster
        self._lock = threading.Lock()
        self._failures: list[int] = []
        #: Seconds every answer waits before it is given.
        self.delay = 0.0
        self.watches_stalled = False

    def drop_watches(self) -> None:
        """Every open watch ends (the client reads the end of its stream), as when a load balancer or the
        server's own timeout closes it."""
        self._cluster.call(lambda: [w.close() for w in list(self._cluster.store.watchers)])

    def stall_watches(self, stalled: bool = True) -> None:
        """Open watches (and, while on, new ones) stay open but send nothing again, not even bookmarks: a
        connection that died without a FIN. A stalled stream never recovers; only a new watch does."""
        self.watches_stalled = stalled
        if stalled:
            def stall():
                for watcher in self._cluster.store.watchers:
                    watcher.stalled = True
            self._cluster.call(stall)

    def restart(self, downtime: float = 0.5) -> None:
        """The API server restarts: every connection is cut, nothing listens for ``downtime`` seconds, and
        the new process's watch cache starts empty (older resourceVersions are 410). Objects are kept."""
        self._cluster.restart(downtime)

    def compact(self) -> None:
        """Forget the history: every resourceVersion before now is 410 Gone."""
        self._cluster.call(self._cluster.store.compact)

    def fail_next(self, n: int, status: int = 500) -> None:
        """The next ``n`` requests (any path) are answered with this error Status."""
        with self._lock:
            self._failures.extend([status] * n)

    def take_failure(self) -> ApiError | None:
        with self._lock:
            if not self._failures:
                return None
            code = self._failures.pop(0)
        reason, message = _REASONS.get(code, ("InternalError", f"fakekube: injected failure {code}"))
        return ApiError(code, reason, message, {"retryAfterSeconds": 1} if code in (429, 503) else {})

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def flood_events(self, n: int, namespace: str | None = None) -> None:
        """``n`` Events about pods that are not hebi's (another tenant's crash-looping deployment)."""
        namespace = namespace or self._cluster.namespace
        events = RESOURCES[("", "events")]

        def flood():
            stamp = now()
            for i in range(n):
                pod = f"noisy-{i % 50}"
                self._cluster.store.create(events, namespace, {
                    "metadata": {"name": f"{pod}.{uuid.uuid4().hex[:16]}"},
                    "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "v1",
                                       "uid": str(uuid.UUID(int=i % 50))},
                    "reason": "BackOff", "message": "Back-off restarting failed container app", "type": "Warning",
                    "source": {"component": "kubelet", "host": "fakekube-node"}, "count": 1,
                    "firstTimestamp": stamp, "lastTimestamp": stamp}, validate=False)
        self._cluster.call(flood)
