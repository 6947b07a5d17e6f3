"""Bad input to the process-list API: every case gets a 4xx whose message says which plugin, parameter or
file and what was expected, and no file on disk changes."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURES

HDF5 = "application/x-hdf5"
FILES = {"b.nxs": "basic_tomo_process.nxs",      # 1 NxtomoLoader 2 DarkFlatFieldCorrection 3 RavenFilter
         "iter.nxs": "iterate_three_median_filters.nxs",  # 4 PaganinFilter 5 ScikitimageFilterBackProjection
         "gpu.nxs": "mpi_gpu_test.nxs", "phantom.nxs": "tomophantom_loader.nxs",
         "lfov.nxs": "lfov_loader_and_image_stitching_test.nxs"}


@pytest.fixture
def processing(roots_dir: Path) -> Path:
    folder = roots_dir / "processing"
    for name, source in FILES.items():
        shutil.copy(FIXTURES / "process_lists" / source, folder / name)
    with h5py.File(folder / "scan.nxs", "w") as handle:  # HDF5, but raw data rather than a list
        handle["entry/data/data"] = np.zeros((2, 2))
    with h5py.File(folder / "odd.nxs", "w") as handle:  # 'name' is a group where Savu has a dataset
        handle.create_group("entry/plugin/1/name")
        for key in ("id", "data"):
            handle[f"entry/plugin/1/{key}"] = np.array([b"{}"])
    with h5py.File(folder / "broken.nxs", "w") as handle:  # a plugin whose parameters are not JSON
        group = handle.create_group("entry/plugin/1")
        for key, text in (("name", b"NxtomoLoader"), ("id", b"savu.plugins.loaders.full_field_loaders.nxtomo_loader"),
                          ("data", b"{preview: [")):
            group[key] = np.array([text])
    (folder / "sub").mkdir()
    (roots_dir / "data" / "secret.nxs").write_bytes(b"data root")
    return folder


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def etag(api, name: str) -> str:
    return api.get(f"/api/process-lists/{name}").headers["ETag"]


def ops(*operations, name="b.nxs"):
    def call(api):
        return api.post(f"/api/process-lists/{name}/operations", json={"operations": list(operations)},
                        headers={"If-Match": etag(api, name)})
    return call


def put_doc(change, name="b.nxs", tag=True):
    def call(api):
        document = copy.deepcopy(api.get(f"/api/process-lists/{name}").json)
        change(document)
        headers = {"If-Match": document["etag"]} if tag is True else {"If-Match": tag} if tag else {}
        return api.put(f"/api/process-lists/{name}", json=document, headers=headers)
    return call


def raw(method, path, **kwargs):
    def call(api):
        return getattr(api, method)(path, **kwargs)
    return call


def setitem(path, value):
    def change(document):
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


CASES = [
    # -- savu_config commands (POST .../operations) --------------------------------------------------
    ("unknown plugin", ops({"op": "add", "name": "NoSuchFilter"}), 404, "Unknown plugin 'NoSuchFilter'"),
    ("misspelt plugin", ops({"op": "add", "name": "MedianFiltr"}), 404, "did you mean MedianFilter"),
    ("replace with unknown plugin", ops({"op": "replace", "pos": "3", "name": "Ravenn"}), 404, "RavenFilter"),
    ("wrong dtype int", ops({"op": "mod", "pos": "3", "param": "uvalue", "value": "abc"}), 400,
     "plugin 3 (RavenFilter), parameter 'uvalue', is not correct. The parameter 'uvalue' does not match the type: 'integer'"),
    ("wrong dtype float", ops({"op": "mod", "pos": "4", "param": "Energy", "value": [53]}), 400,
     "'Energy' does not match the type: 'float/integer'"),
    ("wrong dtype bool", ops({"op": "mod", "pos": "5", "param": "log", "value": "maybe"}), 400, "'boolean'"),
    ("wrong dtype list of str", ops({"op": "mod", "pos": "2", "param": "in_datasets", "value": [1, 2]}), 400,
     "'in_datasets' does not match the type"),
    ("value outside options", ops({"op": "mod", "pos": "2", "param": "pattern", "value": "DIAGONAL"}), 400,
     "'pattern' does not match the options: 'SINOGRAM' or 'PROJECTION'"),
    ("tuning value of wrong type", ops({"op": "mod", "pos": "3", "param": "nvalue", "value": "8;nine"}), 400,
     "tuning value 'nine'"),
    ("tuning value outside options", ops({"op": "mod", "pos": "2", "param": "pattern", "value": "SINOGRAM;X"}), 400,
     "options"),
    ("tuning range with no values", ops({"op": "mod", "pos": "5", "param": "centre_of_rotation", "value": "90:80;"}),
     400, "gives no values"),
    ("tuning range with zero step", ops({"op": "mod", "pos": "5", "param": "centre_of_rotation", "value": "80:90:0;"}),
     400, "step of 0"),
    ("malformed tuning range", ops({"op": "mod", "pos": "5", "param": "centre_of_rotation", "value": "a:b;"}), 400,
     "must hold numbers"),
    ("empty tuning string", ops({"op": "mod", "pos": "3", "param": "nvalue", "value": ";;"}), 400, "holds no values"),
    ("preview cannot be tuned", ops({"op": "mod", "pos": "1", "param": "preview", "value": "1;2"}), 400,
     "'preview' cannot be tuned"),
    ("bad preview word", ops({"op": "mod", "pos": "1", "param": "preview", "value": ["middle", ":", ":"]}), 400,
     "preview slices"),
    ("preview with too many colons", ops({"op": "mod", "pos": "1", "param": "preview", "value": ["1:2:3:4:5"]}),
     400, "'preview'"),
    ("preview dimension that does not exist", ops({"op": "mod", "pos": "1", "param": "preview", "dim": 7,
                                                   "value": "mid"}), 400, "dimension 7 does not exist"),
    ("dimension syntax on another parameter", ops({"op": "mod", "pos": "3", "param": "uvalue", "dim": 1,
                                                   "value": 3}), 400, "only use the dimension syntax"),
    ("loader not first (move)", ops({"op": "move", "pos": "1", "new_pos": "3"}), 409,
     "The first plugin in the process list must be a loader plugin"),
    ("loader not first (rem)", ops({"op": "rem", "pos": "1"}), 409, "must be a loader plugin; position 1 is"),
    ("loaders not together", ops({"op": "add", "name": "NxtomoLoader", "pos": "4"}), 409,
     "All loader plugins must be at the beginning"),
    ("position out of range", ops({"op": "add", "name": "MedianFilter", "pos": "9"}), 400,
     "Position 9 is out of range: the list has 5 plugin(s)"),
    ("position zero", ops({"op": "add", "name": "MedianFilter", "pos": "0"}), 400, "out of range"),
    ("position that is not one", ops({"op": "mod", "pos": "three", "param": "uvalue", "value": 3}), 400,
     "'three' is not a plugin position"),
    ("no plugin at that position", ops({"op": "rem", "pos": "7"}), 404,
     "there is no plugin at position '7' (positions: 1, 2, 3, 4, 5)"),
    ("move to nowhere", ops({"op": "move", "pos": "2", "new_pos": "9"}), 400, "out of range"),
    ("no such parameter", ops({"op": "mod", "pos": "3", "param": "uvalu", "value": 3}), 400,
     "plugin 3 (RavenFilter) has no parameter 'uvalu'; its parameters are"),
    ("parameter number out of range", ops({"op": "mod", "pos": "3", "param": 99, "value": 3}), 400,
     "plugin 3 (RavenFilter) has parameters 1 to"),
    ("parameter whose dependency is not met", ops({"op": "mod", "pos": "3", "param": "n_iterations", "value": 9},
                                                 name="gpu.nxs"), 409, "only used when 'algorithm' is"),
    ("hidden parameter", ops({"op": "mod", "pos": "1", "param": "patterns", "value": []}, name="phantom.nxs"), 409,
     "is hidden"),
    ("parameters of an unknown plugin", ops({"op": "mod", "pos": "2", "param": "overlap", "value": 3},
                                            name="lfov.nxs"), 409, "ImageStitching) is not in the plugin catalogue"),
    ("overlapping loops", ops({"op": "iterate", "set": {"start": 2, "end": 3, "iterations": 2}}, name="iter.nxs"),
     409, "overlaps the loop over plugins 3-5"),
    ("loop outside the list", ops({"op": "iterate", "set": {"start": 4, "end": 9, "iterations": 2}}), 400,
     "1 <= start <= end <= 5"),
    ("loop with no iterations", ops({"op": "iterate", "set": {"start": 3, "end": 4, "iterations": 0}}), 400,
     "at least 1 iteration"),
    ("loop given as text", ops({"op": "iterate", "set": {"start": "3", "end": 4, "iterations": 2}}), 400,
     "start must be a whole number"),
    ("removing a loop that does not exist", ops({"op": "iterate", "remove": [5]}, name="iter.nxs"), 400,
     "There is no loop number 5"),
    ("set neither on nor off", ops({"op": "set", "pos": "2", "state": "maybe"}), 400, "set takes on or off"),
    ("unknown command", ops({"op": "undo"}), 400, "'undo' is not a savu_config command"),
    ("unknown field in a command", ops({"op": "add", "name": "MedianFilter", "where": "2"}), 400,
     "add does not take 'where'"),
    ("a command that is not an object", ops("add MedianFilter"), 400, "each operation is an object"),
    ("no operations", ops(), 400, "at least one operation"),
    ("level that does not exist", ops({"op": "level", "level": "expert"}), 400, "level must be one of"),
    ("second operation fails: none applied", ops({"op": "add", "name": "MedianFilter"},
                                                 {"op": "mod", "pos": "6", "param": "kernel_size", "value": "big"}),
     400, "operation 2 (mod)"),
    ("bad JSON", raw("post", "/api/process-lists/b.nxs/operations", data="{not json", content_type="application/json"),
     400, "not valid JSON"),
    ("operations on a folder", raw("post", "/api/process-lists/sub/operations", json={"operations": [{"op": "coll"}]}),
     409, "is a folder, not a process list"),
    # -- replacing with a document (PUT JSON) ---------------------------------------------------------
    ("document with unknown plugin", put_doc(setitem(["plugins", 2, "name"], "NoSuchFilter")), 404,
     "Unknown plugin 'NoSuchFilter' at position 3"),
    ("document with wrong dtype", put_doc(setitem(["plugins", 2, "params", "uvalue"], "thirty")), 400,
     "plugin 3 (RavenFilter), parameter 'uvalue', is not correct"),
    ("document with unknown parameter", put_doc(setitem(["plugins", 2, "params", "colour"], "red")), 400,
     "plugin 3 (RavenFilter) has no parameter 'colour'"),
    ("document with shuffled positions", put_doc(setitem(["plugins", 2, "pos"], "7")), 400,
     "positions must follow each other"),
    ("document with loader last", put_doc(lambda d: d["plugins"].reverse() or [p.pop("pos") for p in d["plugins"]]),
     409, "must be a loader plugin"),
    ("document with overlapping loops", put_doc(setitem(["loops"], [{"start": 2, "end": 3, "iterations": 2},
                                                                    {"start": 3, "end": 4, "iterations": 2}])),
     409, "loop 2: The loop 3-4 overlaps"),
    ("document with active not a boolean", put_doc(setitem(["plugins", 1, "active"], "yes")), 400,
     "'active' must be true or false"),
    ("document with the wrong module", put_doc(setitem(["plugins", 2, "id"], "savu.plugins.other")), 400,
     "its id (module) is 'savu.plugins.ring_removal.raven_filter'"),
    ("document whose plugins are not a list", put_doc(setitem(["plugins"], {"1": "NxtomoLoader"})), 400,
     "'plugins' must be a list"),
    ("document with a stale ETag", put_doc(setitem(["plugins", 2, "params", "uvalue"], 5), tag='"stale"'), 412,
     "was changed since you read it"),
    ("document that is not JSON", raw("put", "/api/process-lists/b.nxs", data="plugins: [",
                                      content_type="application/json", headers={"If-Match": "*"}), 400,
     "not valid JSON"),
    # -- uploads (PUT application/x-hdf5) and paths ---------------------------------------------------------
    ("upload that is not HDF5", raw("put", "/api/process-lists/new.nxs", data=b"plugin list\n" * 20,
                                    content_type=HDF5), 400, "new.nxs is not an HDF5 file"),
    ("upload of HDF5 that is not a list", lambda api: api.put(
        "/api/process-lists/new.nxs", content_type=HDF5,
        data=api.get("/api/process-lists/scan.nxs", headers={"Accept": HDF5}).data), 400, "not a Savu process list"),
    ("oversized upload", raw("put", "/api/process-lists/new.nxs", data=b"\x89HDF\r\n\x1a\n" + b"\0" * (1024 * 1024),
                             content_type=HDF5), 413, "bytes"),
    ("upload under a name that is not .nxs", raw("put", "/api/process-lists/list.txt", data=b"x",
                                                 content_type=HDF5), 400, "a Savu process list is a .nxs file"),
    ("path leaving the root", raw("get", "/api/process-lists/sub/../../data/secret.nxs"), 400, "'..' is not allowed"),
    ("write through a path leaving the root", raw("put", "/api/process-lists/..%2Fevil.nxs", json={}), 400,
     "'..' is not allowed"),
    ("list that does not exist", raw("get", "/api/process-lists/missing.nxs"), 404, "no process list processing/missing.nxs"),
    ("HDF5 file that is not a list", raw("get", "/api/process-lists/scan.nxs"), 400,
     "scan.nxs is an HDF5 file but not a Savu process list"),
    ("list whose parameters are not JSON", raw("get", "/api/process-lists/broken.nxs"), 400,
     "the parameters of plugin 1 (NxtomoLoader) are not valid JSON"),
    ("list with a group where a dataset belongs", raw("get", "/api/process-lists/odd.nxs"), 400,
     "odd.nxs cannot be read as a Savu process list"),
    ("upload of a list with a group where a dataset belongs", lambda api: api.put(
        "/api/process-lists/new.nxs", content_type=HDF5,
        data=api.get("/api/process-lists/odd.nxs", headers={"Accept": HDF5}).data), 400,
     "new.nxs cannot be read as a Savu process list"),
    ("create over an existing list", raw("post", "/api/process-lists/b.nxs", json={}), 409, "already exists"),
    ("create in a missing folder", raw("post", "/api/process-lists/nowhere/new.nxs", json={}), 404,
     "the folder processing/nowhere does not exist"),
    ("create with an unknown plugin", raw("post", "/api/process-lists/new.nxs",
                                          json={"plugins": [{"name": "NxtomoLoadr"}]}), 404, "did you mean NxtomoLoader"),
    ("delete with a stale ETag", raw("delete", "/api/process-lists/b.nxs", headers={"If-Match": '"old"'}), 412,
     "was changed since you read it"),
]


@pytest.mark.parametrize("case, call, status, message", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(api, processing, roots_dir, case, call, status, message):
    before = snapshot(roots_dir)
    answer = call(api)
    assert answer.status_code == status, (case, answer.status_code, answer.get_json())
    assert message in answer.json["error"], (case, answer.json["error"])
    assert snapshot(roots_dir) == before, f"{case}: a file changed"


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
    assert {status for _, _, status, _ in CASES} == {400, 404, 409, 412, 413}


def test_changing_without_an_etag_is_428_and_unknown_body_type_is_415(api, processing, roots_dir):
    before = snapshot(roots_dir)
    answer = api.post("/api/process-lists/b.nxs/operations", json={"operations": [{"op": "rem", "pos": "5"}]})
    assert answer.status_code == 428 and "If-Match" in answer.json["error"]
    answer = api.put("/api/process-lists/b.nxs", data="x", content_type="text/plain")
    assert answer.status_code == 415
    assert snapshot(roots_dir) == before
