"""Isolation (issue 9, findings 1-5): alice, with a real login, goes after bob's jobs, folders, lists and
scans through the gateway and nginx; bob's folders are compared with their snapshot after every test."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from attack import (  # noqa: F401 - fixtures
    BOB_VALUE,
    COUNT,
    MARK,
    bob_untouched,
    leaks_bob,
    once,
    set_params,
    simple_list,
    tiny_scan,
    wait_for_job,
    world,
)

from hebi_common.identity import Identity, sign_identity
from hebi_common.session import SessionContext, StateFolderError, check_state_dir

ENDED_BADLY = ("failed", "cancelled", "timeout", "lost")


def submit(world, finding: str, **body):
    body = {"process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": "output/runs",
            "mode": "full", **body}
    return world.alice.hostile("POST", "/api/jobs", json=body, finding=finding)


def refused_or_failed(world, answer, finding: str, because: tuple[str, ...] = ("outside",)) -> dict | None:
    """A job built on a hostile input is refused at submission (4xx), or runs and fails: never finishes.
    Either way for the hostile reason (one of ``because`` in the refusal or the job's message and log),
    so that a job failing for anything else proves nothing."""
    if answer.status_code != 201:
        assert 400 <= answer.status_code < 500, answer.text
        assert any(word in answer.json()["error"].lower() for word in because), answer.text
        COUNT.outcome(finding, "refused at submission")
        return None
    COUNT.outcome(finding, "failed in the runner")
    job = wait_for_job(world.alice, world.url, answer.json()["id"])
    assert job["state"] in ENDED_BADLY, f"a job on a hostile input ran to the end: {job}"
    log = world.alice.hostile("GET", f"/api/jobs/{job['id']}/log", params={"stream": "stderr"}, expect=200)
    assert not leaks_bob(log.content)
    said = (job["message"] + log.json()["text"]).lower()
    assert any(word in said for word in because), f"the job failed, but not for the hostile input: {job}"
    return job


def alice_job(world, pytestconfig) -> dict:
    """One finished job of alice's own (shared by the tests that need one)."""
    def make():
        answer = world.alice.post(f"{world.url}/api/jobs", json={
            "process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": "output/mine",
            "mode": "full"}, timeout=60)
        assert answer.status_code == 201, answer.text
        job = wait_for_job(world.alice, world.url, answer.json()["id"])
        assert job["state"] == "finished", job
        return job, None
    return once("alice_job", make, pytestconfig)


def state_folder(world, user: str) -> Path:
    config = yaml.safe_load(world.system.config_path.read_text())
    candidates = list(Path(config["launcher"]["local"]["state_dir"]).glob(f"{user}/**/jobs.sqlite3"))
    candidates += list(Path(world.system.base).glob(f"**/{user}/**/jobs.sqlite3"))
    assert candidates, f"no job registry of {user} found"
    return candidates[0].parent


# -- 1. one job store for everyone ---------------------------------------------------------------------

JOB_ENDPOINTS = [("GET", "/api/jobs/{id}"), ("GET", "/api/jobs/{id}?refresh=1"),
                 ("GET", "/api/jobs/{id}/log"), ("GET", "/api/jobs/{id}/log?stream=user"),
                 ("GET", "/api/jobs/{id}/log?stream=stdout"), ("GET", "/api/jobs/{id}/log?stream=stderr"),
                 ("GET", "/api/jobs/{id}/log?stream=user&follow=1"), ("GET", "/api/jobs/{id}/outputs"),
                 ("POST", "/api/jobs/{id}/cancel"), ("POST", "/api/jobs/{id}/cancel?json"),
                 ("GET", "/api/jobs/{id}%2F..%2F{id}"),
                 ("GET", "/api/jobs/{id}/log?stream=../../../bob"), ("DELETE", "/api/jobs/{id}")]


@pytest.mark.parametrize("method,template", JOB_ENDPOINTS)
def test_finding_01_one_job_store_for_everyone_bobs_job_ids_mean_nothing_to_alice(world, method, template):
    path = template.format(id=world.bob_job["id"])
    body = {"json": {}} if path.endswith("?json") else {}
    answer = world.alice.refused(method, path.removesuffix("?json"), finding="01", **body)
    assert answer.status_code in (400, 404, 405, 415), answer.text


def test_finding_01_one_job_store_for_everyone(world, pytestconfig):
    mine = alice_job(world, pytestconfig)
    listed = world.alice.hostile("GET", "/api/jobs?refresh=1", expect=200, finding="01").json()
    ids = {job["id"] for job in listed["jobs"]}
    assert mine["id"] in ids and world.bob_job["id"] not in ids
    for query in (MARK, "job", world.bob_job["id"], "bob"):
        found = world.alice.hostile("GET", "/api/jobs", params={"q": query}, expect=200, finding="01").json()
        assert world.bob_job["id"] not in {job["id"] for job in found["jobs"]}
    # On disk: each user has a registry of their own, in a 0700 folder marked as theirs.
    alice_state, bob_state = state_folder(world, "alice"), state_folder(world, "bob")
    assert alice_state != bob_state
    for user, folder in (("alice", alice_state), ("bob", bob_state)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        assert (folder / "owner").read_text().strip() == user
        assert folder.resolve() != Path("/.hebi")
    # A session refuses a state folder that is another user's, or that names no user.
    with pytest.raises(StateFolderError):
        check_state_dir(bob_state, "alice", "")
    with pytest.raises(StateFolderError):
        check_state_dir(Path("/tmp/hebi-shared-state"), "alice", "")
    with pytest.raises((StateFolderError, RuntimeError)):
        SessionContext.from_environment(world_config(world), {
            "HEBI_SESSION_USER": "alice", "HEBI_SESSION_SECRET": "s", "HEBI_SESSION_STATE_DIR": str(bob_state)})


def world_config(world):
    from hebi_common.config import load_config
    return load_config(world.system.config_path, environ={})


def test_finding_01_job_paths_go_through_the_sandbox(world, pytestconfig):
    """Even a registry record that names bob's files (a damaged or older registry) opens nothing of his."""
    job = alice_job(world, pytestconfig)
    db_path = state_folder(world, "alice") / "jobs.sqlite3"
    with sqlite3.connect(db_path) as db:
        spec, run_dir, job_dir = db.execute("SELECT spec, run_dir, job_dir FROM jobs WHERE id = ?",
                                            (job["id"],)).fetchone()
    bob_notes = str(world.bob_folders["data"] / "secret" / "notes.txt")
    hostile = dict(json.loads(spec), stdout=bob_notes, stderr=bob_notes)
    bob_run = str(next((world.bob_folders["output"] / "runs").iterdir()))
    try:
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE jobs SET spec = ?, run_dir = ?, job_dir = ? WHERE id = ?",
                       (json.dumps(hostile), bob_run, str(world.bob_folders["data"]), job["id"]))
        for stream in ("stdout", "stderr", "user"):
            answer = world.alice.hostile("GET", f"/api/jobs/{job['id']}/log", params={"stream": stream},
                                         finding="01")
            assert answer.status_code in (200, 403, 404, 409), answer.text
            if answer.status_code == 200:
                assert not answer.json()["text"] and not answer.json()["exists"], answer.text
        outputs = world.alice.hostile("GET", f"/api/jobs/{job['id']}/outputs", finding="01")
        assert outputs.status_code in (200, 403, 404, 409), outputs.text
        if outputs.status_code == 200:
            assert outputs.json()["files"] == [], outputs.text
    finally:
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE jobs SET spec = ?, run_dir = ?, job_dir = ? WHERE id = ?",
                       (spec, run_dir, job_dir, job["id"]))


def test_finding_01_adduser_creates_the_users_folders(world):
    """``hebi-gateway adduser NAME`` as docs/admin.md shows it: the new user's roots exist at once."""
    subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(world.system.config_path), "adduser",
                    "newcomer", "--password-stdin"], input="newcomer-password-9\n", text=True, check=True,
                   capture_output=True)
    config = yaml.safe_load(world.system.config_path.read_text())
    for name, root in config["session"]["roots"].items():
        assert Path(root["path"].replace("{user}", "newcomer")).is_dir(), f"adduser did not create {name}"
    http = world.system.login("newcomer", "newcomer-password-9")
    for root in ("data", "processing", "output"):
        assert http.get(f"{world.url}/api/files", params={"root": root}, timeout=60).status_code == 200


# -- the sandbox and the identity, as regression (these held in the attack) ---------------------

TRAVERSALS = ["../../bob/data", "../../bob/data/secret/notes.txt", "../bob", "..", "../..", "../../../..",
              "a/../../../bob/data", "./../../bob/data", "....//....//bob/data", "..%2f..%2fbob%2fdata",
              "%2e%2e/%2e%2e/bob/data", "..\\..\\bob\\data", "..;/..;/bob/data", "data/../../../bob/data",
              "secret\x00/../../bob", "notes.txt\x00.nxs", "\u2025/\u2025/bob/data", "~bob/data", "${HOME}/../bob",
              "/../../bob/data", "//../../bob/data", "link_to_bob", "link_to_bob/secret/notes.txt",
              "link_to_root/bob/data"]


@pytest.fixture
def links(world):
    """Symlinks in alice's data that lead to bob's folders (as a crafted archive would leave them)."""
    data = world.alice_folders["data"]
    for name, target in (("link_to_bob", world.bob_folders["data"]), ("link_to_root", world.bob_folders["data"].parent.parent)):
        if not (data / name).is_symlink():
            os.symlink(target, data / name)
    yield
    for name in ("link_to_bob", "link_to_root"):
        (data / name).unlink()


def _with_absolute(world) -> list[str]:
    return TRAVERSALS + [str(world.bob_folders["data"]), str(world.bob_folders["data"] / "secret" / "notes.txt")]


@pytest.mark.parametrize("index", range(len(TRAVERSALS) + 2))
def test_path_traversal_into_bobs_folders_is_refused_everywhere(world, links, index):
    traversal = _with_absolute(world)[index]
    alice = world.alice
    reads = [("GET", "/api/files", {"params": {"root": "data", "path": traversal}}),
             ("GET", "/api/process-lists", {"params": {"folder": traversal}}),
             ("GET", "/data/meta", {"params": {"file": f"data/{traversal}", "path": "/"}}),
             ("GET", "/data/data", {"params": {"file": f"data/{traversal}", "path": "/entry1/tomo_entry/title"}})]
    for method, path, kwargs in reads:
        answer = alice.hostile(method, path, finding="traversal", **kwargs)
        if answer.status_code == 200:  # only alice's own folder may ever be listed
            assert answer.json().get("entries", answer.json().get("lists", [])) == [], answer.text
        else:
            assert answer.status_code in (400, 403, 404, 413, 422), answer.text
    writes = [("PUT", "/api/files", {"params": {"root": "output", "path": f"{traversal}/dropped.txt"},
                                     "data": MARK.replace("BOB", "ALICE")}),
              ("POST", "/api/jobs", {"json": {"process_list": f"processing/{traversal}/bob_list.nxs",
                                              "dataset": "data/scan.nxs", "output": "output/x", "mode": "full"}}),
              ("POST", "/api/jobs", {"json": {"process_list": "processing/alice_list.nxs",
                                              "dataset": f"data/{traversal}/scan.nxs", "output": "output/x",
                                              "mode": "full"}}),
              ]
    for method, path, kwargs in writes:
        alice.refused(method, path, finding="traversal", **kwargs)
    # An output folder is made if missing; the preview is bad on purpose, so that no job runs: the
    # answer is the output's refusal or the preview's, and bob's folders are compared after the test.
    alice.refused("POST", "/api/jobs", finding="traversal", json={
        "process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": f"output/{traversal}",
        "mode": "preview", "preview": "not a preview"})


@pytest.mark.parametrize("output", ["....//....//bob/data", "link_to_bob", "/ABS/users/bob/output"])
def test_an_output_folder_named_like_a_traversal_stays_in_alices_output(world, links, output):
    output = output.replace("/ABS", str(world.system.base))
    job = world.alice.hostile("POST", "/api/jobs", finding="traversal", json={
        "process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": f"output/{output}",
        "mode": "full"})
    if job.status_code != 201:
        assert 400 <= job.status_code < 500, job.text
        return
    run_folder = job.json()["run_folder"]
    assert run_folder.startswith("output/"), job.text
    where = Path(world.alice_folders["output"], run_folder.partition("/")[2]).resolve()
    assert where.is_relative_to(world.alice_folders["output"].resolve()), where
    done = wait_for_job(world.alice, world.url, job.json()["id"])
    assert done["state"] == "finished", done


@pytest.mark.parametrize("quoted", ["..%2F..%2Fbob%2Fprocessing%2Fbob_list.nxs", "%2e%2e/%2e%2e/bob/processing/bob_list.nxs",
                                    "..%252F..%252Fbob%252Fprocessing%252Fbob_list.nxs",
                                    "%2E%2E%2F%2E%2E%2Fbob%2Fprocessing%2Fmarked.nxs"])
def test_encoded_traversal_in_url_paths_is_refused(world, quoted):
    # nginx decodes and normalises the path first: what leaves /api/ gets the app's page, never bob's list.
    for suffix in ("", "/disp", "/cite", "/problems"):
        answer = world.alice.hostile("GET", f"/api/process-lists/{quoted}{suffix}", finding="traversal")
        assert 400 <= answer.status_code < 500 or '<div id="root">' in answer.text, answer.text
    answer = world.alice.hostile("DELETE", f"/api/process-lists/{quoted}", headers={"If-Match": "*"},
                                 finding="traversal", json_error=False)  # nginx's own 405 outside /api/
    assert 400 <= answer.status_code < 500, answer.text


FORGED = [{"X-Hebi-User": "bob"}, {"X-Remote-User": "bob"}, {"Remote-User": "bob"}, {"X-Forwarded-User": "bob"},
          {"X-Hebi-Identity": "eyJ1c2VyIjoiYm9iIn0.forged"}, {"x-hebi-identity": "e30.e30"},
          {"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Host": "bob.localhost"}, {"Host": "bob.localhost"},
          {"Forwarded": "for=1.2.3.4;host=bob"}, {"Cookie": "hebi_session=; user=bob"},
          {"X-Original-URL": "/api/whoami?user=bob"}, {"X-Rewrite-URL": "/../bob"}]


@pytest.mark.parametrize("headers", FORGED + ["signed-for-bob"])
def test_identity_forgery_never_makes_alice_bob(world, headers):
    if headers == "signed-for-bob":
        headers = {"X-Hebi-Identity": sign_identity(Identity(user="bob"), "a-guessed-secret")}
    answer = world.alice.hostile("GET", "/api/whoami", headers=headers, finding="identity")
    assert answer.status_code in (200, 400, 401), answer.text
    if answer.status_code == 200:
        assert answer.json()["user"] == "alice"
    files = world.alice.hostile("GET", "/api/files", params={"root": "data"}, headers=headers, finding="identity")
    if files.status_code == 200:
        assert "secret" not in {e["name"] for e in files.json()["entries"]}


# -- 2. a job writes outside its run folder ----------------------------------------------------------------

ESCAPING_NAMES = ["../../../../bob/processing/X", "../X", "..", "a/b", "/tmp/X", "X\x00", "./X", "X/..", "~/X",
                  "tomo/../../X", "X\\..\\Y", ".hidden", "-rf", "X Y", "X\nY", ""]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_finding_02_dataset_names_must_be_plain_identifiers_in_the_editor(world, name):
    """A dataset name that is not a plain identifier is refused when the list is saved."""
    alice = world.alice
    body = {"plugins": [{"name": "NxtomoLoader"}, {"name": "DarkFlatFieldCorrection"},
                        {"name": "MedianFilter", "params": {"out_datasets": [name]}}]}
    alice.refused("PUT", f"/api/process-lists/escape_{abs(hash(name))}.nxs", json=body, finding="02")
    body["plugins"][2]["params"] = {"in_datasets": [name]}
    alice.refused("PUT", f"/api/process-lists/escape_in_{abs(hash(name))}.nxs", json=body, finding="02")


def crafted_upload(world, name: str, build) -> str:
    """A file alice builds on her side and uploads as plain bytes (PUT /api/files); its <root>/<path>."""
    local = world.system.base / "crafted" / name
    local.parent.mkdir(parents=True, exist_ok=True)
    build(local)
    answer = world.alice.hostile("PUT", "/api/files", params={"root": name.split("/")[0], "path": name.partition("/")[2]},
                                 data=local.read_bytes())
    assert answer.status_code in (201, 400, 403, 413, 415, 422), answer.text
    return name


def test_finding_02_a_job_writes_outside_its_run_folder(world):
    escape = "../../../../bob/processing/X"
    ref = crafted_upload(world, "processing/escape.nxs", lambda p: simple_list(
        p, edit={"2": {"out_datasets": [escape]}}))
    why = ("not a dataset name", "outside")
    refused_or_failed(world, submit(world, "02", process_list=ref, output="output/escape"), "02", why)
    refused_or_failed(world, submit(world, "02", process_list=ref, output="output/escape", mode="preview"), "02", why)
    assert not list(world.bob_folders["processing"].glob("X*")), "the job wrote into bob's processing folder"


def test_finding_02_the_runner_itself_refuses_escaping_dataset_names(world, tmp_path):
    """Checked again where the runner names files: the runner run by hand on the crafted list."""
    crafted = simple_list(tmp_path / "escape.nxs", edit={"2": {"out_datasets": ["../../../../bob/processing/X"]}})
    out = world.alice_folders["output"] / "by_hand"
    out.mkdir(exist_ok=True)
    done = subprocess.run([str(Path(sys.executable).with_name("hebi-runner")), str(world.alice_folders["data"] / "scan.nxs"),
                           str(crafted), str(out)], capture_output=True, text=True, timeout=120)
    COUNT.add(1, "02")
    assert done.returncode != 0, done.stdout[-2000:]
    assert "not a dataset name" in done.stderr or "outside" in done.stderr, done.stderr[-2000:]
    assert not list(world.bob_folders["processing"].glob("X*"))


# -- 3. the runner reads other users' data -------------------------------------------------------------------

def _link_scan(world, how: str):
    bob_scan = world.bob_folders["data"] / "scan.nxs"

    def build(path: Path):
        if how == "external link":
            with h5py.File(path, "w") as f:
                f["entry1"] = h5py.ExternalLink(str(bob_scan), "/entry1")
        elif how == "relative external link":
            with h5py.File(path, "w") as f:
                f["entry1"] = h5py.ExternalLink("../../bob/data/scan.nxs", "/entry1")
        elif how in ("virtual dataset", "external raw storage"):
            tiny_scan(path)
            with h5py.File(bob_scan, "r") as src:
                source = src["entry1/tomo_entry/instrument/detector/data"]
                shape, dtype = source.shape, source.dtype
                offset = source.id.get_offset()
            with h5py.File(path, "a") as f:
                detector = f["entry1/tomo_entry/instrument/detector"]
                del f["entry1/tomo_entry/data/data"]
                del detector["data"]
                if how == "virtual dataset":
                    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
                    layout[...] = h5py.VirtualSource(str(bob_scan), "entry1/tomo_entry/instrument/detector/data",
                                                     shape=shape)
                    detector.create_virtual_dataset("data", layout)
                else:
                    nbytes = int(np.prod(shape)) * dtype.itemsize
                    detector.create_dataset("data", shape=shape, dtype=dtype,
                                            external=[(str(bob_scan), offset or 0, nbytes)])
                f["entry1/tomo_entry/data/data"] = detector["data"]
    return build


@pytest.mark.parametrize("how", ["external link", "relative external link", "virtual dataset",
                                 "external raw storage"])
def test_finding_03_the_runner_reads_other_users_data(world, how):
    name = how.replace(" ", "_")
    ref = crafted_upload(world, f"data/{name}.nxs", _link_scan(world, how))
    refused_or_failed(world, submit(world, "03", dataset=ref, output=f"output/{name}"), "03")


@pytest.mark.parametrize("which", ["dark", "flat"])
def test_finding_03_absolute_dark_and_flat_paths_are_confined(world, which):
    bob_scan = str(world.bob_folders["data"] / "scan.nxs")
    setting = [bob_scan, "/entry1/tomo_entry/instrument/detector/data", 1.0]
    body = {"plugins": [{"name": "NxtomoLoader", "params": {which: setting}}, {"name": "DarkFlatFieldCorrection"}]}
    saved = world.alice.hostile("PUT", f"/api/process-lists/{which}_abs.nxs", json=body, finding="03")
    assert saved.status_code in (200, 201) or 400 <= saved.status_code < 500
    ref = crafted_upload(world, f"processing/{which}_crafted.nxs",
                         lambda p: simple_list(p, edit={"1": {which: setting}}))
    refused_or_failed(world, submit(world, "03", process_list=ref, output=f"output/{which}"), "03")
    relative = ["../../bob/data/scan.nxs", "/entry1/tomo_entry/instrument/detector/data", 1.0]
    ref = crafted_upload(world, f"processing/{which}_relative.nxs",
                         lambda p: simple_list(p, edit={"1": {which: relative}}))
    refused_or_failed(world, submit(world, "03", process_list=ref, output=f"output/{which}_rel"), "03")


# -- 4. process lists follow HDF5 links ---------------------------------------------------------------------

LIST_LINKS = ["external link", "relative external link", "virtual dataset", "printf virtual dataset"]


def _linked_list(world, how: str):
    """A process list whose plugins are bob's: an external link to his list's plugin group, or a
    virtual dataset whose source is his first plugin's parameters (printf-style: list_%b.nxs)."""
    bob_list = world.bob_folders["processing"] / "marked.nxs"
    target = "../../bob/processing/marked.nxs" if how == "relative external link" else str(bob_list)

    def build(path: Path):
        simple_list(path)
        with h5py.File(path, "a") as f:
            if how.endswith("external link"):
                del f["entry/plugin"]
                f["entry/plugin"] = h5py.ExternalLink(target, "/entry/plugin")
                return
            with h5py.File(bob_list, "r") as bob:
                dtype = bob["entry/plugin/1/data"].dtype
            del f["entry/plugin/1/data"]
            if how == "virtual dataset":
                layout = h5py.VirtualLayout(shape=(1,), dtype=dtype)
                layout[0] = h5py.VirtualSource(str(bob_list), "entry/plugin/1/data", shape=(1,))
                f["entry/plugin/1"].create_virtual_dataset("data", layout)
            else:
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                virtual = h5py.h5s.create_simple((1,), (h5py.h5s.UNLIMITED,))
                virtual.select_hyperslab((0,), (h5py.h5s.UNLIMITED,), stride=(1,), block=(1,))
                source = str(world.bob_folders["processing"] / "list_%b.nxs").encode()
                dcpl.set_virtual(virtual, source, b"/entry/plugin/1/data", h5py.h5s.create_simple((1,)))
                h5py.h5d.create(f["entry/plugin/1"].id, b"data", h5py.h5t.py_create(dtype), virtual, dcpl=dcpl)
    return build


@pytest.mark.parametrize("how", LIST_LINKS)
def test_finding_04_process_lists_follow_hdf5_links(world, how):
    name = f"linked_{how.replace(' ', '_')}.nxs"
    crafted_upload(world, f"processing/{name}", _linked_list(world, how))
    alice = world.alice
    for suffix in ("", "/disp", "/disp?verbose=1&datasets=1", "/cite", "/problems"):
        alice.refused("GET", f"/api/process-lists/{name}{suffix}", finding="04")
    alice.refused("POST", f"/api/process-lists/{name}/operations",
                  json={"operations": [{"op": "set", "plugin": "1", "param": "data_path", "value": "x"}]},
                  headers={"If-Match": "*"}, finding="04")
    alice.refused("POST", f"/api/process-lists/copy_of_{name}", json={"copy_from": name}, finding="04")
    alice.refused("POST", "/api/jobs", json={"process_list": f"processing/{name}", "dataset": "data/scan.nxs",
                                             "output": "output/linked", "mode": "full"}, finding="04")
    answer = alice.hostile("GET", f"/api/process-lists/{name}", headers={"Accept": "application/x-hdf5"}, finding="04")
    assert not leaks_bob(answer.content)  # the file itself holds only the link: it is alice's own bytes
    assert not (world.alice_folders["processing"] / f"copy_of_{name}").exists()


def test_finding_04_a_linked_list_is_refused_when_uploaded_as_a_list(world):
    local = world.system.base / "crafted" / "linked_upload.nxs"
    _linked_list(world, "external link")(local)
    world.alice.refused("PUT", "/api/process-lists/linked_upload.nxs", data=local.read_bytes(),
                        headers={"Content-Type": "application/x-hdf5"}, finding="04")
    assert not (world.alice_folders["processing"] / "linked_upload.nxs").exists()


# -- 5. printf-style virtual dataset sources ---------------------------------------------------------------

def _vds(world, how: str):
    bob_data = world.bob_folders["data"]

    def build(path: Path):
        with h5py.File(path, "w") as f:
            if how.startswith("printf"):
                source = (str(bob_data / "series_%b.h5") if how == "printf absolute"
                          else "../../bob/data/series_%b.h5")
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                virtual = h5py.h5s.create_simple((8,), (h5py.h5s.UNLIMITED,))
                virtual.select_hyperslab((0,), (h5py.h5s.UNLIMITED,), stride=(4,), block=(4,))
                dcpl.set_virtual(virtual, source.encode(), b"/data", h5py.h5s.create_simple((4,)))
                h5py.h5d.create(f.id, b"values", h5py.h5t.NATIVE_DOUBLE, virtual, dcpl=dcpl)
            elif how == "plain vds":
                layout = h5py.VirtualLayout(shape=(2, 4), dtype="f8")
                for i in range(2):
                    layout[i] = h5py.VirtualSource(str(bob_data / f"series_{i}.h5"), "data", shape=(4,))
                f.create_virtual_dataset("values", layout)
            elif how == "external link":
                f["values"] = h5py.ExternalLink(str(bob_data / "series_0.h5"), "/data")
            elif how == "external raw storage":
                with h5py.File(bob_data / "series_0.h5", "r") as src:
                    offset = src["data"].id.get_offset()
                f.create_dataset("values", shape=(4,), dtype="f8",
                                 external=[(str(bob_data / "series_0.h5"), offset, 32)])
    return build


@pytest.mark.parametrize("how", ["printf absolute", "printf relative", "plain vds", "external link",
                                 "external raw storage"])
def test_finding_05_dataserver_vds_check_misses_printf_source_names(world, how):
    name = f"data/vds_{how.replace(' ', '_')}.h5"
    crafted_upload(world, name, _vds(world, how))
    alice = world.alice
    for path, params in (("/data/data", {"path": "/values"}), ("/data/data", {"path": "/values", "format": "bin"}),
                         ("/data/data", {"path": "/values", "selection": "0"}),
                         ("/data/stats", {"path": "/values"}), ("/data/data", {"path": "/values", "format": "npy"})):
        alice.refused("GET", path, params={"file": name, **params}, finding="05")
    for path in ("/data/meta", "/data/attr", "/data/paths"):
        answer = alice.hostile("GET", path, params={"file": name, "path": "/values"}, finding="05")
        assert answer.status_code in (200, 400, 403, 404, 422), answer.text
    assert BOB_VALUE  # the values themselves are looked for in every answer by Attacker.hostile
