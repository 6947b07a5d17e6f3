"""Process lists and Savu values that must be harmless: a list never follows a link into another user's
files (issue 9 #4), never expands beyond a bound when read (#9), dataset names stay plain identifiers
(#2) and no expression can burn CPU (#10)."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from hebi_common.savu.catalogue import bundled_catalogue
from hebi_common.savu.expressions import ExpressionError, evaluate
from hebi_common.savu.operations import Editor, OperationError
from hebi_common.savu.parameters import preview_entry_problem, value_problem
from hebi_common.savu.preview import PreviewError, indices
from hebi_common.savu.process_list import (
    PluginEntry,
    ProcessList,
    ProcessListError,
    read_process_list,
    read_process_list_bytes,
    write_process_list,
)
from hebi_common.savu.validation import check_runnable


def _plugin(name: str, pos: str, **params) -> PluginEntry:
    return PluginEntry(pos=pos, name=name, module=bundled_catalogue().get(name).module, params=params)


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_process_list(ProcessList(plugins=[_plugin("NxtomoLoader", "1"), _plugin("AstraReconCpu", "2")]), path)
    return path


@pytest.fixture
def two_users(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "alice" / "processing", tmp_path / "bob" / "processing"
    _write(b / "secret.nxs")
    return a, b


def test_process_list_whose_groups_are_external_links_is_refused(two_users):
    a, b = two_users
    crafted = _write(a / "crafted.nxs")
    with h5py.File(crafted, "a") as f:
        del f["entry/plugin/2"]
        f["entry/plugin/2"] = h5py.ExternalLink(str(b / "secret.nxs"), "/entry/plugin/2")
    with pytest.raises(ProcessListError) as caught:
        read_process_list(crafted)
    assert "external link" in caught.value.message and caught.value.status == 422
    with pytest.raises(ProcessListError, match="external link"):
        read_process_list_bytes(crafted.read_bytes(), "crafted.nxs")


def test_process_list_with_a_whole_external_entry_is_refused(two_users):
    a, b = two_users
    a.mkdir(parents=True, exist_ok=True)
    with h5py.File(a / "entry_link.nxs", "w") as f:
        f["entry"] = h5py.ExternalLink(str(b / "secret.nxs"), "/entry")
    with pytest.raises(ProcessListError, match="external link"):
        read_process_list(a / "entry_link.nxs")


def test_process_list_with_soft_links_or_virtual_datasets_is_refused(two_users, tmp_path):
    a, b = two_users
    soft = _write(a / "soft.nxs")
    with h5py.File(soft, "a") as f:
        f["entry/plugin/3"] = h5py.SoftLink("/entry/plugin/2")
    with pytest.raises(ProcessListError, match="soft link"):
        read_process_list(soft)
    virtual = _write(a / "virtual.nxs")
    with h5py.File(b / "values.h5", "w") as f:
        f["data"] = np.frombuffer(b'{"preview": []}'.ljust(32), dtype="S1")
    with h5py.File(virtual, "a") as f:
        layout = h5py.VirtualLayout(shape=(32,), dtype="S1")
        layout[:] = h5py.VirtualSource(str(b / "values.h5"), "data", shape=(32,))
        f["entry/plugin/2"].create_virtual_dataset("extra", layout)
    with pytest.raises(ProcessListError, match="other files"):
        read_process_list(virtual)


def test_a_compressed_bomb_inside_a_list_is_refused_without_expanding_it(tmp_path):
    bomb = _write(tmp_path / "bomb.nxs")
    with h5py.File(bomb, "a") as f:  # the plugin's parameters: 512 MiB of zeros, a few hundred kilobytes on disk
        del f["entry/plugin/2/data"]
        f["entry/plugin/2"].create_dataset("data", shape=(512, 1024, 1024), dtype="u1", chunks=(64, 1024, 1024),
                                           compression="gzip", compression_opts=9, fillvalue=0)
        f["entry/plugin/2/data"][:64] = 0  # one stored chunk
    assert bomb.stat().st_size < 2 * 2**20
    tracemalloc.start()
    with pytest.raises(ProcessListError) as caught:
        read_process_list_bytes(bomb.read_bytes(), "bomb.nxs")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert caught.value.status == 413 and "MiB" in caught.value.message
    assert peak < 32 * 2**20  # the file's bytes, not the 512 MiB it would expand to


def test_dataset_names_must_be_plain_identifiers_in_the_editor_and_at_submission():
    definition = bundled_catalogue().get("AstraReconCpu").parameter("out_datasets")
    problem = value_problem("out_datasets", ["../../../../bob/processing/X"], definition)
    assert problem and "not a dataset name" in problem
    assert value_problem("out_datasets", ["tomo_2"], definition) is None
    plist = ProcessList(plugins=[_plugin("NxtomoLoader", "1"), _plugin("AstraReconCpu", "2")])
    with pytest.raises(OperationError, match="not a dataset name"):
        Editor(plist, bundled_catalogue()).mod("2", "out_datasets", ["../x"])
    plist.plugins[1].params["in_datasets"] = ["tomo/../../x"]
    assert any("not a dataset name" in p.message for p in check_runnable(plist))
    plist.plugins[1].params["in_datasets"] = []
    plist.plugins[0].params["name"] = "../../tomo"  # the loader's dataset: its name is a file name too
    assert [p.parameter for p in check_runnable(plist)] == ["name"]


@pytest.mark.parametrize("bomb", ["mid:mid+9**9**9**9", "9**99", "mid" + "*mid" * 100, "1" * 400,
                                  "(" * 150 + "1" + ")" * 150])
def test_preview_cpu_bombs_are_refused_by_the_editor_and_the_evaluator(bomb):
    assert preview_entry_problem(bomb) is not None
    with pytest.raises(PreviewError):
        indices([":", bomb, ":"], (10, 10, 10))


def test_expressions_are_bounded_at_every_step():
    with pytest.raises(ExpressionError, match="power"):
        evaluate("2**3", numpy=True)
    with pytest.raises(ExpressionError, match="beyond"):
        evaluate("100000*100000*100000", {})
    with pytest.raises(ExpressionError, match="would make"):
        evaluate("np.linspace(0, 180, 900000000)", numpy=True)
    with pytest.raises(ExpressionError, match="would make"):
        evaluate("np.zeros(900000000)", numpy=True)
    with pytest.raises(ExpressionError, match="would make"):
        evaluate("np.arange(0, 1000000000, 1)", numpy=True)
    assert len(evaluate("np.linspace(0, 180, 91)", numpy=True)) == 91
    sino = np.ones((4, 4), dtype=np.float32)
    assert evaluate("np.nan_to_num(-np.log(sino))", {"sino": sino}, numpy=True).shape == (4, 4)


@pytest.mark.parametrize("bomb", ["np.linspace(0, 180, 9**9**9)", "np.ones(100000*100000)", "np.arange(0, 999999999)",
                                  "np.linspace(0, 180, 91) * 9e99999"])
def test_angle_and_log_expressions_are_checked_by_the_editor(bomb):
    angles = bundled_catalogue().get("NxtomoLoader").parameter("angles")
    assert value_problem("angles", bomb, angles) is not None
    assert value_problem("angles", "np.linspace(0, 180, 91)", angles) is None
    assert value_problem("angles", "angles.txt", angles) is None  # Savu also reads a file of angles
    log_func = bundled_catalogue().get("AstraReconCpu").parameter("log_func")
    assert value_problem("log_func", "np.nan_to_num(-np.log(sino))", log_func) is None
    assert value_problem("log_func", "np.log(sino)**9", log_func) is not None
    assert preview_entry_problem("9e99999") is not None
