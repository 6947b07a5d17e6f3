"""Savu's full-field loaders: NxtomoLoader (an NXtomo HDF5/NeXus file, darks and flats picked by
image_key) and ImageLoader (a folder of TIFF projections). A loader does not read the projections: it
checks the input, reads darks, flats and angles, applies the preview, and hands out a small picklable
reader that worker processes use to read their own chunk of slices."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hebi_common.confine import ConfinedFile, confined_path, missing_sources
from hebi_common.sandbox import Roots, SandboxError
from hebi_runner.errors import DataError, PluginRefused
from hebi_runner.expressions import ExpressionError, evaluate
from hebi_runner.preview import PreviewError, preview_indices

AXES = ["rotation_angle", "detector_y", "detector_x"]
MAX_SMALL_BYTES = 1024 * 1024 * 1024


@dataclass
class NxtomoReader:
    """Reads (angles, rows, columns) blocks of the previewed projections from an HDF5 file."""
    path: str
    data_path: str
    frames: np.ndarray  # file frame of each previewed projection
    rows: np.ndarray
    columns: np.ndarray

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        picks = [self.frames, self.rows, self.columns]
        picks[axis] = picks[axis][start:stop]
        try:
            with h5py.File(self.path, "r") as f:
                return _read_box(f[self.data_path], picks)
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"NxtomoLoader: cannot read frames {int(picks[0].min())}-{int(picks[0].max())} "
                            f"of /{self.data_path} in {os.path.basename(self.path)} ({exc})") from None


@dataclass
class ImageReader:
    """Reads (angles, rows, columns) blocks from a list of single-frame TIFF files."""
    files: list[str]
    rows: np.ndarray
    columns: np.ndarray
    frame_shape: tuple[int, int]

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        import tifffile
        files = self.files[start:stop] if axis == 0 else self.files
        rows = self.rows[start:stop] if axis == 1 else self.rows
        r0, r1 = int(rows.min()), int(rows.max()) + 1
        out = []
        for name in files:
            try:
                image = tifffile.imread(name)
            except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for a bad file
                raise DataError(f"ImageLoader: cannot read {os.path.basename(name)} as a TIFF image ({exc})") from None
            if image.shape != tuple(self.frame_shape):
                raise DataError(f"ImageLoader: cannot read {os.path.basename(name)} as a TIFF image of "
                                f"{self.frame_shape[0]} x {self.frame_shape[1]} like the others "
                                f"(found shape {image.shape})")
            out.append(image[r0:r1][np.ix_(rows - r0, self.columns)])
        return np.stack(out)


def _read_box(dataset, picks: list[np.ndarray]) -> np.ndarray:
    # h5py takes one index list per read; read the bounding box with slices, then pick with numpy.
    box = tuple(slice(int(p.min()), int(p.max()) + 1) for p in picks)
    block = dataset[box]
    local = [p - int(p.min()) for p in picks]
    if all(len(p) == b.stop - b.start for p, b in zip(picks, box)):
        return block
    return block[np.ix_(*local)]


@dataclass
class LoadedData:
    """What a loader hands to the pipeline: a lazy reader and everything small, already read."""
    name: str
    reader: Any
    shape: tuple[int, int, int]
    angles_deg: np.ndarray
    rows: np.ndarray
    columns: np.ndarray
    dark: np.ndarray | None
    flat: np.ndarray | None
    input_path: Path
    data_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def axis_values(self) -> list[tuple[str, str, np.ndarray]]:
        return [("rotation_angle", "degrees", self.angles_deg), ("detector_y", "pixels", self.rows),
                ("detector_x", "pixels", self.columns)]


def _angles(value: Any, count: int, what: str) -> np.ndarray:
    try:
        angles = evaluate(value) if isinstance(value, str) else value
    except ExpressionError as exc:
        raise DataError(f"{what}: {exc}") from None
    angles = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    if angles.size != count:
        raise DataError(f"{what} gives {angles.size} angles but the data have {count} projections")
    return angles


def _preview(params: dict, shape: tuple[int, ...], plugin: str) -> list[np.ndarray]:
    try:
        return preview_indices(params.get("preview"), shape, AXES)
    except PreviewError as exc:
        raise DataError(f"{plugin}.preview: {exc}") from None


def _mean_frames(frames: np.ndarray, rows: np.ndarray, columns: np.ndarray, scale: float) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    return (frames.mean(axis=0)[np.ix_(rows, columns)] * np.float32(scale)).astype(np.float32)


def load_nxtomo(path: Path, params: dict, roots: Roots) -> LoadedData:
    plugin = "NxtomoLoader"
    try:
        return _load_nxtomo(path, params, roots, plugin)
    except SandboxError as exc:
        raise DataError(f"{plugin}: {exc.message}") from None


def _load_nxtomo(path: Path, params: dict, roots: Roots, plugin: str) -> LoadedData:
    if params.get("3d_to_4d"):
        raise PluginRefused(f"{plugin}.3d_to_4d: 4D (time-series) scans are not supported by hebi's runner")
    data_path = str(params.get("data_path") or "entry1/tomo_entry/data/data").strip("/")
    if not path.exists():
        raise DataError(f"{plugin}: the data file {path.name} does not exist")
    try:
        handle = ConfinedFile(roots, path, "the data file")
    except OSError as exc:
        raise DataError(f"{plugin}: {path.name} is not a readable HDF5/NeXus file ({exc})") from None
    with handle:
        try:
            found = handle.locate(data_path)
        except (KeyError, OSError):
            found = None
        if found is None:
            why = f": {handle.missing}" if handle.missing else ""
            raise DataError(f"{plugin}.data_path: {path.name} has no dataset at /{data_path}{why}") from None
        data_file, data_inner, data = found
        missing = missing_sources(data_file, data) if isinstance(data, h5py.Dataset) else []
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise DataError(f"{plugin}.data_path: /{data_path} in {path.name} reads its values from {missing[0]}{more}, "
                            "which is not there; hebi does not reconstruct the fill value HDF5 would give instead")
        if not isinstance(data, h5py.Dataset) or data.ndim != 3:
            raise DataError(f"{plugin}.data_path: /{data_path} in {path.name} should be a 3D dataset "
                            f"(frames, rows, columns), found {getattr(data, 'shape', 'a group')}")
        n_frames, n_rows, n_columns = data.shape
        keys = np.zeros(n_frames, dtype=int)
        key_path = params.get("image_key_path")
        key_data = handle.get(str(key_path).strip("/")) if key_path else None
        if isinstance(key_data, h5py.Dataset):
            keys = np.asarray(_small(key_data, f"{plugin}.image_key_path")).astype(int).ravel()
            if keys.size != n_frames:
                raise DataError(f"{plugin}.image_key_path: /{key_path} has {keys.size} entries but "
                                f"/{data_path} has {n_frames} frames")
        projection_frames = np.flatnonzero(keys == 0)
        if projection_frames.size == 0:
            raise DataError(f"{plugin}: {path.name} has no projections (no frame with image_key 0)")
        angles = _read_angles(handle, data_path, params, keys, projection_frames, path.name)
        picks = _preview(params, (projection_frames.size, n_rows, n_columns), plugin)
        frames = projection_frames[picks[0]]
        try:  # read the first and last projection now: a corrupt file fails here, before any work
            data[int(frames[0])]
            data[int(frames[-1])]
        except (OSError, ValueError) as exc:
            raise DataError(f"{plugin}: cannot read the projections in {path.name} ({exc})") from None
        dark = _dark_or_flat(roots, data, keys, 2, params.get("dark"), picks, path, "dark", None)
        flat = _dark_or_flat(roots, data, keys, 1, params.get("flat"), picks, path, "flat",
                             params.get("ignore_flats"))
    # Workers open the file and path the links led to: nothing is left for HDF5 to follow there.
    reader = NxtomoReader(str(data_file), data_inner.strip("/"), frames, picks[1], picks[2])
    shape = (len(frames), len(picks[1]), len(picks[2]))
    return LoadedData(name=str(params.get("name") or "tomo"), reader=reader, shape=shape,
                      angles_deg=angles[picks[0]], rows=picks[1], columns=picks[2], dark=dark, flat=flat,
                      input_path=path, data_path=data_path)


def _read_angles(handle, data_path: str, params: dict, keys: np.ndarray, projection_frames: np.ndarray,
                 name: str) -> np.ndarray:
    if params.get("angles") not in (None, ""):
        return _angles(params["angles"], projection_frames.size, "NxtomoLoader.angles")
    parent = data_path.rsplit("/", 1)[0]
    for candidate in (f"{parent}/rotation_angle", "entry1/tomo_entry/data/rotation_angle",
                      "entry1/tomo_entry/sample/rotation_angle", "entry/data/rotation_angle"):
        found = handle.get(candidate)
        if isinstance(found, h5py.Dataset):
            values = np.asarray(_small(found, "NxtomoLoader: rotation_angle"), dtype=np.float64).ravel()
            if values.size == keys.size:
                return values[projection_frames]
            if values.size == projection_frames.size:
                return values
    raise DataError(f"NxtomoLoader: {name} has no rotation angles next to /{data_path} "
                    "(rotation_angle); give them with the loader's 'angles' parameter, e.g. "
                    "np.linspace(0, 180, N)")


def _small(dataset: h5py.Dataset, what: str) -> np.ndarray:
    """A dataset read whole (angles, image keys, darks, flats): refused beyond MAX_SMALL_BYTES, so a
    crafted file cannot make the check expand a huge or highly compressed dataset."""
    size = dataset.size * dataset.dtype.itemsize
    if size > MAX_SMALL_BYTES:
        raise DataError(f"{what}: {dataset.name} holds {size // 2**20} MiB; at most {MAX_SMALL_BYTES // 2**20} MiB "
                        "are read for it")
    return dataset[()]


def _dark_or_flat(roots: Roots, data, keys: np.ndarray, key: int, setting: Any, picks: list[np.ndarray], path: Path,
                  what: str, ignore_batches: Any) -> np.ndarray | None:
    setting = list(setting) if isinstance(setting, (list, tuple)) else [None, None, 1.0]
    setting += [None, None, 1.0][len(setting):]
    other_file, other_path, scale = setting[0], setting[1], setting[2] if setting[2] is not None else 1.0
    if other_file not in (None, "", "None"):
        other = (path.parent / str(other_file)) if not os.path.isabs(str(other_file)) else Path(str(other_file))
        try:
            with ConfinedFile(roots, other, f"NxtomoLoader.{what}: the file") as f:
                found = f.get(str(other_path).strip("/"))
                if not isinstance(found, h5py.Dataset):
                    raise KeyError(f"no dataset at {other_path}")
                frames = _small(found, f"NxtomoLoader.{what}")
        except SandboxError as exc:
            raise DataError(exc.message) from None
        except (OSError, KeyError) as exc:
            raise DataError(f"NxtomoLoader.{what}: cannot read {other_path} in {other.name} ({exc})") from None
        frames = frames[None] if frames.ndim == 2 else frames
        return _mean_frames(frames, picks[1], picks[2], float(scale))
    indices = np.flatnonzero(keys == key)
    if ignore_batches and key == 1 and indices.size:
        batches = np.cumsum(np.diff(indices, prepend=indices[0] - 2) > 1)  # 1-based batch numbers
        indices = indices[~np.isin(batches, [int(b) for b in ignore_batches])]
    if indices.size == 0:
        return None
    r0, r1 = int(picks[1].min()), int(picks[1].max()) + 1
    frames = np.stack([data[int(i), r0:r1, :] for i in indices])
    return _mean_frames(frames, picks[1] - r0, picks[2], float(scale))


def _image_files(roots: Roots, folder: Path, prefix: str | None) -> list[Path]:
    """The TIFFs in ``folder`` (inside the roots) starting with ``prefix``; each one, symlinks resolved,
    inside the roots too."""
    confined_path(roots, folder, "the image folder")
    pattern = re.compile(r".*\.tiff?$", re.IGNORECASE)
    files = sorted(p for p in folder.iterdir() if p.is_file() and pattern.match(p.name)
                   and (not prefix or p.name.startswith(prefix)))
    for file in files:
        confined_path(roots, file, "the image")
    return files


def _prefixed_images(roots: Roots, folder: Path, prefix: str | None, what: str) -> list[Path]:
    """Savu's dark_prefix/flat_prefix: a path relative to the data folder whose last part is a prefix."""
    if prefix in (None, "", "None"):
        return []
    target = (folder / str(prefix))
    files = _image_files(roots, target.parent, target.name) if target.parent.is_dir() else []
    if not files:
        raise DataError(f"ImageLoader.{what}_prefix: no TIFF file starting with '{target.name}' "
                        f"in {target.parent.name}/")
    return files


def load_images(path: Path, params: dict, roots: Roots) -> LoadedData:
    try:
        return _load_images(path, params, roots, "ImageLoader")
    except SandboxError as exc:
        raise DataError(f"ImageLoader: {exc.message}") from None


def _load_images(path: Path, params: dict, roots: Roots, plugin: str) -> LoadedData:
    import tifffile
    if int(params.get("frame_dim") or 0) != 0:
        raise PluginRefused(f"{plugin}.frame_dim: only 0 (one projection per file) is supported")
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise DataError(f"{plugin}: the data folder {path.name} does not exist")
    files = _image_files(roots, folder, params.get("data_prefix"))
    if not files:
        raise DataError(f"{plugin}: no TIFF files starting with '{params.get('data_prefix') or ''}' "
                        f"in {folder.name}/")
    try:
        first = tifffile.imread(files[0])
        last = tifffile.imread(files[-1])
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for a bad file
        raise DataError(f"{plugin}: cannot read {files[0].name} as a TIFF image ({exc})") from None
    if first.ndim != 2 or last.shape != first.shape:
        raise DataError(f"{plugin}: every TIFF must be one 2D projection of the same size; "
                        f"{files[0].name} is {first.shape}, {files[-1].name} is {last.shape}")
    n_rows, n_columns = first.shape
    angles_param = params.get("angles")
    if angles_param in (None, ""):
        angles = np.linspace(0.0, 180.0, len(files))
    elif isinstance(angles_param, (int, float)) and not isinstance(angles_param, bool):
        angles = np.linspace(0.0, float(angles_param), len(files))
    else:
        angles = _angles(angles_param, len(files), f"{plugin}.angles")
    picks = _preview(params, (len(files), n_rows, n_columns), plugin)

    def mean_of(prefix: Any, what: str) -> np.ndarray | None:
        images = _prefixed_images(roots, folder, prefix, what)
        if not images:
            return None
        try:
            stack = np.stack([tifffile.imread(p) for p in images])
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{plugin}.{what}_prefix: cannot read {images[0].name} ({exc})") from None
        if stack.shape[1:] != (n_rows, n_columns):
            raise DataError(f"{plugin}.{what}_prefix: {images[0].name} is {stack.shape[1:]}, "
                            f"the projections are {(n_rows, n_columns)}")
        return _mean_frames(stack, picks[1], picks[2], 1.0)

    dark, flat = mean_of(params.get("dark_prefix"), "dark"), mean_of(params.get("flat_prefix"), "flat")
    selected = [str(files[i]) for i in picks[0]]
    reader = ImageReader(selected, picks[1], picks[2], (n_rows, n_columns))
    return LoadedData(name=str(params.get("dataset_name") or "tomo"), reader=reader,
                      shape=(len(selected), len(picks[1]), len(picks[2])), angles_deg=angles[picks[0]],
                      rows=picks[1], columns=picks[2], dark=dark, flat=flat, input_path=folder)


LOADERS = {"NxtomoLoader": load_nxtomo, "ImageLoader": load_images}
