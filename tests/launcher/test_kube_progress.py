"""A start's progress and its failures, read from a pod's own status and events the way a kubelet and a
scheduler write them (pod_launcher.kubernetes.progress_of / failure_of, pure), and the informer's
bookkeeping of events: only hebi's pods, at most events_per_pod each."""
from pod_launcher.informer import Event, SessionInformer
from pod_launcher.kubernetes import failure_of, progress_of

CREATED = "2026-12-01T10:00:00Z"


def pod(conditions=(), statuses=(), phase="Pending", ip=""):
    return {"metadata": {"name": "hebi-main-alice", "creationTimestamp": CREATED, "uid": "u1"},
            "status": {"phase": phase, "podIP": ip, "conditions": list(conditions), "containerStatuses": list(statuses)}}


def condition(kind, status, reason="", message="", at="2026-12-01T10:00:01Z"):
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": at}


def waiting(name, reason, message="", image="registry.example/hebi-api:1", last=None):
    status = {"name": name, "image": image, "ready": False, "restartCount": 3 if last else 0,
              "state": {"waiting": {"reason": reason, "message": message}}}
    if last:
        status["lastState"] = {"terminated": last}
    return status


def event(reason, message, second):
    return Event(reason=reason, message=message, type="Normal", at=1796119200.0 + second)


def test_the_steps_follow_the_pods_real_state_in_order():
    events = [event("Scheduled", "Successfully assigned hebi/hebi-main-alice to node-1", 1),
              event("Pulling", 'Pulling image "registry.example/hebi-web:1"', 2),
              event("Pulled", 'Successfully pulled image "registry.example/hebi-web:1"', 5),
              event("Started", "Started container web", 6)]
    steps = progress_of(pod([condition("PodScheduled", "True")]), events)
    assert [s.step for s in steps] == ["requested", "scheduled", "pulling", "pulled", "started"]
    assert "registry.example/hebi-web:1" in steps[2].message
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    ready = pod([condition("PodScheduled", "True"), condition("Ready", "True", at="2026-12-01T10:00:09Z")],
                phase="Running", ip="10.1.2.3")
    assert progress_of(ready, events)[-1].step == "ready"
    assert failure_of(ready, events) is None


def test_a_pod_that_only_waits_has_not_failed():
    assert failure_of(pod(), []) is None
    assert [s.step for s in progress_of(pod(), [])] == ["requested"]


def test_an_image_that_cannot_be_pulled_is_named():
    reason, container, message = failure_of(pod(statuses=[waiting(
        "api", "ImagePullBackOff", 'Back-off pulling image "registry.example/hebi-api:1"')]), [])
    assert (reason, container) == ("ImagePullBackOff", "api")
    assert "registry.example/hebi-api:1" in message and "ImagePullBackOff" in message
    assert progress_of(pod(statuses=[waiting("api", "ErrImagePull")]), [])[-1].step == "failed"
    # pull policy Never and no such image on the node: the kubelet's ErrImageNeverPull names it too
    said = 'Container image "registry.example/hebi-api:1" is not present with pull policy of Never'
    reason, _, message = failure_of(pod(statuses=[waiting("api", "ErrImageNeverPull", said)]), [])
    assert reason == "ErrImageNeverPull" and "registry.example/hebi-api:1 of the session's api is not on the node" in message


def test_an_unschedulable_pod_says_what_the_scheduler_said():
    said = "0/1 nodes are available: 1 Insufficient memory."
    failed = failure_of(pod([condition("PodScheduled", "False", "Unschedulable", said)]), [])
    assert failed[0] == "Unschedulable" and said in failed[2]
    # the event alone, when the condition has no message
    failed = failure_of(pod([condition("PodScheduled", "False", "Unschedulable")]), [event("FailedScheduling", said, 1)])
    assert said in failed[2]


def test_a_crashing_container_is_named_with_its_exit_code():
    failed = failure_of(pod(statuses=[waiting("dataserver", "CrashLoopBackOff", "back-off 10s",
                                              last={"exitCode": 3, "reason": "Error"})]), [])
    assert failed[:2] == ("CrashLoopBackOff", "dataserver") and "exit code 3" in failed[2]


def informer(events_per_pod=3):
    nothing = lambda *a: iter(())  # noqa: E731 - never started: only the bookkeeping is tested
    return SessionInformer(dict, nothing, dict, nothing, pod_prefix="hebi-main-", watch_timeout=1, stall_timeout=1,
                           backoff_max=1, events_per_pod=events_per_pod)


def raw_event(name, n, kind="Pod"):
    return {"metadata": {"uid": f"e{n}", "creationTimestamp": CREATED}, "involvedObject": {"kind": kind, "name": name},
            "reason": "Pulled", "message": f"event {n}", "type": "Normal", "count": 1}


def test_events_of_other_pods_and_kinds_are_not_kept_and_each_pod_keeps_a_bounded_number():
    cache = informer()
    for n in range(10_000):
        cache._apply_event("ADDED", raw_event(f"someone-else-{n}", n))
        cache._apply_event("ADDED", raw_event("hebi-main-alice", n, kind="Node"))
    assert cache._events == {}
    for n in range(10):
        cache._apply_event("ADDED", raw_event("hebi-main-alice", n))
    assert [e.message for e in cache.events("hebi-main-alice")] == ["event 7", "event 8", "event 9"]
    cache._apply_event("MODIFIED", raw_event("hebi-main-alice", 9))  # the same event again: not counted twice
    assert len(cache.events("hebi-main-alice")) == 3


def test_a_new_pod_of_the_same_name_is_not_blamed_for_its_predecessors_events():
    cache = informer(events_per_pod=10)
    old = raw_event("hebi-main-alice", 1)
    old["involvedObject"]["uid"] = "old-uid"
    new = raw_event("hebi-main-alice", 2)
    new["involvedObject"]["uid"] = "new-uid"
    cache._apply_event("ADDED", old)
    cache._apply_event("ADDED", new)
    assert [e.message for e in cache.events("hebi-main-alice", "new-uid")] == ["event 2"]
