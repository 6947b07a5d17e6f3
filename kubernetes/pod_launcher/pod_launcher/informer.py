"""One shared, informer-style view of an installation's session pods and their events.

KubeSpawner's users were hurt by watches that went silently stale (kubespawner #209, #577, PR #938) and
by namespaces full of events (#913). So, per resource, a reflector thread lists, then watches from the
list's resourceVersion with bookmarks; it relists on 410 Gone, reconnects with a doubling backoff after
failures, and counts a watch as stalled when nothing (not even a bookmark) arrived for
``stall_timeout`` seconds: the socket's read timeout ends it, the state says so (health()) until a
watch delivers again, and it relists. Events are watched with ``involvedObject.kind=Pod`` and kept only
for this installation's pods (by name), at most ``events_per_pod`` each, so a flood of foreign events costs no memory.

Objects are kept as the API's JSON (dicts): what objects.py builds and what tests assert on.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)

#: The most pods whose events are kept before those of pods not in the cache are forgotten.
MAX_EVENT_PODS = 2048
#: An event's message is cut to this many characters (a scheduler's message can be long).
MAX_MESSAGE = 2000


class Gone(Exception):
    """The server no longer has the resourceVersion asked for (410): relist."""


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str
    at: float
    count: int = 1
    #: The uid of the pod it is about: a new pod of the same name is not answerable for its predecessor's.
    pod_uid: str = ""


def timestamp(text: str | None) -> float:
    """An API timestamp (RFC 3339) as seconds since the epoch; 0 when absent."""
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


#: list(resource_version_or_None) -> the list's JSON; watch(resource_version, timeout_seconds) -> lines.
ListCall = Callable[[], dict]
WatchCall = Callable[[str, float], Iterator[bytes]]


class Reflector:
    """Keeps one resource's objects current through list + watch, calling ``apply`` for each change."""

    def __init__(self, name: str, list_call: ListCall, watch_call: WatchCall, *, replace: Callable[[list[dict]], None],
                 apply: Callable[[str, dict], None], watch_timeout: float, backoff_max: float,
                 changed: threading.Condition):
        self.name = name
        self._list, self._watch = list_call, watch_call
        self._replace, self._apply = replace, apply
        self.watch_timeout, self.backoff_max = watch_timeout, backoff_max
        self._changed = changed
        self.resource_version: str | None = None
        self.state = "connecting"
        self.detail = ""
        self.last_seen = 0.0
        self.relists = 0
        #: How often the server said 410 Gone (the history the watch needed was compacted).
        self.gone = 0
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hebi-informer-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _set(self, state: str, detail: str = "") -> None:
        if self._stop.is_set():
            return  # stopped (maybe the interpreter is ending): say nothing more
        if (state, detail) != (self.state, self.detail) and state != "synced":
            log.warning("%s watch: %s %s", self.name, state, detail)
        self.state, self.detail = state, detail
        with self._changed:
            self._changed.notify_all()

    def _relist(self) -> None:
        listed = self._list()
        self._replace(listed.get("items") or [])
        self.resource_version = listed["metadata"]["resourceVersion"]
        self.relists += 1
        self.last_seen = time.monotonic()
        self.synced.set()
        if self.state == "stalled":
            # The list answered, but that says nothing of the watch: it stays reported stalled until the
            # watch delivers something (a bookmark at least). Otherwise a watch that stalls again and
            # again would look healthy between stalls, and health() would say so most of the time.
            return
        self._set("synced")

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._relist()
                for line in self._watch(self.resource_version, self.watch_timeout):
                    if self._stop.is_set():
                        return
                    self._event(json.loads(line))
                    backoff = 0.5
                # The server ended the watch (its timeoutSeconds): watch on from where it was.
            except Gone:
                self.resource_version = None
                self.gone += 1
                self._set("relisting", "410 Gone: the history the watch needed is gone")
            except Stalled as err:
                self.resource_version = None
                self._set("stalled", str(err))
            except Exception as err:  # noqa: BLE001 - any failure of the connection: back off and retry
                self._set("disconnected", f"{type(err).__name__}: {str(err)[:300]}")
                self._stop.wait(backoff * (0.5 + random.random()))  # jitter: many gateways do not retry in step
                backoff = min(backoff * 2, self.backoff_max)

    def _event(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", ""))
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message', '')}")
        self.last_seen = time.monotonic()
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind != "BOOKMARK":
            self._apply(kind, obj)
        if version:
            self.resource_version = version
        if self.state != "synced":
            self._set("synced")


class Stalled(Exception):
    """Nothing, not even a bookmark, arrived within the stall timeout."""


class SessionInformer:
    """The pods labelled for one installation, and the events about them."""

    def __init__(self, list_pods: ListCall, watch_pods: WatchCall, list_events: ListCall, watch_events: WatchCall, *,
                 pod_prefix: str, watch_timeout: float, stall_timeout: float, backoff_max: float,
                 events_per_pod: int):
        self.pod_prefix = pod_prefix
        self.stall_timeout = stall_timeout
        self.events_per_pod = events_per_pod
        self.changed = threading.Condition()
        self._lock = threading.Lock()
        self.pods: dict[str, dict] = {}
        self._events: dict[str, deque[Event]] = {}
        #: Event objects already counted (by uid), bounded like the events themselves.
        self._seen: dict[str, deque[tuple[str, int]]] = {}
        common = dict(watch_timeout=watch_timeout, backoff_max=backoff_max, changed=self.changed)
        self.pod_reflector = Reflector("pods", list_pods, watch_pods, replace=self._replace_pods,
                                       apply=self._apply_pod, **common)
        self.event_reflector = Reflector("events", list_events, watch_events, replace=self._replace_events,
                                         apply=self._apply_event, **common)

    def start(self, wait: float) -> bool:
        self.pod_reflector.start()
        self.event_reflector.start()
        deadline = time.monotonic() + wait
        return all(r.synced.wait(max(0.0, deadline - time.monotonic())) for r in (self.pod_reflector, self.event_reflector))

    def stop(self, wake: Callable[[], None] | None = None, wait: float = 3.0) -> None:
        """Stop both reflectors; ``wake`` ends their blocked reads, so they end before the interpreter does
        (a thread still setting up a connection at exit aborts it)."""
        self.pod_reflector.stop()
        self.event_reflector.stop()
        if wake is not None:
            wake()
        for reflector in (self.pod_reflector, self.event_reflector):
            reflector.join(wait)

    # -- the cache ----------------------------------------------------------------------------------

    def pod(self, name: str) -> dict | None:
        with self._lock:
            return self.pods.get(name)

    def all_pods(self) -> list[dict]:
        with self._lock:
            return list(self.pods.values())

    def events(self, pod: str, uid: str = "") -> list[Event]:
        """The events kept about the pod named ``pod`` (of that uid only, when given)."""
        with self._lock:
            return [e for e in self._events.get(pod, ()) if not uid or not e.pod_uid or e.pod_uid == uid]

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def _replace_pods(self, items: list[dict]) -> None:
        with self._lock:
            self.pods = {p["metadata"]["name"]: p for p in items}
        self._notify()

    def _apply_pod(self, kind: str, pod: dict) -> None:
        name = pod["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = pod
        self._notify()

    def _replace_events(self, items: list[dict]) -> None:
        with self._lock:
            self._events.clear()
            self._seen.clear()
        for event in items:
            self._apply_event("ADDED", event)

    def _apply_event(self, kind: str, event: dict) -> None:
        involved = event.get("involvedObject") or {}
        name = involved.get("name", "")
        # Only this installation's pods: the kind is filtered by the server, the name here, before
        # anything is kept.
        if kind == "DELETED" or involved.get("kind") != "Pod" or not name.startswith(self.pod_prefix):
            return
        uid = (event.get("metadata") or {}).get("uid", "")
        count = int(event.get("count") or 1)
        at = max(timestamp(event.get("lastTimestamp")), timestamp(event.get("eventTime")),
                 timestamp(event.get("firstTimestamp")), timestamp((event.get("metadata") or {}).get("creationTimestamp")))
        with self._lock:
            if name not in self._events and len(self._events) >= MAX_EVENT_PODS:
                for gone in [n for n in self._events if n not in self.pods]:
                    self._events.pop(gone, None)
                    self._seen.pop(gone, None)
                if len(self._events) >= MAX_EVENT_PODS:
                    return
            seen = self._seen.setdefault(name, deque(maxlen=self.events_per_pod))
            if (uid, count) in seen:
                return  # the same event again (a relist)
            seen.append((uid, count))
            self._events.setdefault(name, deque(maxlen=self.events_per_pod)).append(
                Event(reason=str(event.get("reason", "")), message=str(event.get("message", ""))[:MAX_MESSAGE],
                      type=str(event.get("type", "")), at=at, count=count, pod_uid=str(involved.get("uid", ""))))
        self._notify()

    def forget_events(self, pod: str) -> None:
        """A new pod of the same name starts afresh: the old one's events are not its."""
        with self._lock:
            self._events.pop(pod, None)
            self._seen.pop(pod, None)

    # -- health -------------------------------------------------------------------------------------

    def health(self) -> dict:
        now = time.monotonic()
        watches = {}
        ok = True
        for reflector in (self.pod_reflector, self.event_reflector):
            quiet = now - reflector.last_seen if reflector.last_seen else None
            state = reflector.state
            if state == "synced" and quiet is not None and quiet > self.stall_timeout:
                state = "stalled"  # the thread is blocked in a read that has not timed out yet
            ok = ok and state == "synced"
            watches[reflector.name] = {"state": state, "detail": reflector.detail, "relists": reflector.relists,
                                       "gone": reflector.gone,
                                       "quiet_seconds": None if quiet is None else round(quiet, 1)}
        return {"ok": ok, "watches": watches}

    def wait(self, timeout: float) -> None:
        """Until something changed, or ``timeout`` seconds."""
        with self.changed:
            self.changed.wait(timeout)
