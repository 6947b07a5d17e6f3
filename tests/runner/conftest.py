"""Fixtures for the runner's tests: a phantom scan with a known off-centre axis and its ground truth."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from runner_helpers import COLUMNS, TRUE_CENTRE  # noqa: E402
from runner_phantom import ground_truth, write_phantom_scan  # noqa: E402


@pytest.fixture(scope="session")
def phantom_scan(tmp_path_factory) -> Path:
    return write_phantom_scan(tmp_path_factory.mktemp("phantom") / "phantom.nxs", centre=TRUE_CENTRE, rows=6)


@pytest.fixture(scope="session")
def truth() -> np.ndarray:
    return ground_truth(COLUMNS)
