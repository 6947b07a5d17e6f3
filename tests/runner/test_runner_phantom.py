"""A scientist runs a real Savu process list (dark/flat -> ring removal -> VoCentering -> FBP) on a
phantom scan whose rotation axis is off the middle, and gets the centre and the slice back, in Savu's
output layout with Savu's progress lines."""
from __future__ import annotations

import re

import h5py
import numpy as np
from runner_helpers import TRUE_CENTRE, final_result, phantom_scan, quality, truth, user_log, write_list  # noqa: F401 (fixtures)

from hebi_runner import RunOptions, run_process_list

PIPELINE = [
    ("NxtomoLoader", {}),
    ("DarkFlatFieldCorrection", {}),
    ("RingRemovalSorting", {"size": 11}),  # Savu's default 31 suits ~2k-pixel detectors, not 160
    ("VoCentering", {"preview": [":", "mid", ":"]}),
    ("AstraReconCpu", {"centre_of_rotation": 0.0}),  # overridden by VoCentering, as in Savu
]
# Stated quality of the FBP slice against the phantom (noisy Poisson counts, 241 angles, 160 px).
MIN_PSNR_DB, MIN_SSIM = 22.0, 0.65


def test_pipeline_recovers_the_centre_and_the_slice(phantom_scan, truth, tmp_path):
    process_list = write_list(tmp_path / "phantom_fbp.nxs", PIPELINE)
    result = run_process_list(phantom_scan, process_list, tmp_path / "out", RunOptions(workers=2))
    assert result.status == "completed", result.error

    assert abs(float(np.median(result.centre_of_rotation)) - TRUE_CENTRE) <= 0.5
    volume = final_result(result.nxs)
    assert volume.shape == (160, 6, 160)  # Savu's (voxel_x, voxel_y, voxel_z)
    psnr, ssim = quality(volume[:, 2, :], truth)
    assert psnr >= MIN_PSNR_DB and ssim >= MIN_SSIM, (psnr, ssim)

    # The same list with the centre left at the detector middle is visibly worse: centring mattered.
    fixed = write_list(tmp_path / "middle.nxs", [p for p in PIPELINE if p[0] != "VoCentering"][:-1]
                       + [("AstraReconCpu", {"centre_of_rotation": 79.5})])
    off = run_process_list(phantom_scan, fixed, tmp_path / "out", RunOptions(workers=1, folder="middle"))
    assert quality(final_result(off.nxs)[:, 2, :], truth)[0] < psnr - 3


def test_output_layout_and_progress_are_savus(phantom_scan, tmp_path):
    process_list = write_list(tmp_path / "layout.nxs", PIPELINE[:2] + [("VoCentering", {"preview": [":", "mid", ":"]}),
                                                                      ("TomopyRecon", {})])
    result = run_process_list(phantom_scan, process_list, tmp_path / "out", RunOptions(workers=2))
    out = result.out_dir
    assert re.fullmatch(r"\d{14}_phantom", out.name)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["cor_broadcast_p2_vo_centering.h5", "cor_preview_p2_vo_centering.h5", "phantom_processed.nxs",
                     "run_log", "tomo_p1_dark_flat_field_correction.h5", "tomo_p3_tomopy_recon.h5"]
    with h5py.File(result.nxs, "r") as f:
        final = f["entry/final_result_tomo"]
        assert final.attrs["NX_class"] == "NXdata" and final.attrs["signal"] == "data"
        assert list(final.attrs["axes"]) == ["voxel_x", "voxel_y", "voxel_z"]
        link = final.get("data", getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert (link.filename, link.path) == ("tomo_p3_tomopy_recon.h5", "/3-TomopyRecon-tomo/data")
        assert final["data"].shape == (160, 6, 160)  # the link resolves
        assert "1-DarkFlatFieldCorrection-tomo" in f["entry/intermediate"]
        assert [f[f"entry/plugin/{i}/name"][0].decode() for i in "1234"] == [
            "NxtomoLoader", "DarkFlatFieldCorrection", "VoCentering", "TomopyRecon"]
        assert f["entry/input_data/tomo/data"].shape == (251, 6, 160)  # external link to the raw scan
        centres = f["entry/final_result_cor_broadcast/data"][:, 0]
        assert np.allclose(centres, result.centre_of_rotation)
    log = user_log(out)
    lines = log.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ", line) for line in lines if line[:2] == "20")
    for plugin in ("DarkFlatFieldCorrection", "VoCentering", "TomopyRecon"):
        assert f"*Running the {plugin} plugin*" in log
        assert f"{plugin} - 100% complete" in log
    assert "Plugin list check complete!" in log and "* Processing Complete in" in lines[-1]
    assert log.index("Running the VoCentering") < log.index("Running the TomopyRecon")
