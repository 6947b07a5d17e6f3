"""Every file the jobs API opens for a job goes through the sandbox: a registry row edited to point at
/etc/passwd or at another user's folder, or a log replaced by a symlink leading out, gives a 403 JSON
error, never the file. In-process on the local backend (no root needed)."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from jobs_support import dataset, wait_ended
from test_bad_input import make_client

SECRET = "bob's secret reconstruction notes"



@pytest.fixture
def ended_job(tmp_path):
    client = make_client(tmp_path)
    body = {"process_list": "processing/tomo.nxs", "dataset": dataset(tmp_path, "scan.nxs", seconds=0.1),
            "output": "output/run", "mode": "full"}
    job = client.post("/api/jobs", json=body).get_json()
    assert wait_ended(client, job["id"])["state"] == "finished"
    # Another user's folder beside ours, with a log of their own.
    other = tmp_path / "bob" / "output" / "run"
    (other / "run_log").mkdir(parents=True)
    (other / "run_log" / "user.log").write_text(SECRET + "\n")
    (other / "stdout.txt").write_text(SECRET + "\n")
    return tmp_path, client, job, other


def edit_row(base: Path, job_id: str, **columns) -> None:
    """What a registry edited behind the API's back would hold."""
    db = sqlite3.connect(base / "alice" / "state" / "jobs.sqlite3")
    spec = json.loads(db.execute("SELECT spec FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
    spec.update(columns.pop("spec", {}))
    columns["spec"] = json.dumps(spec)
    db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?", [*columns.values(), job_id])
    db.commit()
    db.close()


def assert_refused(answer) -> None:
    assert answer.status_code in (403, 404), (answer.status_code, answer.get_data()[:300])
    assert answer.get_json()["error"]
    text = answer.get_data(as_text=True)
    assert SECRET not in text and "root:" not in text


@pytest.mark.parametrize("target", ["/etc", "other user"])
def test_a_registry_row_pointing_outside_the_users_roots_is_refused(ended_job, target):
    base, client, job, other = ended_job
    folder = "/etc" if target == "/etc" else str(other)
    log = "/etc/passwd" if target == "/etc" else str(other / "stdout.txt")
    edit_row(base, job["id"], run_dir=folder, spec={"stdout": log, "stderr": log})
    for stream in ("stdout", "stderr", "user"):
        assert_refused(client.get(f"/api/jobs/{job['id']}/log", query_string={"stream": stream}))
        assert_refused(client.get(f"/api/jobs/{job['id']}/log", query_string={"stream": stream, "follow": 1}))
    assert_refused(client.get(f"/api/jobs/{job['id']}/outputs"))


def test_a_log_replaced_by_a_symlink_leading_out_is_refused(ended_job):
    base, client, job, other = ended_job
    stderr = Path(client.application.extensions["hebi"]["jobs"].registry.get(job["id"])["spec"]["stderr"])
    stderr.unlink()
    os.symlink("/etc/passwd", stderr)
    assert_refused(client.get(f"/api/jobs/{job['id']}/log", query_string={"stream": "stderr"}))
    # An output file that is a symlink out of the roots is not listed; the rest still is.
    run = base / "roots" / job["run_folder"]
    os.symlink(other / "stdout.txt", run / "theirs.txt")
    files = client.get(f"/api/jobs/{job['id']}/outputs").get_json()["files"]
    assert files and not any("theirs.txt" in entry["path"] for entry in files)
