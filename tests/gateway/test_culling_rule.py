"""The culling rule (pod_launcher.culling.due), as pure data: which sessions go, and what their users read."""
from pod_launcher import SessionInfo
from pod_launcher.culling import Cull, due, message, read_activity, write_activity

NOW = 1_000_000.0


def session(user: str, started_ago: float, state: str = "running") -> SessionInfo:
    return SessionInfo(user=user, state=state, started_at=NOW - started_ago)


def test_idle_and_old_sessions_are_due_and_the_others_are_not():
    sessions = [session("idle", 7200), session("busy", 7200), session("new", 30), session("old", 90000),
                session("failed", 9999, "failed")]
    activity = {"idle": NOW - 4000, "busy": NOW - 10, "old": NOW - 1}
    assert due(sessions, activity, NOW, idle_timeout=3600, max_age=86400) == [
        Cull("idle", "idle", 4000), Cull("old", "max_age", 90000)]
    # A session never proxied for counts as active from its start; activity older than the start too.
    assert due([session("never", 100)], {"never": NOW - 5000}, NOW, idle_timeout=3600, max_age=0) == []
    assert due(sessions, activity, NOW, idle_timeout=0, max_age=0) == []  # both rules off


def test_the_message_names_the_reason_in_words_and_promises_the_jobs():
    assert message({"reason": "idle", "seconds": 7200}) == \
        "Your session was stopped after 2 h idle; your jobs kept running."
    assert "after running for 24 h" in message({"reason": "max_age", "seconds": 86400})
    assert "after 5 min idle" in message({"reason": "idle", "seconds": 300})


def test_the_activity_file_round_trips_and_a_broken_one_reads_as_empty(tmp_path):
    write_activity(tmp_path, {"alice": 12.5})
    assert read_activity(tmp_path) == {"alice": 12.5}
    (tmp_path / "activity.json").write_text("{not json")
    assert read_activity(tmp_path) == {}
