"""The fake's job controller: batch/v1 Jobs run as Pods made from their template, the way Kubernetes 1.33's
controller does it for the fields hebi uses (one completion, parallelism 1).

- A Job gets a Pod (``<job>-<5 random>``, the template's labels plus ``batch.kubernetes.io/job-name`` and
  ``controller-uid``, owned by the Job as its controller); a failed Pod is replaced, after the back-off
  (10 s doubling), until more than ``backoffLimit`` have failed.
- ``spec.suspend``: no Pod, active ones deleted, condition Suspended (JobSuspended); resuming sets
  Suspended False (JobResumed) and starts the clock again (``startTime`` reset).
- ``activeDeadlineSeconds`` counts from ``startTime``: the Job's active Pods are deleted.
- The end, as since 1.31: first FailureTarget (reasons BackoffLimitExceeded, DeadlineExceeded) or
  SuccessCriteriaMet (CompletionsReached), then, once no Pod of the Job still runs or terminates,
  Failed or Complete with the same reason (and ``completionTime`` for Complete).
- ``status``: active, ready, succeeded, failed, terminating, startTime, conditions, and Events
  SuccessfulCreate, SuccessfulDelete, Suspended, Resumed, Completed, BackoffLimitExceeded, DeadlineExceeded.

Not done: parallelism/completions above 1, indexed Jobs, podFailurePolicy, successPolicy, the
``batch.kubernetes.io/job-tracking`` finalizer, ``ttlSecondsAfterFinished`` (finished Jobs stay).
Runs on the cluster's event loop, reacting to the store's changes of Jobs and of Pods they own.
"""
from __future__ import annotations

import asyncio
import datetime
import time
import uuid

from .errors import ApiError
from .resources import RESOURCES
from .store import Change, Store, now

JOBS = RESOURCES[("batch", "jobs")]
PODS = RESOURCES[("", "pods")]
EVENTS = RESOURCES[("", "events")]
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
ENDED = ("Succeeded", "Failed")
FIRST_BACKOFF = 10.0
#: FailureTarget/SuccessCriteriaMet reason -> the terminal condition added once the Pods are gone.
MESSAGES = {"BackoffLimitExceeded": "Job has reached the specified backoff limit",
            "DeadlineExceeded": "Job was active longer than specified deadline",
            "CompletionsReached": "Reached expected number of succeeded pods"}


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def _condition(status: dict, kind: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)


def _set_condition(status: dict, kind: str, value: str, reason: str, message: str) -> None:
    conditions = status.setdefault("conditions", [])
    entry = _condition(status, kind)
    stamp = now()
    if entry is None:
        conditions.append({"type": kind, "status": value, "reason": reason, "message": message,
                           "lastProbeTime": stamp, "lastTransitionTime": stamp})
    elif (entry["status"], entry.get("reason")) != (value, reason):
        entry.update(status=value, reason=reason, message=message, lastProbeTime=stamp, lastTransitionTime=stamp)


def owner_uid(pod: dict) -> str | None:
    for owner in pod["metadata"].get("ownerReferences") or []:
        if owner.get("kind") == "Job" and owner.get("controller"):
            return owner.get("uid")
    return None


class JobController:
    def __init__(self, store: Store):
        self.store = store
        self._due: set[tuple[str, str]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        #: Job uid -> when its next Pod may be made (the back-off after a failed one).
        self._not_before: dict[str, float] = {}
        store.listeners.append(self._on_change)

    # -- reacting to the store (synchronously inside a commit: the work is queued) -----------------------

    def _on_change(self, rtype, change: Change) -> None:
        meta = change.obj["metadata"]
        if rtype is JOBS:
            if change.type == "DELETED":
                timer = self._timers.pop(meta["uid"], None)
                if timer is not None:
                    timer.cancel()
                self._not_before.pop(meta["uid"], None)
            else:
                self._soon(meta["namespace"], meta["name"])
        elif rtype is PODS:
            for owner in meta.get("ownerReferences") or []:
                if owner.get("kind") == "Job" and owner.get("controller"):
                    self._soon(meta["namespace"], owner["name"])

    def _soon(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key not in self._due:
            self._due.add(key)
            self.store.loop.call_soon(self._reconcile, key)

    def _later(self, job: dict, delay: float) -> None:
        uid = job["metadata"]["uid"]
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        meta = job["metadata"]
        self._timers[uid] = self.store.loop.call_later(max(delay, 0.01), self._soon, meta["namespace"], meta["name"])

    # -- one Job -------------------------------------------------------------------------------------

    def _reconcile(self, key: tuple[str, str]) -> None:
        self._due.discard(key)
        job = self.store.find(JOBS, *key)
        if job is None:
            return
        status = job.get("status") or {}
        if any((_condition(status, kind) or {}).get("status") == "True" for kind in ("Complete", "Failed")):
            return
        uid, spec = job["metadata"]["uid"], job["spec"]
        pods = self.store.list(PODS, key[0], lambda p: owner_uid(p) == uid)
        running = [p for p in pods if p["status"].get("phase") not in ENDED]
        active = [p for p in running if not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in running if p["metadata"].get("deletionTimestamp")]
        succeeded = sum(p["status"].get("phase") == "Succeeded" for p in pods)
        failed = sum(p["status"].get("phase") == "Failed" for p in pods)
        new = {k: v for k, v in status.items()}
        new["conditions"] = [dict(c) for c in status.get("conditions") or []]
        events: list[tuple[str, str, str]] = []
        target = next((c for c in new["conditions"] if c["type"] in ("FailureTarget", "SuccessCriteriaMet")
                       and c["status"] == "True"), None)
        suspended = _condition(new, "Suspended")
        if target is None and spec.get("suspend"):
            if not suspended or suspended["status"] != "True":
                _set_condition(new, "Suspended", "True", "JobSuspended", "Job suspended")
                events.append(("Normal", "Suspended", "Job suspended"))
            self._delete_pods(job, active, events)
        elif target is None:
            if suspended and suspended["status"] == "True":
                _set_condition(new, "Suspended", "False", "JobResumed", "Job resumed")
                events.append(("Normal", "Resumed", "Job resumed"))
                new["startTime"] = now()
            new.setdefault("startTime", now())
            deadline = spec.get("activeDeadlineSeconds")
            started = _seconds(new["startTime"])
            if deadline is not None and time.time() >= started + deadline:
                target = self._target(new, "FailureTarget", "DeadlineExceeded", events, "Warning")
            elif succeeded >= spec.get("completions", 1):
                target = self._target(new, "SuccessCriteriaMet", "CompletionsReached", events)
            elif failed > spec.get("backoffLimit", 6):
                target = self._target(new, "FailureTarget", "BackoffLimitExceeded", events, "Warning")
            elif not active:
                # The controller's back-off before it replaces a failed Pod: 10 s, doubling.
                due = self._not_before.setdefault(uid, time.time() + FIRST_BACKOFF * 2 ** (failed - 1)) if failed else 0
                if time.time() < due:
                    self._later(job, due - time.time())
                else:
                    self._not_before.pop(uid, None)
                    created = self._create_pod(job, events)
                    if created is not None:
                        active.append(created)
            if target is None and deadline is not None:
                self._later(job, started + deadline - time.time() + 0.05)
        if target is not None:
            self._delete_pods(job, active, events)
            if not running:
                terminal = "Complete" if target["type"] == "SuccessCriteriaMet" else "Failed"
                _set_condition(new, terminal, "True", target["reason"], target["message"])
                if terminal == "Complete":
                    new["completionTime"] = now()
                    events.append(("Normal", "Completed", "Job completed"))
                timer = self._timers.pop(uid, None)
                if timer is not None:
                    timer.cancel()
            active = []
        new.update(active=len(active), ready=sum(_ready(p) for p in active), succeeded=succeeded, failed=failed,
                   terminating=len(terminating),
                   uncountedTerminatedPods={})
        for field in ("active", "succeeded", "failed"):
            if not new[field]:
                new.pop(field)  # omitempty, as the real status shows them
        if not new["conditions"]:
            new.pop("conditions")

        def write(obj):
            obj["status"] = new
        self.store.internal_update(JOBS, key[0], key[1], write, uid=uid)
        for kind, reason, message in events:
            self._event(job, kind, reason, message)

    def _target(self, status: dict, kind: str, reason: str, events: list, event_kind: str = "Normal") -> dict:
        _set_condition(status, kind, "True", reason, MESSAGES[reason])
        if kind == "FailureTarget":
            events.append((event_kind, reason, MESSAGES[reason]))
        return _condition(status, kind)

    def _create_pod(self, job: dict, events: list) -> dict | None:
        meta = job["metadata"]
        template = job["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {**(template.get("metadata") or {}), "generateName": f"{meta['name']}-",
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
               "spec": template["spec"]}
        pod["metadata"]["labels"] = dict(pod["metadata"].get("labels") or {}) | {
            CONTROLLER_UID: meta["uid"], JOB_NAME: meta["name"], "controller-uid": meta["uid"], "job-name": meta["name"]}
        pod["metadata"].pop("name", None)
        try:
            created = self.store.create(PODS, meta["namespace"], pod)
        except ApiError as err:
            events.append(("Warning", "FailedCreate", f"Error creating: {err.message}"))
            return None
        events.append(("Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}"))
        return created

    def _delete_pods(self, job: dict, pods: list[dict], events: list) -> None:
        for pod in pods:
            try:
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            except ApiError:
                continue
            events.append(("Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"))

    def _event(self, job: dict, kind: str, reason: str, message: str) -> None:
        meta = job["metadata"]
        stamp = now()
        try:
            self.store.create(EVENTS, meta["namespace"], {
                "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}"},
                "involvedObject": {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"],
                                   "uid": meta["uid"], "apiVersion": "batch/v1"},
                "reason": reason, "message": message, "type": kind, "source": {"component": "job-controller"},
                "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp, "reportingComponent": "job-controller",
                "reportingInstance": ""}, validate=False)
        except ApiError:
            pass


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
