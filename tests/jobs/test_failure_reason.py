"""A failed job says why on its row: the runner's refusal, the exception Savu's traceback ends with, or
the error line of its user.log - not just "exit code 2". In-process on the local backend."""
from __future__ import annotations

import time

import pytest
from jobs_support import dataset, wait_ended
from test_bad_input import make_client

TRACEBACK = """Traceback (most recent call last):
  File "/opt/savu/savu/tomo_recon.py", line 120, in main
    plugin_runner.run()
  File "/opt/savu/savu/core/plugin_runner.py", line 88, in _run_plugin
    raise ValueError(msg)
ValueError: centre of rotation 9000.0 is outside the 160 detector columns
"""



@pytest.mark.parametrize("behaviour, reason", [
    ({"stderr": "hebi-runner: the loader found no tomography data at /entry1/tomo/data\nsome later noise"},
     "hebi-runner: the loader found no tomography data at /entry1/tomo/data"),
    ({"stderr": "INFO: starting\n" + TRACEBACK + "\n\n"},
     "ValueError: centre of rotation 9000.0 is outside the 160 detector columns"),
    ({"stderr": "", "user_log": "ERROR: The 'in_datasets' of AstraReconCpu are not there"},
     "ERROR: The 'in_datasets' of AstraReconCpu are not there"),
], ids=["runner", "savu traceback", "user.log"])
def test_a_failed_jobs_message_is_its_error_line(tmp_path, behaviour, reason):
    client = make_client(tmp_path)
    body = {"process_list": "processing/tomo.nxs", "output": "output/run", "mode": "full",
            "dataset": dataset(tmp_path, "scan.nxs", seconds=0.1, exit=2, **behaviour)}
    job = wait_ended(client, client.post("/api/jobs", json=body).get_json()["id"])
    assert job["state"] == "failed" and job["end"]["exit_code"] == 2
    assert reason in job["message"], job["message"]


def test_the_default_log_of_a_run_that_never_wrote_its_user_log_is_stderr(tmp_path):
    client = make_client(tmp_path)
    body = {"process_list": "processing/tomo.nxs", "output": "output/run", "mode": "full",
            "dataset": dataset(tmp_path, "scan.nxs", seconds=0.1, exit=2, stderr="hebi-runner: no tomography here")}
    job = wait_ended(client, client.post("/api/jobs", json=body).get_json()["id"])
    (tmp_path / "roots" / job["run_folder"] / "run_log" / "user.log").unlink()  # as when the run never got that far
    log = client.get(f"/api/jobs/{job['id']}/log").get_json()
    assert log["stream"] == "stderr" and "hebi-runner: no tomography here" in log["text"]
    assert client.get(f"/api/jobs/{job['id']}/log", query_string={"stream": "user"}).get_json()["text"] == ""
