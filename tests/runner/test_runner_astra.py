"""With the optional astra-toolbox extra (GPL-3.0; `make test` installs it, the demo does not:
docs/runner.md), AstraReconCpu runs astra's own CPU algorithms, the off-centre axis handled by padding
as in Savu."""
from __future__ import annotations

import pytest
from runner_helpers import TRUE_CENTRE, final_result, phantom_scan, quality, truth  # noqa: F401 (fixtures)

from hebi_runner import PluginSpec, RunOptions, run_pipeline


@pytest.fixture(autouse=True)
def astra_installed():
    import importlib.util

    from conftest import real_component
    real_component("astra-toolbox", importlib.util.find_spec("astra") is not None,
                   "an optional extra: pip install 'hebi-runner[astra]' (make test installs it)")


@pytest.mark.parametrize("algorithm, iterations, min_psnr, min_ssim",
                         [("FBP", 1, 24.0, 0.7), ("SIRT", 100, 23.0, 0.8), ("CGLS", 20, 24.0, 0.7)])
def test_astra_cpu_algorithms_reconstruct_the_phantom(phantom_scan, truth, tmp_path, algorithm, iterations,
                                                      min_psnr, min_ssim):
    plugins = [PluginSpec("NxtomoLoader", {"preview": [":", "mid", ":"]}), PluginSpec("DarkFlatFieldCorrection"),
               PluginSpec("AstraReconCpu", {"centre_of_rotation": TRUE_CENTRE, "algorithm": algorithm,
                                            "n_iterations": iterations})]
    result = run_pipeline(phantom_scan, plugins, tmp_path, RunOptions(workers=1))
    assert result.status == "completed", result.error
    psnr, ssim = quality(final_result(result.nxs)[:, 0, :], truth)
    assert psnr >= min_psnr and ssim >= min_ssim, (psnr, ssim)
