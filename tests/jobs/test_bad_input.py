"""What a scientist gets back for a job that cannot be: a clear 4xx naming the problem, and nothing
submitted - no job in the list, nothing handed to the backend. And a scheduler that cannot be reached
gets 503 "cluster unavailable" with the reason. Runs in-process on the local backend (no root needed)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, signed_client
from jobs_support import dataset, write_session

from hebi_common.config import load_config
from hebi_common.sandbox import Roots
from hebi_common.session import SessionContext


def make_client(base: Path, **jobs_overrides):
    from hebi_api.app import create_app
    config = load_config(write_session(base, "local", **jobs_overrides), environ={})
    context = SessionContext(user="alice", home="", secret="s", roots=Roots.from_config(config.session.roots, "alice"),
                             state_dir=Path(config.session.state_dir.replace("{user}", "alice")))
    return signed_client(create_app(config, context), context)


@pytest.fixture
def session(tmp_path):
    client = make_client(tmp_path)
    dataset(tmp_path, "scan.nxs", seconds=0.1)
    (tmp_path / "roots" / "processing" / "notes.nxs").write_text("this is not HDF5")
    (tmp_path / "roots" / "output" / "a-file").write_text("x")
    return tmp_path, client


GOOD = {"process_list": "processing/tomo.nxs", "dataset": "data/scan.nxs", "output": "output/run", "mode": "full"}


def assert_nothing_submitted(base: Path, client) -> None:
    assert client.get("/api/jobs").get_json()["total"] == 0
    spool = base / "alice" / "state" / "local-jobs"
    assert not spool.exists() or not [entry for entry in spool.iterdir() if entry.is_dir()]


@pytest.mark.parametrize("change, status, words", [
    ({"dataset": "data/missing.nxs"}, 404, "does not exist"),
    ({"process_list": "processing/missing.nxs"}, 404, "does not exist"),
    ({"process_list": "processing/notes.nxs"}, 400, "processing/notes.nxs"),
    ({"process_list": "processing"}, 400, "is a folder"),
    ({"output": "output/../../elsewhere"}, 400, "'..'"),
    ({"output": "scratch/run"}, 404, "unknown root"),
    ({"output": "data/run"}, 403, "read-only"),
    ({"output": "output/a-file"}, 400, "is a file"),
    ({"mode": "quick"}, 400, "unknown mode"),
    ({"mode": None}, 400, "'mode' is required"),
    ({"resources": {"queue": "fast.q"}}, 400, "unknown queue"),
    ({"resources": {"time_limit": 999999}}, 400, "more than full jobs may ask for"),
    ({"resources": {"cores": 64}}, 400, "64 cores is more than"),
    ({"resources": {"memory_mb": 10**7}}, 400, "MB of memory is more than"),
    ({"resources": {"cores": "two"}}, 400, "whole number"),
    ({"resources": {"gpus": 1}}, 400, "unknown resource"),
    ({"preview": 3}, 400, "preview jobs only"),
    ({"surprise": 1}, 400, "unknown field"),
])
def test_bad_submissions_are_refused_and_nothing_is_submitted(session, change, status, words):
    base, client = session
    answer = client.post("/api/jobs", json={**GOOD, **change})
    assert answer.status_code == status, answer.get_json()
    assert words in answer.get_json()["error"]
    assert_nothing_submitted(base, client)


ODD_NAMES = ["it's (a) test", "scan [2] {x}", 'say "hi"; echo $(id) `id` a|b && c > d', "tilde~ star* what?!",
             "émigré 世界", "-leading dash", "back\\slash"]


@pytest.mark.parametrize("odd", ODD_NAMES)
def test_any_printable_name_is_accepted_and_kept(session, odd):
    """Commands are argument lists and no shell sees them: quotes, brackets and spaces are just
    characters, in the job's name and in the names of its files (issue 9 #18)."""
    base, client = session
    folder = odd.replace("\\", "_")  # the sandbox reads a backslash as a folder separator
    shutil.copy(base / "roots" / "processing" / "tomo.nxs", base / "roots" / "processing" / f"{folder}.nxs")
    dataset(base, f"{folder}.nxs", seconds=0.1)
    answer = client.post("/api/jobs", json={"process_list": f"processing/{folder}.nxs", "dataset": f"data/{folder}.nxs",
                                            "output": f"output/{folder}", "mode": "full", "name": odd})
    assert answer.status_code == 201, answer.get_json()
    job = answer.get_json()
    assert job["name"] == odd and job["dataset"] == f"data/{folder}.nxs" and job["output"] == f"output/{folder}"


@pytest.mark.parametrize("field", ["process_list", "dataset", "output", "name"])
@pytest.mark.parametrize("invisible", ["x\ny", "a\rb", "\x1b[31mred", "tab\there", "abc\u202edcba", "nul\x00"])
def test_control_characters_are_refused_in_every_field(session, field, invisible):
    base, client = session
    value = invisible if field == "name" else GOOD.get(field, "") + invisible
    answer = client.post("/api/jobs", json={**GOOD, field: value})
    assert answer.status_code == 400
    assert f"'{field}' contains control or invisible characters" in answer.get_json()["error"]
    assert_nothing_submitted(base, client)


def test_a_queue_starting_with_a_dash_is_refused(session):
    base, client = session
    answer = client.post("/api/jobs", json={**GOOD, "resources": {"queue": "-l h_rt=99:00:00"}})
    assert answer.status_code == 400 and "must not start with '-'" in answer.get_json()["error"]
    assert_nothing_submitted(base, client)


def test_a_dataset_that_is_not_hdf5_is_refused_naming_it(session):
    base, client = session
    (base / "roots" / "data" / "notes.nxs").write_text("a text file named like a scan")
    answer = client.post("/api/jobs", json={**GOOD, "dataset": "data/notes.nxs"})
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert "data/notes.nxs" in error and "not a readable NeXus/HDF5 file" in error
    assert_nothing_submitted(base, client)


GPU_LIST = FIXTURES / "process_lists" / "mpi_gpu_test.nxs"


def test_a_gpu_plugin_on_a_queue_without_gpus_is_refused(session):
    base, client = session
    shutil.copy(GPU_LIST, base / "roots" / "processing" / "gpu.nxs")
    answer = client.post("/api/jobs", json={**GOOD, "process_list": "processing/gpu.nxs"})
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert "AstraReconGpu" in error and "needs a GPU" in error
    assert_nothing_submitted(base, client)


def test_a_gpu_plugin_runs_where_the_queue_has_gpus(tmp_path):
    client = make_client(tmp_path, full={"backend": "local", "gpus": 1})
    dataset(tmp_path, "scan.nxs", seconds=0.1)
    shutil.copy(GPU_LIST, tmp_path / "roots" / "processing" / "gpu.nxs")
    answer = client.post("/api/jobs", json={**GOOD, "process_list": "processing/gpu.nxs"})
    assert answer.status_code == 201, answer.get_json()


def test_a_bad_preview_choice_is_refused(session):
    base, client = session
    for preview, words in ((0, "between 1 and 1000"), ("mid-2:mid+3;ls", "'preview'"),
                           ("import os", "'preview'"), (True, "number of central slices")):
        answer = client.post("/api/jobs", json={**GOOD, "mode": "preview", "preview": preview})
        assert answer.status_code == 400 and words in answer.get_json()["error"], (preview, answer.get_json())
    assert_nothing_submitted(base, client)


def test_an_unreachable_scheduler_gives_503_and_keeps_nothing(tmp_path):
    # Slurm whose commands are missing: as unreachable as a controller that is down.
    client = make_client(tmp_path, preview={"backend": "slurm", "queue": "preview"},
                         full={"backend": "slurm", "queue": "full"}, slurm={"bin_dir": str(tmp_path / "nowhere")})
    dataset(tmp_path, "scan.nxs")
    answer = client.post("/api/jobs", json=GOOD)
    assert answer.status_code == 503
    assert answer.get_json()["error"].startswith("cluster unavailable: sbatch is not installed")
    assert client.get("/api/jobs").get_json()["total"] == 0
    assert not list((tmp_path / "roots" / "output" / ".hebi").glob("*")), "no job folder left behind"
    modes = client.get("/api/cluster").get_json()["modes"]
    assert [mode["available"] for mode in modes] == [False, False] and "is not installed" in modes[0]["reason"]


def test_unknown_jobs_and_logs_are_404_and_400(session):
    base, client = session
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/cancel").status_code == 404
    assert client.get("/api/jobs", query_string={"state": "sleeping"}).status_code == 400
    job = client.post("/api/jobs", json=GOOD).get_json()
    answer = client.get(f"/api/jobs/{job['id']}/log", query_string={"stream": "/etc/passwd"})
    assert answer.status_code == 400 and "unknown log" in answer.get_json()["error"]


def test_the_jobs_api_is_in_the_openapi_document(session):
    base, client = session
    document = client.get("/api/openapi.json").get_json()
    for path in ("/jobs", "/jobs/{id}", "/jobs/{id}/cancel", "/jobs/{id}/log", "/jobs/{id}/outputs",
                 "/jobs/events", "/cluster"):
        assert path in document["paths"], path
    text = str(document)
    import re
    for section, name in re.findall(r"#/components/(\w+)/(\w+)", text):
        assert name in document["components"][section], f"dangling $ref {section}/{name}"


def test_a_plugin_unknown_to_the_catalogue_is_refused_only_while_active(session):
    """A facility's own (or a retired) plugin opens and round-trips in the editor; a job is refused
    with the plugin named while it is switched on, and runs once it is switched off."""
    from hebi_common.savu.process_list import PluginEntry, read_process_list, write_process_list
    base, client = session
    process_list = read_process_list(base / "roots" / "processing" / "tomo.nxs")
    own = PluginEntry(pos="", name="FacilityBeamHardening", module="facility.plugins.beam_hardening",
                      active=True, params={"order": 2}, known=False)
    process_list.plugins.insert(1, own)
    for number, entry in enumerate(process_list.plugins, start=1):
        entry.pos = str(number)
    write_process_list(process_list, base / "roots" / "processing" / "own.nxs")

    answer = client.post("/api/jobs", json=dict(GOOD, process_list="processing/own.nxs"))
    assert answer.status_code == 400
    assert "FacilityBeamHardening" in answer.get_json()["error"]
    assert_nothing_submitted(base, client)

    switched = client.post("/api/process-lists/own.nxs/operations", json={"operations": [
        {"op": "set", "pos": "2", "state": "off"}]},
        headers={"If-Match": client.get("/api/process-lists/own.nxs").headers["ETag"]})
    assert switched.status_code == 200, switched.get_json()
    answer = client.post("/api/jobs", json=dict(GOOD, process_list="processing/own.nxs"))
    assert answer.status_code == 201, answer.get_json()


@pytest.mark.parametrize("how", ["external link", "virtual dataset", "external raw storage", "link to a link"])
def test_a_dataset_leading_out_of_the_users_folders_is_refused_at_submission(session, how):
    """A real Savu lets HDF5 follow every link in the dataset: a scan whose /entry1 is another user's
    reaches that user's data unless submission refuses it (hebi-runner refuses again as it reads)."""
    import h5py
    import numpy as np
    base, client = session
    other = base / "bob"
    other.mkdir()
    with h5py.File(other / "scan.h5", "w") as theirs:
        theirs["entry1/data"] = np.arange(12.0).reshape(3, 4)
    (other / "raw.bin").write_bytes(np.arange(12.0).tobytes())
    with h5py.File(base / "roots" / "data" / "inside.h5", "w") as inside:  # in alice's roots, linking out
        inside["entry1"] = h5py.ExternalLink(str(other / "scan.h5"), "/entry1")
    with h5py.File(base / "roots" / "data" / "crafted.nxs", "w") as crafted:
        if how == "external link":
            crafted["entry1"] = h5py.ExternalLink(str(other / "scan.h5"), "/entry1")
        elif how == "virtual dataset":
            layout = h5py.VirtualLayout((3, 4), "f8")
            layout[:] = h5py.VirtualSource(str(other / "scan.h5"), "entry1/data", (3, 4))
            crafted.create_virtual_dataset("entry1/data", layout)
        elif how == "external raw storage":
            crafted.create_dataset("entry1/data", (3, 4), "f8", external=[(str(other / "raw.bin"), 0, 96)])
        else:
            crafted["entry1"] = h5py.ExternalLink("inside.h5", "/entry1")
    answer = client.post("/api/jobs", json={**GOOD, "dataset": "data/crafted.nxs"})
    assert answer.status_code == 403, answer.get_json()
    assert "outside your folders" in answer.get_json()["error"]
    assert_nothing_submitted(base, client)
