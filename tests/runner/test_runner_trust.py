"""A job touches only its own user's files (issue 9 #2, #3, #17): every file the runner opens resolves
inside the job's roots (HEBI_JOB_ROOTS, or the folders of DATA and the list when run by hand), every file
it writes stays inside its run folder, and each refusal is one ``hebi-runner: <reason>`` line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from runner_helpers import phantom_scan, write_list  # noqa: F401 (fixtures)

from hebi_runner import output as out

CORRECTED = [("NxtomoLoader", {}), ("DarkFlatFieldCorrection", {})]


@pytest.fixture
def users(tmp_path, phantom_scan):
    """alice and bob, each with data/processing/output; bob's scan is what alice must not read."""
    homes = {}
    for user in ("alice", "bob"):
        for root in ("data", "processing", "output"):
            (tmp_path / user / root).mkdir(parents=True)
        homes[user] = tmp_path / user
    shutil.copy(phantom_scan, homes["bob"] / "data" / "scan.nxs")
    shutil.copy(phantom_scan, homes["alice"] / "data" / "own.nxs")
    return homes


def _roots(home: Path) -> str:
    return json.dumps({root: {"path": str(home / root), "writable": root != "data"}
                       for root in ("data", "processing", "output")})


def _run(home: Path, data: Path, plist: Path, *extra: str, roots: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HEBI_JOB_ROOTS"}
    if roots:
        env["HEBI_JOB_ROOTS"] = _roots(home)
    return subprocess.run([sys.executable, "-m", "hebi_runner.cli", str(data), str(plist), str(home / "output"),
                           "-f", "run", "-q", "-n", "1", *extra], capture_output=True, text=True, timeout=300, env=env)


def _refused(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    reason = done.stderr.strip().splitlines()[-1]
    assert reason.startswith("hebi-runner: ")
    for word in words:
        assert word in reason, reason
    return reason


def _untouched(users) -> None:
    bob = sorted(p.relative_to(users["bob"]).as_posix() for p in users["bob"].rglob("*"))
    assert bob == ["data", "data/scan.nxs", "output", "processing"]
    assert not (users["alice"] / "output" / "run").exists()  # nothing half-written either


@pytest.mark.parametrize("roots", [True, False], ids=["HEBI_JOB_ROOTS", "by-hand"])
def test_out_datasets_cannot_name_a_file_in_another_users_folder(users, roots):
    alice, bob = users["alice"], users["bob"]
    escape = "../../../../" + str(bob / "processing" / "X").lstrip("/")
    plist = write_list(alice / "processing" / "escape.nxs",
                       [("NxtomoLoader", {}), ("DarkFlatFieldCorrection", {"out_datasets": [escape]})])
    _refused(_run(alice, alice / "data" / "own.nxs", plist, roots=roots), "not a dataset name")
    _untouched(users)


def test_every_output_path_is_checked_to_stay_in_the_run_folder(tmp_path):
    assert out.inside(tmp_path, "tomo_p1_dark_flat.h5") == tmp_path / "tomo_p1_dark_flat.h5"
    for name in ("../x.h5", "a/b.h5", "..", ""):
        with pytest.raises(out.RunnerError):
            out.inside(tmp_path, name)
    (tmp_path / "link.h5").symlink_to(tmp_path.parent / "elsewhere.h5")
    with pytest.raises(out.RunnerError, match="outside the run folder"):
        out.inside(tmp_path, "link.h5")


@pytest.mark.parametrize("roots", [True, False], ids=["HEBI_JOB_ROOTS", "by-hand"])
def test_an_external_link_to_another_users_scan_is_refused(users, roots):
    alice, bob = users["alice"], users["bob"]
    with h5py.File(alice / "data" / "linked.nxs", "w") as f:
        f["entry1"] = h5py.ExternalLink(str(bob / "data" / "scan.nxs"), "/entry1")
    plist = write_list(alice / "processing" / "list.nxs", CORRECTED)
    _refused(_run(alice, alice / "data" / "linked.nxs", plist, roots=roots), "outside")
    _untouched(users)


def test_an_external_link_inside_the_users_own_folders_is_followed(users):
    alice = users["alice"]
    with h5py.File(alice / "data" / "linked.nxs", "w") as f:
        f["entry1"] = h5py.ExternalLink("own.nxs", "/entry1")
    plist = write_list(alice / "processing" / "list.nxs", CORRECTED)
    done = _run(alice, alice / "data" / "linked.nxs", plist, "--preview", ":,mid:mid+1,:")
    assert done.returncode == 0, done.stderr


def test_a_virtual_dataset_reading_another_users_scan_is_refused(users):
    alice, bob = users["alice"], users["bob"]
    source = bob / "data" / "scan.nxs"
    with h5py.File(source, "r") as f:
        shape, dtype = f["entry1/tomo_entry/data/data"].shape, f["entry1/tomo_entry/data/data"].dtype
    with h5py.File(alice / "data" / "own.nxs", "a") as f:
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[:] = h5py.VirtualSource(str(source), "entry1/tomo_entry/data/data", shape=shape)
        del f["entry1/tomo_entry/data/data"]
        f["entry1/tomo_entry/data"].create_virtual_dataset("data", layout)
    plist = write_list(alice / "processing" / "list.nxs", CORRECTED)
    _refused(_run(alice, alice / "data" / "own.nxs", plist), "outside")
    _untouched(users)


def test_external_raw_storage_in_another_users_folder_is_refused(users):
    alice, bob = users["alice"], users["bob"]
    raw = bob / "data" / "frames.raw"
    with h5py.File(alice / "data" / "own.nxs", "r") as f:
        frames = f["entry1/tomo_entry/data/data"][()]
    raw.write_bytes(frames.tobytes())
    with h5py.File(alice / "data" / "own.nxs", "a") as f:
        del f["entry1/tomo_entry/data/data"]
        f["entry1/tomo_entry/data"].create_dataset("data", shape=frames.shape, dtype=frames.dtype,
                                                   external=[(str(raw), 0, frames.nbytes)])
    plist = write_list(alice / "processing" / "list.nxs", CORRECTED)
    _refused(_run(alice, alice / "data" / "own.nxs", plist), "outside")
    assert not (alice / "output" / "run").exists()


@pytest.mark.parametrize("what", ["dark", "flat"])
def test_dark_and_flat_files_in_another_users_folder_are_refused(users, what):
    alice, bob = users["alice"], users["bob"]
    plist = write_list(alice / "processing" / "list.nxs",
                       [("NxtomoLoader", {what: [str(bob / "data" / "scan.nxs"), "entry1/tomo_entry/data/data", 1.0]}),
                        ("DarkFlatFieldCorrection", {})])
    _refused(_run(alice, alice / "data" / "own.nxs", plist), f"NxtomoLoader.{what}", "outside")
    _untouched(users)


def test_image_folders_and_prefixes_stay_inside_the_roots(users):
    import tifffile
    alice, bob = users["alice"], users["bob"]
    for folder, count in ((alice / "data" / "tiffs", 4), (bob / "data" / "darks", 1)):
        folder.mkdir()
        for i in range(count):
            tifffile.imwrite(folder / f"img_{i:03d}.tif", np.ones((8, 8), dtype=np.float32))
    plist = write_list(alice / "processing" / "images.nxs",
                       [("ImageLoader", {"dark_prefix": "../../../bob/data/darks/img"}), ("DarkFlatFieldCorrection", {})])
    _refused(_run(alice, alice / "data" / "tiffs", plist), "ImageLoader", "outside")
    (alice / "data" / "tiffs" / "img_009.tif").symlink_to(bob / "data" / "darks" / "img_000.tif")
    plist = write_list(alice / "processing" / "images.nxs", [("ImageLoader", {}), ("DarkFlatFieldCorrection", {})])
    _refused(_run(alice, alice / "data" / "tiffs", plist), "outside")


def test_a_process_list_or_output_outside_the_roots_is_refused(users):
    alice, bob = users["alice"], users["bob"]
    plist = write_list(bob / "processing" / "bobs.nxs", CORRECTED)
    _refused(_run(alice, alice / "data" / "own.nxs", plist), "process list", "outside")
    env = {**os.environ, "HEBI_JOB_ROOTS": _roots(alice)}
    mine = write_list(alice / "processing" / "list.nxs", CORRECTED)
    done = subprocess.run([sys.executable, "-m", "hebi_runner.cli", str(alice / "data" / "own.nxs"), str(mine),
                           str(bob / "output"), "-q"], capture_output=True, text=True, timeout=300, env=env)
    _refused(done, "output folder", "outside")
    env["HEBI_JOB_ROOTS"] = "not json"
    done = subprocess.run([sys.executable, "-m", "hebi_runner.cli", str(alice / "data" / "own.nxs"), str(mine),
                           str(alice / "output"), "-q"], capture_output=True, text=True, timeout=300, env=env)
    _refused(done, "HEBI_JOB_ROOTS")
    assert not list((bob / "output").iterdir()) and not list((alice / "output").iterdir())


def test_a_refusal_with_several_problems_is_one_reason_line(users):
    alice = users["alice"]
    plist = write_list(alice / "processing" / "list.nxs",
                       [("NxtomoLoader", {}), ("AstraReconGpu", {}), ("MedianFilterGpu", {})])
    reason = _refused(_run(alice, alice / "data" / "own.nxs", plist), "plugin 2 (AstraReconGpu)",
                      "plugin 3 (MedianFilterGpu)")
    assert "\n" not in reason


def _nxdata_problems(path: Path) -> list[str]:
    """What h5web refuses in a file's NXdata groups: axes that are missing or not numeric."""
    problems = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and obj.attrs.get("NX_class") in ("NXdata", b"NXdata") and "axes" in obj.attrs:
                for axis in obj.attrs["axes"]:
                    axis = axis.decode() if isinstance(axis, bytes) else str(axis)
                    if axis == ".":
                        continue
                    link = obj.get(axis, getlink=True)
                    if link is None:
                        problems.append(f"{name}: axis {axis} does not exist")
                    elif obj[axis].dtype.kind not in "iuf":
                        problems.append(f"{name}: axis {axis} is not numeric ({obj[axis].dtype})")
        f.visititems(visit)
    return problems


def test_every_output_file_has_numeric_axes_that_exist_and_labels_its_tuned_values(users):
    """h5web's "Expected child entity 'voxel_x' to exist" and "Expected numeric type" (issue 9 #16)."""
    alice = users["alice"]
    plist = write_list(alice / "processing" / "tuned.nxs", CORRECTED + [
        ("AstraReconCpu", {"centre_of_rotation": "83;84", "algorithm": "FBP;SIRT", "n_iterations": 2})])
    done = _run(alice, alice / "data" / "own.nxs", plist, "--preview", ":,mid:mid+1,:")
    assert done.returncode == 0, done.stderr
    files = sorted((alice / "output" / "run").glob("*.h5")) + [alice / "output" / "run" / "own_processed.nxs"]
    assert len(files) == 3
    for path in files:
        assert _nxdata_problems(path) == [], path.name
    with h5py.File(files[-1], "r") as f:
        final = f["entry/final_result_tomo"]
        assert final["data"].shape[-2:] == (2, 2)
        assert final["centre_of_rotation_params"].attrs["long_name"] == "centre_of_rotation: 83, 84"
        assert final["algorithm_params"].attrs["long_name"] == "algorithm: 0 = FBP, 1 = SIRT"
        assert list(final.attrs["default_slice"]) == [".", "0", ".", "0", "0"]
