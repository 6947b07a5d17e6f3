"""Savu's output layout (notes/savu.md §1.2): the output folder, per-plugin HDF5 files, the
``<stem>_processed.nxs`` master file linking them, and ``run_log/user.log`` with Savu's progress lines."""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hebi_runner.errors import RunnerError

CHUNK_CACHE_BYTES = 64 * 1024 * 1024


def data_stem(path: Path) -> str:
    """Savu names outputs after the data file: its name up to the first dot (a folder: its name)."""
    return path.name.split(".")[0] or "data"


def file_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be one file name inside a folder (None when it can, or when it is unset)."""
    if name in (None, ""):
        return None
    text = str(name)
    if "/" in text or "\\" in text or "\x00" in text or text in (".", "..") or len(text) > 200:
        return f"'{text}' must be a plain file name, not a path"
    return None


def inside(folder: Path, name: str) -> Path:
    """``folder/name``, refused unless it stays inside ``folder`` (symlinks resolved): every output path
    the runner writes is built here, whatever the process list says."""
    problem = file_name_problem(name) or (None if name else "an empty name")
    if problem:
        raise RunnerError(f"refusing to write {problem}")
    path = folder / name
    real, base = os.path.realpath(path), os.path.realpath(folder)
    if os.path.dirname(real) != base:
        raise RunnerError(f"refusing to write {name}: it would lie outside the run folder {folder.name}")
    return path


def output_folder(out_root: Path, data_path: Path, folder: str | None) -> Path:
    if folder:
        problem = file_name_problem(folder)
        if problem:
            raise ValueError(f"output folder name {problem}")
        return inside(out_root, folder)
    return inside(out_root, f"{time.strftime('%Y%m%d%H%M%S')}_{data_stem(data_path)}")


class UserLog:
    """``run_log/user.log`` written as Savu writes it, one flushed line per message."""

    def __init__(self, path: Path, echo=None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.echo = echo
        self._file = open(path, "a", encoding="utf-8")

    def message(self, text: str) -> None:
        now = _dt.datetime.now()
        line = f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d} - {text}"
        self._file.write(line + "\n")
        self._file.flush()
        if self.echo:
            self.echo(line)

    def close(self) -> None:
        self._file.close()


def group_name(number: int, plugin: str, dataset: str) -> str:
    return f"{number}-{plugin}-{dataset}"


def h5_name(dataset: str, number: int, module: str) -> str:
    return f"{dataset}_p{number}_{module.rsplit('.', 1)[-1]}.h5"


def storage_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """HDF5 chunks that serve both sinogram and projection reads: 16 frames x 4 rows x a whole row."""
    if len(shape) < 3:
        return tuple(max(1, min(n, 4096)) for n in shape)
    return (min(shape[0], 16), min(shape[1], 4), shape[2]) + (1,) * (len(shape) - 3)


@dataclass
class WrittenDataset:
    """One plugin output, as the master file needs to describe it."""
    name: str
    number: int
    plugin: str
    file: Path
    group: str
    shape: tuple[int, ...]
    axes: list[tuple[str, str, Any]]
    kind: str
    meta: dict[str, Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def tuning_axis(parameter: str, values: list[Any]) -> tuple[str, str, np.ndarray, str]:
    """The axis of a tuned parameter's dimension: its values when they are all numbers, else their
    index (NeXus viewers such as h5web plot numeric axes only), and a label that names every value
    ("algorithm: 0 = FBP, 1 = SIRT"), so the tuned values are readable either way."""
    if all(_is_number(v) for v in values):
        shown = ", ".join(f"{v:g}" for v in values)
        return f"{parameter}_params", "values", np.asarray(values, dtype=np.float64), f"{parameter}: {shown}"
    shown = ", ".join(f"{i} = {v}" for i, v in enumerate(values))
    return f"{parameter}_params", "index", np.arange(len(values)), f"{parameter}: {shown}"


def _write_axes(group: h5py.Group, shape: tuple[int, ...], axes: list[tuple], kind: str) -> None:
    """NXdata that NeXus viewers open: every axis it names is a numeric dataset here (with units and
    a long_name), ``default_slice`` shows the middle reconstructed slice and each tuning's first value."""
    group.attrs.update(NX_class="NXdata", signal="data", axes=[axis[0] for axis in axes])
    for index, (label, units, values, *long_name) in enumerate(axes):
        group.attrs[f"{label}_indices"] = index
        axis = group.create_dataset(label, data=np.asarray(values, dtype=np.float64))
        axis.attrs["units"] = units
        if long_name:
            axis.attrs["long_name"] = long_name[0]
            group.create_dataset(f"{label}_labels", data=np.bytes_(long_name[0].encode()))  # readable in a listing
    tuned = [axis[3] for axis in axes if len(axis) > 3]
    if tuned:  # NeXus viewers show an NXdata's title above its plot: the tuned values stay in sight
        title = f"{group.name.rsplit('/', 1)[-1]}, tuned: {'; '.join(tuned)}"
        group.create_dataset("title", data=np.bytes_(title.encode()))
    tuning = ["0"] * (len(shape) - 3)
    if kind == "volume" and len(shape) >= 3:
        # NeXus default_slice ('.' = a plotted dimension): viewers such as h5web then open the volume
        # on its middle reconstructed slice (the XZ plane) rather than on an edge plane of zeros.
        group.attrs["default_slice"] = [".", str(shape[1] // 2), "."] + tuning
    elif tuning:
        group.attrs["default_slice"] = ["0", ".", "."] + tuning  # the first projection, first tuned value


def create_output(path: Path, number: int, plugin: str, dataset: str, shape: tuple[int, ...],
                  axes: list[tuple], kind: str = "") -> tuple[h5py.File, h5py.Dataset]:
    f = h5py.File(path, "w", rdcc_nbytes=CHUNK_CACHE_BYTES)
    group = f.create_group(group_name(number, plugin, dataset))
    _write_axes(group, shape, axes, kind)
    data = group.create_dataset("data", shape=shape, dtype=np.float32, chunks=storage_chunks(shape))
    return f, data


def _describe(group: h5py.Group, written: WrittenDataset, out_dir: Path) -> None:
    _write_axes(group, written.shape, written.axes, written.kind)
    group["data"] = h5py.ExternalLink(os.path.relpath(written.file, out_dir), f"/{written.group}/data")
    patterns = group.create_group("patterns")
    if written.kind == "projections":
        for name, core, slices in (("PROJECTION", [1, 2], [0]), ("SINOGRAM", [0, 2], [1])):
            p = patterns.create_group(name)
            p["core_dims"], p["slice_dims"] = core, slices
    elif written.kind == "volume":
        for name, core, slices in (("VOLUME_XZ", [0, 2], [1]),):
            p = patterns.create_group(name)
            p["core_dims"], p["slice_dims"] = core, slices
    if written.meta:
        meta = group.create_group("meta_data")
        for key, value in written.meta.items():
            meta.create_group(key).create_dataset(key, data=np.asarray(value))


def write_master(out_dir: Path, stem: str, finals: list[WrittenDataset], intermediates: list[WrittenDataset],
                 inputs: list[tuple[str, Path, str | None]], process_list: Path | None) -> Path:
    """``<stem>_processed.nxs``: the process list as run, links to the input and every output."""
    target = inside(out_dir, f"{stem}_processed.nxs")
    temp = inside(out_dir, f".{target.name}.tmp")
    with h5py.File(temp, "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        if process_list is not None:
            with h5py.File(process_list, "r") as pl:
                for name in ("plugin", "framework_citations", "savu_notes", "iterate_plugin_groups"):
                    if f"entry/{name}" in pl:
                        pl.copy(pl[f"entry/{name}"], entry, name=name)
        for name, path, data_path in inputs:
            group = entry.require_group("input_data").create_group(name)
            group.attrs["NX_class"] = "NXdata"
            group.attrs["signal"] = "data"
            group["file_path"] = str(path)
            if data_path:
                group["data"] = h5py.ExternalLink(str(path.resolve()), f"/{data_path}")
        for written in finals:
            _describe(entry.create_group(f"final_result_{written.name}"), written, out_dir)
        if finals:
            entry.attrs["default"] = f"final_result_{finals[-1].name}"
        for written in intermediates:
            _describe(entry.require_group("intermediate").create_group(written.group), written, out_dir)
    os.replace(temp, target)
    return target
