"""Savu's own test scan (91 TIFF projections of a real sample, dark and flat, from Savu's repository)
run with Savu's own tiff_loader_test.nxs, then reconstructed: Vo centring finds about 85.5 there."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tifffile
from runner_helpers import FIXTURES, final_result, user_log, write_list

from hebi_common.savu.process_list import read_process_list
from hebi_runner import RunOptions, run_process_list

SCAN = FIXTURES / "data" / "image_test" / "tiffs"
LIST = FIXTURES / "process_lists" / "tiff_loader_test.nxs"


@pytest.fixture(scope="module")
def scan():
    if not SCAN.is_dir() or not LIST.exists():
        pytest.skip(f"Savu fixtures not found at {FIXTURES}")
    return SCAN


def test_tiff_loader_test_list_runs_as_savu_would(scan, tmp_path):
    process_list = tmp_path / LIST.name
    shutil.copy(LIST, process_list)  # used exactly as Savu's repository has it
    done = subprocess.run([sys.executable, "-m", "hebi_runner.cli", str(scan), str(process_list), str(tmp_path),
                           "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (out,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert re.fullmatch(r"\d{14}_tiffs", out.name)
    raw = np.stack([tifffile.imread(p) for p in sorted(scan.glob("raw_*.tif*"))])
    assert np.array_equal(final_result(out / "tiffs_processed.nxs"), raw.astype(np.float32))  # NoProcessPlugin
    with h5py.File(out / "tiffs_processed.nxs", "r") as f:
        angles = f["entry/final_result_tomo/rotation_angle"][...]
    assert np.allclose(angles, np.linspace(-88.2, 91.8, 91))  # the list's angles expression
    log = user_log(out)
    assert "*Running the NoProcessPlugin plugin*" in log and "NoProcessPlugin - 100% complete" in log
    assert (out / "run_log" / LIST.name).exists()


def test_reconstruction_of_the_real_scan_finds_savus_centre(scan, tmp_path):
    loader = next(p for p in read_process_list(LIST).plugins if p.name == "ImageLoader")
    process_list = write_list(tmp_path / "tiff_recon.nxs", [
        ("ImageLoader", dict(loader.params, preview=[":", "mid-2:mid+3", ":"])),
        ("DarkFlatFieldCorrection", {"lower_bound": 0.0001}),
        ("RingRemovalWaveletfft", {}),
        ("VoCentering", {"preview": [":", "mid", ":"], "search_area": [-20, 20]}),
        ("TomopyRecon", {}),
        ("TiffSaver", {"pattern": "VOLUME_XZ"}),
    ])
    result = run_process_list(scan, process_list, tmp_path / "out", RunOptions(workers=2))
    assert result.status == "completed", result.error
    assert abs(float(np.median(result.centre_of_rotation)) - 85.5) <= 0.5
    volume = final_result(result.nxs)
    assert volume.shape == (160, 5, 160)
    middle = volume[:, 2, :]
    # The sample is a small dense object near the axis: bright inside, near zero outside.
    assert middle[70:90, 70:90].mean() > 5 * abs(np.median(middle[:20, :20]))
    images = sorted((result.out_dir / "TiffSaver_5").glob("*.tiff"))
    assert [p.name for p in images] == [f"img_tiffs_{i:05d}.tiff" for i in range(5)]
    assert np.allclose(tifffile.imread(images[2]), middle)


def test_a_projection_corrupt_in_the_middle_fails_the_run_clearly(scan, tmp_path):
    damaged = tmp_path / "image_test"
    shutil.copytree(scan.parent, damaged)
    (damaged / "tiffs" / "raw_00045.tiff").write_bytes(b"II*\x00 truncated")
    process_list = tmp_path / LIST.name
    shutil.copy(LIST, process_list)
    done = subprocess.run([sys.executable, "-m", "hebi_runner.cli", str(damaged / "tiffs"), str(process_list),
                           str(tmp_path / "out"), "-f", "damaged", "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "cannot read raw_00045.tiff as a TIFF image" in done.stderr
    out = tmp_path / "out" / "damaged"
    reason = done.stderr.strip().splitlines()[-1]
    assert reason.startswith("hebi-runner: plugin ") and "failed: DataError: ImageLoader: cannot read raw_00045.tiff" \
        in reason  # one line: which plugin, which file
    log = user_log(out).strip().splitlines()
    assert log[-1].endswith(" - " + reason)  # user.log ends with the same reason line
    assert not [p.name for p in out.iterdir() if p.name.endswith((".h5", ".part"))]  # nothing half-written
