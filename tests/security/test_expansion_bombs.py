"""Bombs (issue 9, findings 9 and 10): small files that expand hugely and texts that cost forever, sent
through the gateway; each is refused with a clear 413/422 (or 400 for a text the grammar refuses), and
the session still answers afterwards. What they cost in memory is bench/bombs' measurement."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from attack import (  # noqa: F401 - fixtures
    REPO_ROOT,
    bob_untouched,
    once,
    set_params,
    simple_list,
    wait_for_job,
    world,
)

sys.path.insert(0, str(REPO_ROOT / "bench" / "bombs"))
from bombs import ANGLE_BOMBS, CPU_BOMBS, chunk_bomb, link_bomb, process_list_bomb  # noqa: E402

EXPANDED = (413, 422)


def uploaded(world, pytestconfig, name: str, build) -> str:
    """A bomb made once per run on alice's side and uploaded as plain bytes; its <root>/<path>."""
    def make():
        local = world.system.base / "bombs" / Path(name).name
        local.parent.mkdir(parents=True, exist_ok=True)
        build(local)
        root, _, path = name.partition("/")
        answer = world.alice.hostile("PUT", "/api/files", params={"root": root, "path": path},
                                     data=local.read_bytes(), finding="09")
        assert answer.status_code == 201, answer.text
        return name, None
    return once(f"bomb {name}", make, pytestconfig)


def still_answers(world):
    assert world.alice.get(f"{world.url}/api/whoami", timeout=60).status_code == 200
    answer = world.alice.get(f"{world.url}/data/meta", params={"file": "data/scan.nxs", "path": "/"}, timeout=60)
    assert answer.status_code == 200, answer.text


# -- 9. decompression bombs --------------------------------------------------------------------------------

def test_finding_09_process_list_upload_bomb_is_refused(world, tmp_path):
    bomb = process_list_bomb(tmp_path / "bomb.nxs")
    assert bomb.stat().st_size < 4 * 1024 * 1024
    answer = world.alice.refused("PUT", "/api/process-lists/bomb.nxs", data=bomb.read_bytes(),
                                 headers={"Content-Type": "application/x-hdf5"}, finding="09")
    assert answer.status_code in EXPANDED, answer.text
    assert not (world.alice_folders["processing"] / "bomb.nxs").exists()
    still_answers(world)


@pytest.mark.parametrize("method,suffix,body", [
    ("GET", "", None), ("GET", "/disp", None), ("GET", "/disp?verbose=1", None), ("GET", "/cite", None),
    ("GET", "/problems", None),
    ("POST", "/operations", {"operations": [{"op": "set", "plugin": "2", "param": "kernel_size", "value": "[1,3,3]"}]})])
def test_finding_09_a_stored_process_list_bomb_is_refused_when_read(world, pytestconfig, method, suffix, body):
    ref = uploaded(world, pytestconfig, "processing/stored_bomb.nxs", process_list_bomb)
    name = ref.partition("/")[2]
    answer = world.alice.refused(method, f"/api/process-lists/{name}{suffix}", json=body,
                                 headers={"If-Match": "*"}, finding="09")
    assert answer.status_code in EXPANDED, answer.text
    still_answers(world)


def test_finding_09_decompression_bombs_never_reach_a_job_or_a_copy(world, pytestconfig):
    ref = uploaded(world, pytestconfig, "processing/stored_bomb.nxs", process_list_bomb)
    alice = world.alice
    copy = alice.refused("POST", "/api/process-lists/bomb_copy.nxs", json={"copy_from": ref.partition("/")[2]},
                         finding="09")
    assert copy.status_code in EXPANDED, copy.text
    job = alice.refused("POST", "/api/jobs", json={"process_list": ref, "dataset": "data/scan.nxs",
                                                   "output": "output/bomb", "mode": "full"}, finding="09")
    assert job.status_code in EXPANDED + (400,), job.text
    assert not (world.alice_folders["processing"] / "bomb_copy.nxs").exists()


@pytest.mark.parametrize("params", [{"selection": "0,0"}, {"selection": "0,0", "format": "bin"},
                                    {"selection": "0,0", "format": "npy"}, {"selection": "0:1,0:1"},
                                    {"selection": "0"}, {"format": "bin", "dtype": "safe"},
                                    {"size": "64x64"}, {"selection": "0,0", "dtype": "safe"}])
def test_finding_09_one_value_from_a_1_gib_compressed_chunk_is_refused(world, pytestconfig, params):
    ref = uploaded(world, pytestconfig, "data/chunk_bomb.h5", chunk_bomb)
    answer = world.alice.refused("GET", "/data/data", params={"file": ref, "path": "/bomb", **params}, finding="09")
    assert answer.status_code in EXPANDED, answer.text
    assert "chunk" in answer.json()["error"].lower()


def test_finding_09_chunk_bomb_stats_refused_and_meta_still_answers(world, pytestconfig):
    ref = uploaded(world, pytestconfig, "data/chunk_bomb.h5", chunk_bomb)
    stats = world.alice.refused("GET", "/data/stats", params={"file": ref, "path": "/bomb"}, finding="09")
    assert stats.status_code in EXPANDED, stats.text
    meta = world.alice.hostile("GET", "/data/meta", params={"file": ref, "path": "/bomb"}, finding="09")
    assert meta.status_code == 200, meta.text  # the shape and the filters are known without decompressing
    still_answers(world)


@pytest.mark.parametrize("endpoint,params", [("/data/meta", {}), ("/data/paths", {}), ("/data/meta", {"resolve_links": "all"}),
                                             ("/data/attr", {}), ("/data/default", {})])
def test_finding_09_a_100000_link_group_is_bounded(world, pytestconfig, endpoint, params):
    ref = uploaded(world, pytestconfig, "data/link_bomb.h5", link_bomb)
    answer = world.alice.hostile("GET", endpoint, params={"file": ref, "path": "/many", **params}, finding="09")
    assert answer.status_code in (200, 404) + EXPANDED, answer.text
    if answer.status_code == 200 and endpoint in ("/data/meta", "/data/paths"):
        # Bounded, not refused: a listing of at most dataserver.max_children that says it was cut short.
        body = answer.json()
        listed = body.get("children", []) if isinstance(body, dict) else body
        if endpoint == "/data/meta":
            assert len(listed) < 100_000, f"{endpoint} listed all {len(listed)} links in one answer"
            assert "truncated" in body, list(body)
        else:  # h5grove's flat list of paths, bounded by the dataserver's MAX_PATHS
            from hebi_dataserver.routes import MAX_PATHS
            assert len(listed) <= MAX_PATHS


# -- 10. CPU bombs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bomb", CPU_BOMBS)
def test_finding_10_cpu_bomb_previews_are_refused(world, bomb):
    alice = world.alice
    alice.refused("POST", "/api/jobs", json={"process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs",
                                             "output": "output/cpu", "mode": "preview", "preview": bomb}, finding="10")
    alice.refused("PUT", f"/api/process-lists/cpu_{abs(hash(bomb))}.nxs", finding="10", json={
        "plugins": [{"name": "NxtomoLoader", "params": {"preview": [":", bomb, ":"]}}]})
    alice.refused("POST", "/api/process-lists/alice_list.nxs/operations", headers={"If-Match": "*"}, finding="10",
                  json={"operations": [{"op": "set", "plugin": "1", "param": "preview", "value": f"[':', '{bomb}', ':']"}]})


@pytest.mark.parametrize("bomb", ANGLE_BOMBS)
def test_finding_10_cpu_bomb_angle_expressions_are_refused(world, bomb):
    world.alice.refused("PUT", f"/api/process-lists/angles_{abs(hash(bomb))}.nxs", finding="10", json={
        "plugins": [{"name": "NxtomoLoader", "params": {"angles": bomb}}]})


@pytest.mark.parametrize("field,bomb", [("preview", [":", "mid:mid+9**9**9**9", ":"]), ("angles", ANGLE_BOMBS[0])])
def test_finding_10_cpu_bomb(world, field, bomb):
    """Written straight into the file (past the editor), the runner and submission refuse it in bounded time."""
    local = world.system.base / "bombs" / f"cpu_{field}.nxs"
    simple_list(local, edit={"1": {field: bomb}})
    name = f"cpu_crafted_{field}.nxs"
    stored = world.alice.hostile("PUT", "/api/files", params={"root": "processing", "path": name},
                                 data=local.read_bytes(), finding="10")
    assert stored.status_code == 201, stored.text
    answer = world.alice.hostile("POST", "/api/jobs", finding="10", json={
        "process_list": f"processing/{name}", "dataset": "data/scan.nxs", "output": "output/cpu", "mode": "full"})
    if answer.status_code == 201:
        job = wait_for_job(world.alice, world.url, answer.json()["id"], timeout=90)
        assert job["state"] == "failed", f"the bomb was not refused: {job}"
    else:
        assert answer.status_code == 400, answer.text
