"""Helpers for the runner's tests: process lists written with hebi's own Savu process-list writer,
and what a scientist would look at in a run's output (final results, quality, user.log)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from runner_phantom import ground_truth, write_phantom_scan

from hebi_common.savu.catalogue import bundled_catalogue
from hebi_common.savu.process_list import Loop, PluginEntry, ProcessList, write_process_list

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "savu"  # as tests/conftest.py finds them
TRUE_CENTRE = 83.25  # columns 0..159: the axis sits 3.75 px right of the middle (79.5)
COLUMNS = 160


def write_list(path: Path, plugins: list[tuple[str, dict]], loops: list[tuple[int, int, int]] = ()) -> Path:
    """A Savu 4.2 process list of ``plugins`` (name, non-default parameters) and loops."""
    catalogue = bundled_catalogue()
    entries = [PluginEntry(pos=str(i + 1), name=name,
                           module=catalogue.get(name).module if catalogue.get(name) else "unknown.module",
                           params=dict(params))
               for i, (name, params) in enumerate(plugins)]
    write_process_list(ProcessList(plugins=entries, loops=[Loop(*loop) for loop in loops]), path)
    return path


def final_result(nxs: Path, name: str = "tomo") -> np.ndarray:
    with h5py.File(nxs, "r") as f:
        return f[f"entry/final_result_{name}/data"][...]


def quality(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM against the phantom inside the reconstruction's 0.95 disc."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    n = truth.shape[0]
    y, x = np.ogrid[:n, :n]
    disc = (x - (n - 1) / 2) ** 2 + (y - (n - 1) / 2) ** 2 <= (0.95 * n / 2) ** 2
    span = float(truth.max() - truth.min())
    return (float(peak_signal_noise_ratio(truth[disc], image[disc], data_range=span)),
            float(structural_similarity(truth, image * disc, data_range=span)))


def user_log(out_dir: Path) -> str:
    return (out_dir / "run_log" / "user.log").read_text()


# Fixtures, imported by the test modules (a conftest.py here would shadow tests/conftest.py, which
# other test folders import as ``conftest``).
@pytest.fixture(scope="session")
def phantom_scan(tmp_path_factory) -> Path:
    """The phantom as an NXtomo: 241 angles over 180 degrees, 6 rows, 160 columns, 5 darks, 5 flats."""
    return write_phantom_scan(tmp_path_factory.mktemp("phantom") / "phantom.nxs", centre=TRUE_CENTRE, rows=6)


@pytest.fixture(scope="session")
def truth() -> np.ndarray:
    return ground_truth(COLUMNS)
