"""A newcomer's first reconstruction, end to end through the gateway: the sample scan and its process
list, a preview job on the local backend running the built-in runner, progress, and the result opened
by the dataserver."""
import time

from make_sample_data import write_nxtomo, write_sample_process_list


def test_preview_job_reconstructs_the_sample_and_the_result_opens(system):
    folders = system.folders("alice")
    write_nxtomo(folders["data"] / "first" / "scan.nxs", angles=91, rows=8, columns=96)
    write_sample_process_list(folders["processing"] / "first_recon.nxs")
    http = system.login("alice")

    submitted = http.post(f"{system.url}/api/jobs", json={
        "process_list": "processing/first_recon.nxs", "dataset": "data/first/scan.nxs",
        "output": "output/first", "mode": "preview", "preview": 3})
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    deadline = time.monotonic() + 240
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        job = http.get(f"{system.url}/api/jobs/{job['id']}").json()
    log = http.get(f"{system.url}/api/jobs/{job['id']}/log").text
    assert job["state"] == "finished", f"{job}\n{log}"
    assert job["progress"] == 100
    assert "Running the AstraReconCpu plugin" in log or "AstraReconCpu" in log

    outputs = http.get(f"{system.url}/api/jobs/{job['id']}/outputs").json()
    processed = [o for o in outputs["files"] if o["path"].endswith("_processed.nxs")]
    assert processed, outputs
    meta = http.get(f"{system.url}/data/meta", params={"file": processed[0]["path"], "path": "/entry/final_result_tomo"})
    assert meta.status_code == 200, meta.text
    data = next(c for c in meta.json()["children"] if c["name"] == "data")
    assert data["shape"][1] == 3, data  # the preview kept three slices
