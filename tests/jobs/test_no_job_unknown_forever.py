"""No job stays unknown for ever: a job the scheduler and its accounting no longer know becomes "lost"
after ``lost_after`` seconds, and a job the API recorded but died before submitting becomes "lost" too.
In-process on the local backend (no root needed)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from conftest import signed_client
from jobs_support import dataset, write_session

from hebi_common.config import load_config
from hebi_common.sandbox import Roots
from hebi_common.session import SessionContext

GOOD = {"process_list": "processing/tomo.nxs", "output": "output/run", "mode": "full"}


def make(tmp_path, **jobs):
    from hebi_api.app import create_app
    config = load_config(write_session(tmp_path, "local", **jobs), environ={})
    context = SessionContext(user="alice", home="", secret="s", roots=Roots.from_config(config.session.roots, "alice"),
                             state_dir=Path(config.session.state_dir.replace("{user}", "alice")))
    app = create_app(config, context)
    return app, signed_client(app, context)


def wait_state(client, job_id, states, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", query_string={"refresh": 1}).get_json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    return job


def test_a_job_the_scheduler_forgot_becomes_lost_not_unknown(tmp_path):
    app, client = make(tmp_path, lost_after=1)
    job = client.post("/api/jobs", json={**GOOD, "dataset": dataset(tmp_path, "q.nxs", seconds=30)}).get_json()
    wait_state(client, job["id"], {"running"})
    client.post(f"/api/jobs/{job['id']}/cancel")
    wait_state(client, job["id"], {"cancelled"})
    # Now one that vanishes without a trace: its whole record at the scheduler is wiped.
    other = client.post("/api/jobs", json={**GOOD, "dataset": dataset(tmp_path, "w.nxs", seconds=0.1)}).get_json()
    record = tmp_path / "alice" / "state" / "local-jobs" / other["scheduler_id"]
    for _ in range(50):  # its supervisor may still be writing into it: wipe until it stays gone
        shutil.rmtree(record, ignore_errors=True)
        if not record.exists():
            break
        time.sleep(0.05)
    assert not record.exists()
    seen = wait_state(client, other["id"], {"lost"}, timeout=15)
    assert seen["state"] == "lost" and "no record" in seen["message"]
    assert seen["end"]["reason"] == "lost"


def test_a_job_recorded_but_never_submitted_becomes_lost(tmp_path):
    app, client = make(tmp_path)
    client.get("/api/jobs")  # the registry exists
    registry = app.extensions["hebi"]["jobs"].registry
    registry.add({"id": "crashed01", "name": "tomo", "mode": "full", "backend": "local", "state": "submitting",
                  "submitted_at": time.time() - 120, "process_list": "processing/tomo.nxs", "dataset": "data/x",
                  "output": "output/run", "job_dir": str(tmp_path), "spec": {}})
    job = wait_state(client, "crashed01", {"lost"}, timeout=10)
    assert job["state"] == "lost" and "never reached the scheduler" in job["message"]
