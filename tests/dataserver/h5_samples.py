"""Files and clients for the dataserver's tests: the user's data folder, files of our own, and a
client whose dataserver has its own settings (e.g. a small byte limit). Imported by the test modules
(a conftest.py here would shadow the top-level one, which is imported by name)."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, signed_client

SAVU_DATA = FIXTURES / "data"


@pytest.fixture
def data_dir(roots_dir: Path) -> Path:
    return roots_dir / "data"


@pytest.fixture
def make_dataserver(session_config, session_context):
    """A signed client of a dataserver built with ``dataserver:`` settings of the test's choosing."""
    from hebi_dataserver.app import create_app

    def make(**settings):
        document = session_config.model_dump()
        document["dataserver"] = {**document.get("dataserver", {}), **settings}
        config = type(session_config).model_validate(document)
        app = create_app(config, session_context)
        return signed_client(app, session_context), app

    return make


def copy_fixture(relative: str, into: Path) -> Path:
    """A real Diamond/Savu file copied into the test's roots (never committed, never edited in place)."""
    source = SAVU_DATA / relative
    if not source.exists():
        pytest.skip(f"fixture {relative} is not available at {SAVU_DATA}")
    target = into / source.name
    shutil.copy(source, target)
    target.chmod(0o644)
    return target


def write_tomo_entry1(path: Path, frames: int = 6, rows: int = 40, cols: int = 50, chunks=None) -> np.ndarray:
    """A NeXus file laid out as Diamond writes raw tomography: /entry1/tomo_entry/data/data, defaults set."""
    values = (np.arange(frames * rows * cols, dtype=np.float32).reshape(frames, rows, cols) % 997) / 10
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry1"
        entry = f.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "tomo_entry"
        sub = entry.create_group("tomo_entry")
        sub.attrs["NX_class"] = "NXsubentry"
        sub.attrs["default"] = "data"
        sub["definition"] = "NXtomo"
        group = sub.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        group.attrs["axes"] = ["rotation_angle", ".", "."]
        group.create_dataset("data", data=values, chunks=chunks or (1, rows, cols))
        group["rotation_angle"] = np.linspace(0, 180, frames)
    return values


def run_elsewhere(code: str, **names) -> None:
    """Run Python ``code`` in another process, as a running job would write a file (HDF5 refuses to open a
    file twice in one process with different modes, and the dataserver under test holds it open)."""
    import subprocess
    import sys

    preamble = "import h5py, numpy as np\n" + "".join(f"{key} = {value!r}\n" for key, value in names.items())
    subprocess.run([sys.executable, "-c", preamble + code], check=True, timeout=60)
