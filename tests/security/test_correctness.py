"""Correctness a user sees (issue 9, findings 14-19), at the HTTP level through the gateway and nginx. The
Chromium tests (the download saved by a browser, the Viewer's banners, a failed row) belong to the
areas that fixed them; these check the answers those rely on."""
from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from attack import (  # noqa: F401 - fixtures
    bob_untouched,
    once,
    simple_list,
    tiny_scan,
    wait_for_job,
    world,
)

LIST = "/api/process-lists/alice_list.nxs"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# -- 14. download .nxs gives JSON in a browser ------------------------------------------------------------

def test_finding_14_json_and_hdf5_answers_have_their_own_etags_and_vary_accept(world):
    alice = world.alice
    as_json = alice.hostile("GET", LIST, expect=200, finding="14")
    as_hdf5 = alice.hostile("GET", LIST, headers={"Accept": "application/x-hdf5"}, expect=200, finding="14")
    download = alice.hostile("GET", LIST + "?format=nxs", expect=200, finding="14")
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert as_hdf5.content.startswith(HDF5_MAGIC) and download.content.startswith(HDF5_MAGIC)
    assert as_json.headers["ETag"] != as_hdf5.headers["ETag"]
    assert as_json.headers["ETag"] != download.headers["ETag"]
    for answer in (as_json, as_hdf5):
        assert "accept" in answer.headers.get("Vary", "").lower(), dict(answer.headers)
    # A browser revalidating the download with the JSON's tag gets the file, never a 304 to its JSON.
    for headers, url in (({"Accept": "application/x-hdf5", "If-None-Match": as_json.headers["ETag"]}, LIST),
                         ({"If-None-Match": as_json.headers["ETag"]}, LIST + "?format=nxs")):
        again = alice.hostile("GET", url, headers=headers, expect=200, finding="14")
        assert again.content.startswith(HDF5_MAGIC)
        with h5py.File(io.BytesIO(again.content), "r") as f:
            assert "entry/plugin" in f
    same = alice.hostile("GET", LIST + "?format=nxs", headers={"If-None-Match": download.headers["ETag"]},
                         finding="14")
    assert same.status_code == 304
    alice.refused("GET", LIST + "?format=exe", finding="14")


# -- 15. one Savu grammar -----------------------------------------------------------------------------------

PREVIEWS = {":": [0, 1], "::": [0, 1], "1.5": [1], "mid%2": [0], "end-1": [1]}


def _rows_of_result(world, job: dict) -> int:
    outputs = world.alice.get(f"{world.url}/api/jobs/{job['id']}/outputs", timeout=60).json()
    final = next(o["path"] for o in outputs["files"] if o["path"].endswith("_processed.nxs"))
    root, _, rest = final.partition("/")
    with h5py.File(world.alice_folders[root] / rest, "r") as f:
        group = f["entry"][f["entry"].attrs["default"]]
        return group["data"].shape[1]


def test_finding_15_the_editor_and_submission_agree_on_previews(world):
    """Every preview the editor accepts is accepted at submission and keeps the slices it means."""
    alice = world.alice
    jobs = {}
    for text in PREVIEWS:
        saved = alice.hostile("PUT", f"/api/process-lists/preview_{abs(hash(text))}.nxs", finding="15", json={
            "plugins": [{"name": "NxtomoLoader", "params": {"preview": [":", text, ":"]}},
                        {"name": "DarkFlatFieldCorrection"}]})
        assert saved.status_code in (200, 201), f"the editor refused {text!r}: {saved.text}"
        submitted = alice.hostile("POST", "/api/jobs", finding="15", json={
            "process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": "output/previews",
            "mode": "preview", "preview": text})
        assert submitted.status_code == 201, f"the editor accepts {text!r}, submission refused it: {submitted.text}"
        jobs[text] = submitted.json()
    for text, job in jobs.items():
        done = wait_for_job(alice, world.url, job["id"])
        assert done["state"] == "finished", done
        assert _rows_of_result(world, done) == len(PREVIEWS[text]), text


@pytest.mark.parametrize("text", ["1:", "mid:mid+1", "-1", "start:end:2", "0", "[0, 1]"])
def test_finding_15_ordinary_previews_pass_both(world, text):
    editor = world.alice.hostile("PUT", f"/api/process-lists/ordinary_{abs(hash(text))}.nxs", finding="15", json={
        "plugins": [{"name": "NxtomoLoader", "params": {"preview": [":", text, ":"]}}]})
    submission = world.alice.hostile("POST", "/api/jobs", finding="15", json={
        "process_list": "processing/ordinary_missing.nxs", "dataset": "data/scan.nxs", "output": "output/o",
        "mode": "preview", "preview": text})
    # The list named does not exist: a preview the grammar accepts gets past the preview check to that 404.
    assert (editor.status_code in (200, 201)) == (submission.status_code == 404), (editor.text, submission.text)


def test_finding_15_one_savu_grammar_for_tuning_and_none(world, pytestconfig):
    """The runner runs what the editor shows: 'True;False' is True then False, 'None;1' is None then 1."""
    from hebi_common.savu.catalogue import load_catalogue
    from hebi_runner.tuning import combinations
    catalogue = load_catalogue("bundled")
    rings = catalogue.get("RemoveUnresponsiveAndFluctuatingRings")
    tuned, combos = combinations({"residual": "True;False"}, {"residual": rings.parameter("residual")})
    assert [c["residual"] for c in combos] == [True, False]
    flat = catalogue.get("DarkFlatFieldCorrection")
    tuned, combos = combinations({"lower_bound": "None;1"}, {"lower_bound": flat.parameter("lower_bound")})
    assert [c["lower_bound"] for c in combos] == [None, 1]
    # And through the system: the editor takes the tuned bool, the job runs two results.
    saved = world.alice.hostile("PUT", "/api/process-lists/tuned_bool.nxs", finding="15", json={"plugins": [
        {"name": "NxtomoLoader"}, {"name": "DarkFlatFieldCorrection"},
        {"name": "RemoveUnresponsiveAndFluctuatingRings", "params": {"residual": "True;False"}}]})
    assert saved.status_code == 201, saved.text
    job = tuned_job(world, pytestconfig)
    assert job["state"] == "finished", job


def tuned_job(world, pytestconfig) -> dict:
    def make():
        answer = world.alice.post(f"{world.url}/api/jobs", timeout=60, json={
            "process_list": "processing/tuned_bool.nxs", "dataset": "data/scan.nxs", "output": "output/tuned",
            "mode": "preview", "preview": ":"})
        assert answer.status_code == 201, answer.text
        return wait_for_job(world.alice, world.url, answer.json()["id"]), None
    return once("tuned job", make, pytestconfig)


# -- 16. job outputs that do not open --------------------------------------------------------------------

def _nxdata_problems(path) -> list[str]:
    problems = []
    with h5py.File(path, "r") as f:
        def visit(name, node):
            if isinstance(node, h5py.Group) and node.attrs.get("NX_class") in ("NXdata", b"NXdata"):
                axes = node.attrs.get("axes", [])
                axes = [axes] if isinstance(axes, (str, bytes)) else list(axes)
                for axis in axes:
                    axis = axis.decode() if isinstance(axis, bytes) else str(axis)
                    if axis == ".":
                        continue
                    if axis not in node:
                        problems.append(f"{path.name}:{name}: axis {axis!r} does not exist")
                    elif not np.issubdtype(node[axis].dtype, np.number):
                        problems.append(f"{path.name}:{name}: axis {axis!r} is {node[axis].dtype}, not numeric")
                signal = node.attrs.get("signal")
                if signal is not None and (signal.decode() if isinstance(signal, bytes) else signal) not in node:
                    problems.append(f"{path.name}:{name}: signal {signal!r} does not exist")
        f.visititems(visit)
    return problems


def test_finding_16_the_outputs_nxdata_axes_exist_in_the_file(world, pytestconfig):
    job = tuned_job(world, pytestconfig)
    outputs = world.alice.hostile("GET", f"/api/jobs/{job['id']}/outputs", expect=200, finding="16").json()
    files = [o["path"] for o in outputs["files"] if o["path"].endswith((".h5", ".nxs"))]
    assert any(p.endswith("_processed.nxs") for p in files) and any(p.endswith(".h5") for p in files), files
    problems = []
    for ref in files:
        root, _, rest = ref.partition("/")
        problems += _nxdata_problems(world.alice_folders[root] / rest)
        meta = world.alice.hostile("GET", "/data/meta", params={"file": ref, "path": "/"}, finding="16")
        assert meta.status_code == 200, meta.text
    assert not problems, problems


# -- 17. failed jobs hide the reason -----------------------------------------------------------------------

def test_finding_17_failed_jobs_show_the_reason(world):
    alice = world.alice
    (world.alice_folders["data"] / "not_a_scan.nxs").write_text("this is not HDF5")
    refused = alice.refused("POST", "/api/jobs", finding="17", json={
        "process_list": "processing/alice_list.nxs", "dataset": "data/not_a_scan.nxs", "output": "output/f",
        "mode": "full"})
    assert "not_a_scan.nxs" in refused.json()["error"]
    gpu = alice.hostile("PUT", "/api/process-lists/gpu.nxs", finding="17", json={"plugins": [
        {"name": "NxtomoLoader"}, {"name": "AstraReconGpu"}]})
    assert gpu.status_code == 201, gpu.text
    no_gpu = alice.refused("POST", "/api/jobs", finding="17", json={
        "process_list": "processing/gpu.nxs", "dataset": "data/scan.nxs", "output": "output/f", "mode": "full"})
    assert "gpu" in no_gpu.json()["error"].lower()
    # A list that fails when it runs: its reason is in the job's message, not "exit code 2".
    simple_list(world.alice_folders["processing"] / "fails.nxs", edit={"1": {"data_path": "/entry1/nowhere"}})
    submitted = alice.hostile("POST", "/api/jobs", finding="17", json={
        "process_list": "processing/fails.nxs", "dataset": "data/scan.nxs", "output": "output/f", "mode": "full"})
    if submitted.status_code != 201:
        assert "nowhere" in submitted.json()["error"], submitted.text  # known at submission: better still
        return
    job = wait_for_job(alice, world.url, submitted.json()["id"])
    assert job["state"] == "failed", job
    assert "nowhere" in job["message"], job["message"]


def test_finding_17_the_default_log_tab_of_a_failed_job_names_the_reason(world):
    """The issue saw '(empty)' in the default tab (user.log) of a failed job, the reason only under stderr."""
    simple_list(world.alice_folders["processing"] / "fails_later.nxs", edit={"1": {"data_path": "/entry1/nowhere"}})
    submitted = world.alice.hostile("POST", "/api/jobs", finding="17", json={
        "process_list": "processing/fails_later.nxs", "dataset": "data/scan.nxs", "output": "output/f",
        "mode": "full"})
    if submitted.status_code != 201:
        return  # refused at submission, with its reason (test_finding_17_failed_jobs_show_the_reason)
    job = wait_for_job(world.alice, world.url, submitted.json()["id"])
    log = world.alice.hostile("GET", f"/api/jobs/{job['id']}/log", expect=200, finding="17").json()
    assert "nowhere" in log["text"], f"the default log tab of a failed job does not say why: {log}"


# -- 18. job names with ' or ( -----------------------------------------------------------------------------

def test_finding_18_a_file_named_with_quotes_can_be_run(world):
    tiny_scan(world.alice_folders["data"] / "scan's (1).nxs")
    answer = world.alice.hostile("POST", "/api/jobs", finding="18", json={
        "process_list": "processing/alice_list.nxs", "dataset": "data/scan's (1).nxs", "output": "output/names",
        "mode": "full", "name": "quoted file"})
    assert answer.status_code == 201, answer.text
    job = wait_for_job(world.alice, world.url, answer.json()["id"])
    assert job["state"] == "finished", job


@pytest.mark.parametrize("name", ["Bob's scan (test)", 'say "hi" $(rm -rf ~) `id`', "a;b|c&d > x", "x*?[]{}!~",
                                  "naïve 日本語 back\\slash", "<b>bold</b>"])
def test_finding_18_job_names_with_quotes_or_parentheses_are_accepted(world, name):
    alice = world.alice
    answer = alice.hostile("POST", "/api/jobs", finding="18", json={
        "process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": "output/names",
        "mode": "preview", "name": name, "preview": 1})
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["name"] == name


@pytest.mark.parametrize("field,value", [("name", "bell\x07"), ("name", "esc\x1b[31m"), ("name", "new\nline"),
                                         ("name", "tab\there"), ("name", "nul\x00"), ("name", "rtl\u202eevil"),
                                         ("output", "output/-rf"), ("resources.queue", "-q evil"),
                                         ("resources.queue", "--wrap=id"), ("dataset", "data/\x1b]0;x\x07")])
def test_finding_18_control_characters_and_leading_dashes_are_still_refused(world, field, value):
    body = {"process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "output": "output/names",
            "mode": "preview"}
    if field.startswith("resources."):
        body["resources"] = {field.split(".")[1]: value}
    else:
        body[field] = value
    answer = world.alice.hostile("POST", "/api/jobs", finding="18", json=body)
    if field == "output" and answer.status_code == 201:  # a folder named -rf is only a folder (argv, no shell)
        return
    assert 400 <= answer.status_code < 500, answer.text


# -- 19. weak ETags satisfy If-Match -------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["W/{tag}", "w/{tag}", "W/{tag}, W/\"other\"", "\"{bare}x\"",
                                  "W/*", "{tag}junk"])
def test_finding_19_weak_etags_do_not_satisfy_if_match(world, form):
    alice = world.alice
    path = world.alice_folders["processing"] / "alice_list.nxs"
    before = path.read_bytes()
    tag = alice.get(f"{world.url}{LIST}", timeout=60).headers["ETag"]
    header = form.format(tag=tag, bare=tag.strip('"'))
    for method, url, kwargs in (("PUT", LIST, {"json": {"plugins": [{"name": "NxtomoLoader"}]}}),
                                ("DELETE", LIST, {}),
                                ("POST", LIST + "/operations", {"json": {"operations": [
                                    {"op": "set", "plugin": "3", "param": "kernel_size", "value": "[1, 5, 5]"}]}})):
        answer = alice.refused(method, url, headers={"If-Match": header}, finding="19", **kwargs)
        assert answer.status_code in (400, 412), answer.text
    assert path.read_bytes() == before
    strong = alice.hostile("GET", LIST, headers={"If-None-Match": f"W/{tag}"}, finding="19")
    assert strong.status_code == 304  # If-None-Match compares weakly, as RFC 9110 says
