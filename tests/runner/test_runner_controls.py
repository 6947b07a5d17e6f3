"""What a scientist controls in a run and what the runner refuses: preview, tuning, loops,
killsignal, plugins it cannot run, and data it cannot read, each with a clear message."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.ndimage
from runner_helpers import TRUE_CENTRE, final_result, phantom_scan, quality, truth, user_log, write_list  # noqa: F401 (fixtures)

from hebi_runner import PluginSpec, RunnerError, RunOptions, run_pipeline, run_process_list

CORRECTED = [("NxtomoLoader", {}), ("DarkFlatFieldCorrection", {})]


def _runner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hebi_runner.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_preview_of_three_slices_from_the_command_line(phantom_scan, tmp_path):
    process_list = write_list(tmp_path / "recon.nxs", CORRECTED + [("TomopyRecon", {"centre_of_rotation": 83.25})])
    done = _runner(str(phantom_scan), str(process_list), str(tmp_path / "out"), "-f", "preview",
                   "--preview", ":,mid-1:mid+2,:", "-n", "2", "-q")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out" / "preview"
    with h5py.File(out / "phantom_processed.nxs", "r") as f:
        assert f["entry/final_result_tomo/data"].shape == (160, 3, 160)
        assert list(f["entry/final_result_tomo/voxel_y"][...]) == [1, 2, 3]  # mid of 6 rows is 2
    # The loader's own preview syntax: every other angle, rows mid..end.
    process_list = write_list(tmp_path / "preview.nxs", [("NxtomoLoader", {"preview": ["0:end:2", "mid:end", ":"]}),
                                                         ("DarkFlatFieldCorrection", {})])
    result = run_process_list(phantom_scan, process_list, tmp_path / "out", RunOptions(folder="own", workers=1))
    assert final_result(result.nxs).shape == (121, 4, 160)


def test_tuning_runs_each_value_and_keeps_each_output(phantom_scan, truth, tmp_path):
    process_list = write_list(tmp_path / "tuning.nxs", CORRECTED + [
        ("AstraReconCpu", {"centre_of_rotation": "79.5;83.25;87", "preview": []})])
    result = run_process_list(phantom_scan, process_list, tmp_path / "out", RunOptions(workers=2))
    assert result.status == "completed", result.error
    volume = final_result(result.nxs)
    assert volume.shape == (160, 6, 160, 3)  # one extra dimension for the tuned parameter
    with h5py.File(result.nxs, "r") as f:  # a numeric axis (NeXus viewers plot only those), labelled
        axis = f["entry/final_result_tomo/centre_of_rotation_params"]
        assert list(axis[...]) == [79.5, 83.25, 87.0]
        assert axis.attrs["long_name"] == "centre_of_rotation: 79.5, 83.25, 87"
    scores = [quality(volume[:, 2, :, k], truth)[0] for k in range(3)]
    assert int(np.argmax(scores)) == 1 and scores[1] > max(scores[0], scores[2]) + 3


def test_a_loop_runs_its_plugins_again_on_their_own_output(phantom_scan, tmp_path):
    median = ("MedianFilter", {"kernel_size": 3, "kernel_dimension": "2D", "pattern": "SINOGRAM"})
    once = run_process_list(phantom_scan, write_list(tmp_path / "once.nxs", CORRECTED), tmp_path / "out",
                            RunOptions(folder="once", workers=1))
    looped = write_list(tmp_path / "loop.nxs", CORRECTED + [median, median], loops=[(3, 4, 3)])
    result = run_process_list(phantom_scan, looped, tmp_path / "out", RunOptions(folder="loop", workers=2))
    assert result.status == "completed", result.error
    expected = final_result(once.nxs)
    for _ in range(6):  # 2 plugins x 3 iterations
        expected = scipy.ndimage.median_filter(expected, size=(3, 1, 3), mode="reflect")
    assert np.allclose(final_result(result.nxs), expected)
    log = user_log(result.out_dir)
    assert log.count("*Running the MedianFilter plugin*") == 6
    assert "Iteration 3 of 3" in log


def test_killsignal_stops_the_run_after_the_current_plugin(phantom_scan, tmp_path):
    process_list = write_list(tmp_path / "kill.nxs", CORRECTED + [("RingRemovalSorting", {"size": 11}),
                                                                  ("TomopyRecon", {"centre_of_rotation": 83.25})])
    out = tmp_path / "out" / "killed"

    def kill_during_flat_field(line: str) -> None:
        if "*Running the DarkFlatFieldCorrection plugin*" in line:
            (out / "killsignal").touch()

    result = run_process_list(phantom_scan, process_list, tmp_path / "out",
                              RunOptions(folder="killed", workers=1, echo=kill_during_flat_field))
    assert result.status == "killed"
    assert "Processing interrupted by killsignal" in user_log(out)
    assert (out / "tomo_p1_dark_flat_field_correction.h5").exists()  # the current plugin finished cleanly
    assert not list(out.glob("tomo_p2_*")) and not list(out.glob("tomo_p3_*"))
    assert final_result(result.nxs).shape == (241, 6, 160)  # the master file shows what was done


def test_unknown_and_gpu_plugins_are_refused_before_any_work(phantom_scan, tmp_path):
    process_list = write_list(tmp_path / "gpu.nxs", CORRECTED + [("NotASavuPlugin", {}),
                                                                 ("AstraReconGpu", {"centre_of_rotation": 83})])
    done = _runner(str(phantom_scan), str(process_list), str(tmp_path / "out"), "-f", "refused")
    assert done.returncode == 2
    assert "plugin 3 (NotASavuPlugin): not a Savu plugin" in done.stderr
    assert "plugin 4 (AstraReconGpu): needs a GPU" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing was started

    with pytest.raises(RunnerError, match=r"TomopyRecon.algorithm 'sirt' needs tomopy"):
        run_pipeline(phantom_scan, [PluginSpec("NxtomoLoader"), PluginSpec("TomopyRecon", {"algorithm": "sirt"})],
                     tmp_path / "out")
    with pytest.raises(RunnerError, match=r"\(RingRemovalSorting\): parameter\(s\) sigma are not valid"):
        run_pipeline(phantom_scan, [PluginSpec("NxtomoLoader"), PluginSpec("RingRemovalSorting", {"sigma": 3})],
                     tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_or_wrong_data_is_refused_with_a_clear_error(phantom_scan, tmp_path):
    process_list = write_list(tmp_path / "flat.nxs", CORRECTED)
    truncated = tmp_path / "truncated.nxs"
    truncated.write_bytes(phantom_scan.read_bytes()[: os.path.getsize(phantom_scan) // 3])
    with pytest.raises(RunnerError, match=r"NxtomoLoader: truncated.nxs is not a readable HDF5/NeXus file"):
        run_process_list(truncated, process_list, tmp_path / "out")

    not_tomo = tmp_path / "not_tomo.nxs"
    with h5py.File(not_tomo, "w") as f:
        f["entry1/tomo_entry/data/data"] = np.zeros((4, 5))
    with pytest.raises(RunnerError, match=r"/entry1/tomo_entry/data/data in not_tomo.nxs should be a 3D dataset"):
        run_process_list(not_tomo, process_list, tmp_path / "out")

    with pytest.raises(RunnerError, match=r"preview entry 'end:end' for detector_y selects nothing"):
        run_process_list(phantom_scan, process_list, tmp_path / "out", RunOptions(preview=[":", "end:end", ":"]))

    bad_tiffs = tmp_path / "tiffs"
    bad_tiffs.mkdir()
    (bad_tiffs / "raw_00000.tiff").write_bytes(b"this is not a TIFF image")
    with pytest.raises(RunnerError, match=r"ImageLoader: cannot read raw_00000.tiff as a TIFF image"):
        run_pipeline(bad_tiffs, [PluginSpec("ImageLoader", {"data_prefix": "raw"})], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_savu_expressions_are_evaluated_without_eval(phantom_scan, tmp_path):
    plugins = [PluginSpec("NxtomoLoader", {"angles": "__import__('os').system('true')"})]
    with pytest.raises(RunnerError, match="NxtomoLoader.angles: .* is not an allowed numpy function"):
        run_pipeline(phantom_scan, plugins, tmp_path / "out")
    plugins = [PluginSpec("NxtomoLoader", {"angles": "np.linspace(0, 180, 241)", "preview": [":", "mid", ":"]}),
               PluginSpec("DarkFlatFieldCorrection"),
               PluginSpec("AstraReconCpu", {"centre_of_rotation": TRUE_CENTRE, "log_func": "-np.log(sino + 0.0)"})]
    result = run_pipeline(phantom_scan, plugins, tmp_path / "out", RunOptions(workers=1))
    assert result.status == "completed" and final_result(result.nxs).shape == (160, 1, 160)
