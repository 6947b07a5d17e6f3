"""Process lists over HTTP: what a scientist does in the editor, on real lists written at Diamond."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
from conftest import FIXTURES

from hebi_common.savu import process_list as process_list_module

LISTS = sorted((FIXTURES / "process_lists").glob("*.nxs"))
HDF5 = "application/x-hdf5"


@pytest.fixture
def processing(roots_dir: Path) -> Path:
    return roots_dir / "processing"


def put_fixture(processing: Path, name: str, as_name: str | None = None) -> Path:
    target = processing / (as_name or name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "process_lists" / name, target)
    return target


def ops(api, path: str, etag: str | None, *operations, level: str | None = None):
    body = {"operations": list(operations)}
    if level:
        body["level"] = level
    headers = {"If-Match": etag} if etag else {}
    return api.post(f"/api/process-lists/{path}/operations", json=body, headers=headers)


def test_list_a_folder(api, processing):
    put_fixture(processing, "basic_tomo_process.nxs", "recon/basic.nxs")
    (processing / "recon" / "notes.txt").write_text("not a list")
    (processing / "recon" / "old").mkdir()
    answer = api.get("/api/process-lists?folder=recon")
    assert answer.status_code == 200
    assert [l["path"] for l in answer.json["lists"]] == ["recon/basic.nxs"]
    assert [f["name"] for f in answer.json["folders"]] == ["old"]
    assert api.get("/api/process-lists/recon").json["lists"] == answer.json["lists"]
    assert api.get("/api/process-lists").json["folders"] == [{"name": "recon", "path": "recon"}]


def test_get_returns_the_list_with_an_etag(api, processing):
    put_fixture(processing, "iterate_three_median_filters.nxs")
    answer = api.get("/api/process-lists/iterate_three_median_filters.nxs")
    assert answer.status_code == 200
    body = answer.json
    assert body["etag"] == answer.headers["ETag"] and body["path"] == "iterate_three_median_filters.nxs"
    assert body["version"] == "4.0"
    assert [(p["pos"], p["name"], p["active"]) for p in body["plugins"]][:3] == [
        ("1", "TomoPhantomLoader", True), ("2", "TomoPhantomArtifacts", True), ("3", "MedianFilter", True)]
    assert body["plugins"][0]["id"] == "savu.plugins.loaders.full_field_loaders.tomo_phantom_loader"
    assert body["plugins"][2]["params"]["kernel_size"] == 3
    assert body["plugins"][1]["known"] is False  # TomoPhantomArtifacts is not in the catalogue
    assert body["loops"] == [{"start": 3, "end": 5, "iterations": 2}]
    assert any(p["plugin"] == "TomoPhantomArtifacts" for p in body["problems"])


def test_download_is_the_stored_file(api, processing):
    stored = put_fixture(processing, "vo_centering_test.nxs")
    answer = api.get("/api/process-lists/vo_centering_test.nxs", headers={"Accept": HDF5})
    assert answer.status_code == 200 and answer.mimetype == HDF5
    assert answer.data == stored.read_bytes()
    # Its own ETag, not the JSON's: a cache must never answer one with the other.
    assert answer.headers["ETag"] != api.get("/api/process-lists/vo_centering_test.nxs").headers["ETag"]


def test_create_then_build_a_list_with_savu_config_commands(api, processing):
    (processing / "new").mkdir()
    created = api.post("/api/process-lists/new/standard.nxs", json={})
    assert created.status_code == 201, created.json
    assert created.json["plugins"] == [] and created.json["version"] == "4.2"
    etag = created.headers["ETag"]
    answer = ops(api, "new/standard.nxs", etag,
                 {"op": "add", "name": "NxtomoLoader"},
                 {"op": "add", "name": "DarkFlatFieldCorrection"},
                 {"op": "add", "name": "PaganinFilter"},
                 {"op": "add", "name": "RavenFilter", "pos": "3a"},
                 {"op": "dupl", "pos": "3a"},
                 {"op": "rem", "pos": "4"},
                 {"op": "add", "name": "AstraReconCpu"},
                 {"op": "move", "pos": "3a", "new_pos": "2"},
                 {"op": "mod", "pos": "1", "param": "preview", "text": "[':', 'mid', ':']"},
                 {"op": "mod", "pos": "5", "param": "centre_of_rotation", "text": "84:86:0.5"},
                 {"op": "mod", "pos": "5", "param": 2, "text": "CGLS"},
                 {"op": "set", "pos": "4a", "state": "off"},
                 {"op": "replace", "pos": "4a", "name": "Dezinger"},
                 {"op": "ref", "pos": "*"},
                 {"op": "iterate", "set": {"start": 2, "end": 3, "iterations": 3}},
                 {"op": "expand", "pos": "5", "param": "centre_of_rotation"},
                 {"op": "level", "level": "intermediate"},
                 {"op": "disp", "start": "2", "stop": "3"},
                 {"op": "cite", "start": "5"},
                 {"op": "coll"})
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert [(p["pos"], p["name"], p["active"]) for p in body["plugins"]] == [
        ("1", "NxtomoLoader", True), ("2", "RavenFilter", True), ("3", "DarkFlatFieldCorrection", True),
        ("4a", "Dezinger", False), ("5", "AstraReconCpu", True)]  # Savu renumbers 3a/3b like this on a move
    assert body["plugins"][0]["params"]["preview"] == [":", "mid", ":"]
    assert body["plugins"][4]["params"]["centre_of_rotation"] == "84:86:0.5;"
    assert body["plugins"][4]["params"]["algorithm"] == "CGLS"  # parameter number 2 of AstraReconCpu
    assert body["loops"] == [{"start": 2, "end": 3, "iterations": 3}]
    results = body["results"]
    assert results[15]["values"] == [84.0, 84.5, 85.0, 85.5]
    assert results[16] == {"level": "intermediate"} and results[17]["level"] == "intermediate"
    assert [p["name"] for p in results[17]["plugins"]] == ["RavenFilter", "DarkFlatFieldCorrection"]
    assert len(results[18]["plugins"][0]["citations"]) == 2
    assert body["etag"] != etag
    # The file on disk is Savu 4.2's layout with those values
    with h5py.File(processing / "new" / "standard.nxs", "r") as handle:
        plugin = handle["entry/plugin"]
        assert sorted(plugin) == ["1", "2", "3", "4a", "5"]
        assert plugin["4a/name"][0] == b"Dezinger" and not plugin["4a/active"][0]
        assert json.loads(plugin["5/data"][0])["centre_of_rotation"] == "84:86:0.5;"
        loop = handle["entry/iterate_plugin_groups/0"]
        assert (loop["start"][()], loop["end"][()], loop["iterations"][()]) == (2, 3, 3)


def test_queries_alone_need_no_etag_and_change_nothing(api, processing):
    stored = put_fixture(processing, "mpi_gpu_test.nxs")
    before = stored.read_bytes()
    answer = ops(api, "mpi_gpu_test.nxs", None, {"op": "disp", "level": "advanced"}, {"op": "cite"})
    assert answer.status_code == 200 and stored.read_bytes() == before
    assert api.get("/api/process-lists/mpi_gpu_test.nxs/disp?level=basic&start=3").json["plugins"][0]["name"] == \
        "AstraReconGpu"
    cites = api.get("/api/process-lists/mpi_gpu_test.nxs/cite").json
    assert len(cites["framework"]) == 4
    problems = api.get("/api/process-lists/mpi_gpu_test.nxs/problems").json
    assert problems == {"runnable": True, "problems": []}


def test_replace_with_a_document_needs_the_current_etag(api, processing):
    stored = put_fixture(processing, "basic_tomo_process.nxs")
    first = api.get("/api/process-lists/basic_tomo_process.nxs")
    document = first.json
    document["plugins"][2]["params"]["uvalue"] = 20
    document["plugins"][3]["active"] = False
    saved = api.put("/api/process-lists/basic_tomo_process.nxs", json=document,
                    headers={"If-Match": first.headers["ETag"]})
    assert saved.status_code == 200, saved.json
    assert saved.json["plugins"][2]["params"]["uvalue"] == 20 and saved.json["plugins"][3]["active"] is False
    after_first = stored.read_bytes()
    # A second editor still holding the first ETag is told, and changes nothing.
    document["plugins"][2]["params"]["uvalue"] = 40
    stale = api.put("/api/process-lists/basic_tomo_process.nxs", json=document,
                    headers={"If-Match": first.headers["ETag"]})
    assert stale.status_code == 412 and "changed since you read it" in stale.json["error"]
    assert stored.read_bytes() == after_first
    missing = api.put("/api/process-lists/basic_tomo_process.nxs", json=document)
    assert missing.status_code == 428 and stored.read_bytes() == after_first
    stale_ops = ops(api, "basic_tomo_process.nxs", first.headers["ETag"], {"op": "rem", "pos": "3"})
    assert stale_ops.status_code == 412 and stored.read_bytes() == after_first


def test_two_editors_at_once_one_wins_the_other_gets_412(api, processing):
    put_fixture(processing, "tiff_saver_test.nxs")
    etag = api.get("/api/process-lists/tiff_saver_test.nxs").headers["ETag"]
    alice = ops(api, "tiff_saver_test.nxs", etag, {"op": "mod", "pos": "3", "param": "bin_size", "value": 2})
    bob = ops(api, "tiff_saver_test.nxs", etag, {"op": "rem", "pos": "4"})
    assert alice.status_code == 200 and bob.status_code == 412
    now = api.get("/api/process-lists/tiff_saver_test.nxs").json
    assert len(now["plugins"]) == 4 and now["plugins"][2]["params"]["bin_size"] == 2
    assert now["etag"] == alice.json["etag"]


def test_upload_a_list_checked_before_it_is_stored(api, processing):
    content = (FIXTURES / "process_lists" / "savu_nexus_loader_test2.nxs").read_bytes()
    answer = api.put("/api/process-lists/uploaded.nxs", data=content, content_type=HDF5)
    assert answer.status_code == 201, answer.json
    assert [p["name"] for p in answer.json["plugins"]] == ["SavuNexusLoader", "CcpiDenoisingCpu"]
    assert (processing / "uploaded.nxs").read_bytes() == content
    again = api.put("/api/process-lists/uploaded.nxs", data=content, content_type=HDF5)
    assert again.status_code == 428
    replaced = api.put("/api/process-lists/uploaded.nxs", data=content, content_type=HDF5,
                       headers={"If-Match": answer.headers["ETag"]})
    assert replaced.status_code == 200


def test_delete_needs_the_etag(api, processing):
    stored = put_fixture(processing, "tomophantom_loader.nxs")
    assert api.delete("/api/process-lists/tomophantom_loader.nxs").status_code == 428
    assert api.delete("/api/process-lists/tomophantom_loader.nxs", headers={"If-Match": '"nope"'}).status_code == 412
    assert stored.exists()
    etag = api.get("/api/process-lists/tomophantom_loader.nxs").headers["ETag"]
    assert api.delete("/api/process-lists/tomophantom_loader.nxs", headers={"If-Match": etag}).status_code == 204
    assert not stored.exists()


def test_a_crash_mid_save_leaves_the_old_file(api, processing, monkeypatch):
    stored = put_fixture(processing, "basic_tomo_process.nxs")
    before = stored.read_bytes()
    etag = api.get("/api/process-lists/basic_tomo_process.nxs").headers["ETag"]
    real_write = process_list_module.write_to

    def crash_half_way(process_list, target, catalogue=None):
        real_write(process_list, target, catalogue)
        with open(target, "r+b") as handle:  # the new file is half there when the "power fails"
            handle.truncate(1000)
        raise OSError("disk full")
    monkeypatch.setattr(process_list_module, "write_to", crash_half_way)
    answer = ops(api, "basic_tomo_process.nxs", etag, {"op": "rem", "pos": "5"})
    assert answer.status_code == 500
    assert stored.read_bytes() == before
    assert sorted(p.name for p in processing.iterdir()) == ["basic_tomo_process.nxs"]  # no temporary left


@pytest.mark.parametrize("path", LISTS, ids=lambda p: p.name)
def test_every_real_list_round_trips_through_the_api(api, processing, path: Path):
    upload = api.put(f"/api/process-lists/{path.name}", data=path.read_bytes(), content_type=HDF5)
    assert upload.status_code == 201, upload.json
    document = upload.json
    # The editor sends back what it got: every plugin, position, flag, loop and value survives.
    saved = api.put(f"/api/process-lists/{path.name}", json=document, headers={"If-Match": document["etag"]})
    assert saved.status_code == 200, saved.json
    for key in ("plugins", "loops"):
        assert [{k: p[k] for k in ("pos", "name", "id", "active", "params")} if key == "plugins" else p
                for p in saved.json[key]] == \
               [{k: p[k] for k in ("pos", "name", "id", "active", "params")} if key == "plugins" else p
                for p in document[key]]
    with h5py.File(processing / path.name, "r") as handle:
        assert handle["entry/savu_notes/version"][()] in (b"4.2", "4.2")
        assert "iterate_plugin_groups" in handle["entry"]
        for group in handle["entry/plugin"].values():
            assert sorted(k for k in group if not k.startswith("citation")) == ["active", "data", "id", "name"]


def test_simultaneous_edits_with_one_etag_exactly_one_wins(api, api_app, session_context, processing):
    """Several browser tabs send a change at the same moment, all based on the same read."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import signed_client
    put_fixture(processing, "iterate_three_median_filters.nxs", "shared.nxs")
    etag = signed_client(api_app, session_context).get("/api/process-lists/shared.nxs").headers["ETag"]

    def edit(size: int) -> int:
        client = signed_client(api_app, session_context)
        return ops(client, "shared.nxs", etag,
                   {"op": "mod", "pos": "3", "param": "kernel_size", "value": size}).status_code
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(edit, [5, 7, 9, 11, 13, 15]))
    assert sorted(statuses) == [200, 412, 412, 412, 412, 412]
    winner = [5, 7, 9, 11, 13, 15][statuses.index(200)]
    assert api.get("/api/process-lists/shared.nxs").json["plugins"][2]["params"]["kernel_size"] == winner


def test_an_unchanged_list_is_not_sent_again(api, processing):
    put_fixture(processing, "mpi_gpu_test.nxs")
    etag = api.get("/api/process-lists/mpi_gpu_test.nxs").headers["ETag"]
    again = api.get("/api/process-lists/mpi_gpu_test.nxs", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.data


def test_old_values_nobody_touched_do_not_block_an_edit(api, processing):
    """Old lists hold values today's rules refuse (a preview written as a string); editing something else
    keeps them, and the problems say what to fix before a run."""
    target = put_fixture(processing, "basic_tomo_process.nxs", "old.nxs")
    with h5py.File(target, "a") as handle:
        data = json.loads(handle["entry/plugin/1/data"][0])
        data["preview"] = "[:, :, 0]"
        del handle["entry/plugin/1/data"]
        handle["entry/plugin/1/data"] = [json.dumps(data).encode()]
    document = api.get("/api/process-lists/old.nxs").json
    assert any(p["parameter"] == "preview" for p in document["problems"])
    document["plugins"][2]["params"]["uvalue"] = 10
    document["plugins"][3], document["plugins"][2] = document["plugins"][2], document["plugins"][3]
    for place, plugin in enumerate(document["plugins"], start=1):
        plugin["pos"] = str(place)
    saved = api.put("/api/process-lists/old.nxs", json=document, headers={"If-Match": document["etag"]})
    assert saved.status_code == 200, saved.json
    assert saved.json["plugins"][0]["params"]["preview"] == "[:, :, 0]"
    assert [p["name"] for p in saved.json["plugins"]][2:4] == ["PaganinFilter", "RavenFilter"]
    assert saved.json["plugins"][3]["params"]["uvalue"] == 10


def test_looking_at_tuning_values_changes_nothing(api, processing):
    stored = put_fixture(processing, "multiple_param_values_test.nxs")
    before = stored.read_bytes()
    answer = ops(api, "multiple_param_values_test.nxs", None,
                 {"op": "expand", "pos": "3", "param": "algorithm"}, {"op": "set", "pos": "3", "state": "on"})
    assert answer.status_code == 200
    assert answer.json["results"][0]["values"] == ["FBP", "CGLS"]
    assert stored.read_bytes() == before


def test_save_as_copies_a_list_with_its_unknown_plugins(api, processing):
    put_fixture(processing, "lfov_loader_and_image_stitching_test.nxs", "lfov.nxs")
    copy = api.post("/api/process-lists/lfov_copy.nxs", json={"copy_from": "lfov.nxs"})
    assert copy.status_code == 201, copy.json
    original = api.get("/api/process-lists/lfov.nxs").json
    assert [(p["name"], p["params"], p["known"]) for p in copy.json["plugins"]] == \
        [(p["name"], p["params"], p["known"]) for p in original["plugins"]]
    missing = api.post("/api/process-lists/other.nxs", json={"copy_from": "nothing.nxs"})
    assert missing.status_code == 404 and not (processing / "other.nxs").exists()


def test_a_big_data_file_is_not_read_as_a_list(api, processing, monkeypatch):
    from hebi_api import process_lists
    put_fixture(processing, "basic_tomo_process.nxs", "big.nxs")
    monkeypatch.setattr(process_lists, "MAX_LIST_BYTES", 10_000)
    answer = api.get("/api/process-lists/big.nxs")
    assert answer.status_code == 413 and "too large to be a Savu process list" in answer.json["error"]


def test_a_client_that_accepts_anything_gets_json_not_the_file(api, roots_dir):
    from make_sample_data import write_sample_process_list  # scripts/ is on the path (conftest)
    write_sample_process_list(roots_dir / "processing" / "first.nxs")
    for accept in ("*/*", "", "application/json, */*;q=0.5"):
        answer = api.get("/api/process-lists/first.nxs", headers={"Accept": accept} if accept else {})
        assert answer.is_json, accept
    answer = api.get("/api/process-lists/first.nxs", headers={"Accept": "application/x-hdf5"})
    assert answer.mimetype == "application/x-hdf5" and answer.data[:8] == b"\x89HDF\r\n\x1a\n"
