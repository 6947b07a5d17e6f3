"""Savu's own process lists (from Savu's repository, used as they are) run on the phantom scan: the
NxtomoLoader paths in them are those of the NXtomo the test writes."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import tifffile
from runner_helpers import (
    FIXTURES,
    TRUE_CENTRE,
    final_result,
    phantom_scan,  # noqa: F401 (fixtures)
    user_log,
)

from hebi_runner import RunnerError, RunOptions, run_process_list

LISTS = FIXTURES / "process_lists"


@pytest.fixture
def savu_list(tmp_path):
    def copy(name: str):
        if not (LISTS / name).exists():
            pytest.skip(f"Savu fixtures not found at {FIXTURES}")
        return shutil.copy(LISTS / name, tmp_path / name)
    return copy


def test_vo_centering_test_finds_the_centre(phantom_scan, savu_list, tmp_path):
    result = run_process_list(phantom_scan, savu_list("vo_centering_test.nxs"), tmp_path, RunOptions(workers=2))
    assert result.status == "completed", result.error
    # The list searches start_pixel 82 +- 5 on every sinogram, averaging +-5 rows, as Savu would.
    raw = final_result(result.nxs, "cor_raw")[:, 0]
    assert raw.shape == (6,) and np.all(np.abs(raw - TRUE_CENTRE) <= 0.5)
    assert "*Running the Hdf5Saver plugin*" in user_log(result.out_dir)


def test_basic_tomo_process_with_tuning_paganin_and_scikit_fbp(phantom_scan, savu_list, tmp_path):
    result = run_process_list(phantom_scan, savu_list("basic_tomo_process.nxs"), tmp_path, RunOptions(workers=2))
    assert result.status == "completed", result.error
    volume = final_result(result.nxs)
    assert volume.shape == (160, 2, 160, 2)  # preview rows 0:2; RavenFilter nvalue "8;9" -> 2 outputs
    assert not np.allclose(volume[..., 0], volume[..., 1])
    with h5py.File(result.nxs, "r") as f:
        assert list(f["entry/final_result_tomo/nvalue_params"][...]) == [8.0, 9.0]
    log = user_log(result.out_dir)
    for plugin in ("RavenFilter", "PaganinFilter", "ScikitimageFilterBackProjection"):
        assert f"{plugin} - 100% complete" in log


def test_tiff_saver_test_writes_a_tiff_folder(phantom_scan, savu_list, tmp_path):
    result = run_process_list(phantom_scan, savu_list("tiff_saver_test.nxs"), tmp_path,
                              RunOptions(workers=2, preview=[":", "0:6", ":"], folder="tiffs"))
    assert result.status == "completed", result.error
    binned = final_result(result.nxs)
    assert binned.shape == (241, 2, 53)  # 3x3 binning
    images = sorted((result.out_dir / "TiffSaver_3").iterdir())
    assert len(images) == 241 and images[0].name == "img_phantom_00000.tiff"
    assert np.allclose(tifffile.imread(images[7]), binned[7])


def test_gpu_lists_are_refused(phantom_scan, savu_list, tmp_path):
    with pytest.raises(RunnerError, match=r"plugin 5 \(AstraReconGpu\): needs a GPU"):
        run_process_list(phantom_scan, savu_list("astra_fbp_ds.nxs"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
