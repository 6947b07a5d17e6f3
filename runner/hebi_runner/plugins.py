"""One thin adapter per Savu plugin: Savu's parameter names and defaults (from the bundled catalogue)
mapped onto the plain functions of :mod:`hebi_runner.algorithms` and algotom.

An adapter says which axis its Savu pattern slices (1 for SINOGRAM/VOLUME_XZ, 0 for PROJECTION), what
its output looks like, what small per-chunk context it needs (darks, angles, centres), and how to
process one block of slices. ``check`` refuses, before any work, what the runner cannot do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hebi_runner import algorithms
from hebi_runner.errors import PluginRefused
from hebi_runner.expressions import ExpressionError, evaluate
from hebi_runner.output import inside

DEFAULT_LOG_FUNC = "np.nan_to_num(-np.log(sino))"


@dataclass
class DataInfo:
    """What a plugin knows about its input when it is checked: shape, axes and metadata."""
    name: str
    shape: tuple[int, ...]
    axes: list[tuple[str, str, np.ndarray]]  # (label, units, values)
    kind: str  # "projections" | "volume" | "metadata"
    meta: dict[str, Any] = field(default_factory=dict)


class Adapter:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "map"  # "map" | "centering" | "noop" | "images"
    max_units: ClassVar[int | None] = None  # cap on slices per chunk (memory per slice is large)
    accepts: ClassVar[tuple[str, ...]] = ("projections",)

    def axis(self, params: dict) -> int:
        return 1

    def check(self, params: dict, data: DataInfo) -> None:
        if data.kind not in self.accepts:
            raise PluginRefused(f"{self.name} works on {' or '.join(self.accepts)} data, but '{data.name}' "
                                f"holds {data.kind} here")

    def output(self, params: dict, data: DataInfo) -> tuple[tuple[int, ...], list, str]:
        return data.shape, data.axes, data.kind

    def overlap(self, params: dict) -> int:
        return 0

    def context(self, params: dict, data: DataInfo, axis: int, start: int, stop: int) -> dict:
        return {}

    def process(self, block: np.ndarray, params: dict, context: dict) -> np.ndarray:
        raise NotImplementedError


def _per_slice(block: np.ndarray, axis: int, function) -> np.ndarray:
    out = np.empty(block.shape, dtype=np.float32)
    for i in range(block.shape[axis]):
        index = (slice(None),) * axis + (i,)
        out[index] = function(np.asarray(block[index], dtype=np.float32))
    return out


class DarkFlatFieldCorrection(Adapter):
    name = "DarkFlatFieldCorrection"

    def axis(self, params):
        return 0 if params.get("pattern") == "PROJECTION" else 1

    def check(self, params, data):
        super().check(params, data)
        if data.meta.get("dark") is None or data.meta.get("flat") is None:
            missing = " and ".join(w for w in ("dark", "flat") if data.meta.get(w) is None)
            raise PluginRefused(f"DarkFlatFieldCorrection: the input data have no {missing} frames (no "
                                "image_key 2/1 frames, no dark/flat files); remove the plugin or give the "
                                "loader's dark/flat parameters")

    def context(self, params, data, axis, start, stop):
        dark, flat = data.meta["dark"], data.meta["flat"]
        if axis == 1:
            dark, flat = dark[start:stop], flat[start:stop]
        return {"dark": dark, "flat": flat}

    def process(self, block, params, context):
        corrected, clipped = algorithms.dark_flat_field(block, context["dark"][None], context["flat"][None],
                                                        params.get("lower_bound"), params.get("upper_bound"))
        return corrected, {"clipped": clipped * corrected.size, "values": corrected.size}


class NoProcessPlugin(Adapter):
    name = "NoProcessPlugin"
    accepts = ("projections", "volume")

    def process(self, block, params, context):
        return np.asarray(block, dtype=np.float32)


class _RingRemoval(Adapter):
    """Ring removal on each sinogram with algotom (Vo's methods, which Savu's plugins implement)."""

    def remove(self, sinogram: np.ndarray, params: dict) -> np.ndarray:
        raise NotImplementedError

    def process(self, block, params, context):
        return _per_slice(block, 1, lambda sino: self.remove(sino, params))


class RingRemovalSorting(_RingRemoval):
    name = "RingRemovalSorting"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_stripe_based_sorting
        return remove_stripe_based_sorting(sinogram, size=int(params["size"]), dim=1)


class RingRemovalFiltering(_RingRemoval):
    name = "RingRemovalFiltering"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_stripe_based_filtering
        size = params["size"]
        size = int(size[0] if isinstance(size, (list, tuple)) else size)
        return remove_stripe_based_filtering(sinogram, sigma=int(params["sigma"]), size=size, dim=1)


class RemoveAllRings(_RingRemoval):
    name = "RemoveAllRings"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_all_stripe
        return remove_all_stripe(sinogram, snr=float(params["snr"]), la_size=int(params["la_size"]),
                                 sm_size=int(params["sm_size"]))


class RemoveLargeRings(_RingRemoval):
    name = "RemoveLargeRings"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_large_stripe
        return remove_large_stripe(sinogram, snr=float(params["snr"]), size=int(params["size"]))


class RemoveUnresponsiveAndFluctuatingRings(_RingRemoval):
    name = "RemoveUnresponsiveAndFluctuatingRings"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_dead_stripe
        return remove_dead_stripe(sinogram, snr=float(params["snr"]), size=int(params["size"]),
                                  residual=bool(params["residual"]))


class RingRemovalWaveletfft(_RingRemoval):
    name = "RingRemovalWaveletfft"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_stripe_based_wavelet_fft
        return remove_stripe_based_wavelet_fft(sinogram, level=int(params["level"]), size=float(params["sigma"]),
                                               wavelet_name=f"db{int(params['nvalue'])}")


class RavenFilter(_RingRemoval):
    name = "RavenFilter"

    def remove(self, sinogram, params):
        from algotom.prep.removal import remove_stripe_based_fft
        return remove_stripe_based_fft(sinogram, u=int(params["uvalue"]), n=int(params["nvalue"]),
                                       v=int(params["vvalue"]))


class PaganinFilter(Adapter):
    name = "PaganinFilter"

    def axis(self, params):
        return 0

    def process(self, block, params, context):
        return _per_slice(block, 0, lambda projection: algorithms.paganin_filter(
            projection, energy_kev=float(params["Energy"]), distance_m=float(params["Distance"]),
            pixel_um=float(params["Resolution"]), ratio=float(params["Ratio"]),
            pad_rows=int(params["Padtopbottom"]), pad_columns=int(params["Padleftright"]),
            pad_mode=str(params["Padmethod"]), increment=float(params["increment"])))


class MedianFilter(Adapter):
    name = "MedianFilter"
    accepts = ("projections", "volume")

    def check(self, params, data):
        super().check(params, data)
        if str(params.get("kernel_dimension")) not in ("2D", "3D"):
            raise PluginRefused(f"MedianFilter.kernel_dimension: expected '2D' or '3D', got "
                                f"{params.get('kernel_dimension')!r}")
        if int(params["kernel_size"]) < 1:
            raise PluginRefused("MedianFilter.kernel_size: expected a positive odd number")

    def overlap(self, params):
        return int(params["kernel_size"]) // 2 if params.get("kernel_dimension") == "3D" else 0

    def process(self, block, params, context):
        dims = 3 if params.get("kernel_dimension") == "3D" else 2
        return algorithms.median_filter(np.asarray(block, dtype=np.float32), int(params["kernel_size"]), dims,
                                        axis=1).astype(np.float32)


class VoCentering(Adapter):
    """Computes the centre per previewed sinogram; the pipeline broadcasts it as the data's
    ``centre_of_rotation`` metadata, which overrides the reconstruction's parameter (as in Savu)."""
    name = "VoCentering"
    kind = "centering"

    def check(self, params, data):
        super().check(params, data)
        area = params.get("search_area")
        if not (isinstance(area, (list, tuple)) and len(area) == 2):
            raise PluginRefused(f"VoCentering.search_area: expected [min, max], got {area!r}")
        if params.get("broadcast_method") not in ("median", "mean", "nearest", "linear_fit"):
            raise PluginRefused("VoCentering.broadcast_method: expected median, mean, nearest or linear_fit")

    def context(self, params, data, axis, start, stop):
        columns = data.axes[2][2]
        return {"column0": float(columns[0]), "column_step": float(columns[1] - columns[0]) if len(columns) > 1
                else 1.0}

    def process(self, block, params, context):
        sinogram = np.asarray(block, dtype=np.float32).mean(axis=1)
        width = sinogram.shape[1]
        c0, step = context["column0"], context["column_step"]
        start_pixel = params.get("start_pixel")
        middle = (width - 1) / 2.0 if start_pixel is None else (float(start_pixel) - c0) / step
        low, high = (float(v) for v in params["search_area"])
        local = algorithms.find_centre_vo(sinogram, middle + low, middle + high, step=float(params["step"]),
                                          radius=float(params["search_radius"]), ratio=float(params["ratio"]),
                                          row_drop=int(params["row_drop"]))
        return np.array([c0 + local * step], dtype=np.float32)


class _Reconstruction(Adapter):
    """Savu's base reconstruction: log (log_func), centre from metadata or parameter, ratio mask,
    force_zero, then one 2D reconstruction per sinogram."""
    max_units = 4

    def check(self, params, data):
        super().check(params, data)
        for key, allowed in (("init_vol", (None,)), ("skip_projections", (None, "", [])),
                             ("preview", (None, [], {}))):
            if key in params and params[key] not in allowed:
                raise PluginRefused(f"{self.name}.{key}: only {allowed[0]!r} is supported by hebi's runner, "
                                    f"got {params[key]!r}")
        if params.get("vol_shape", "fixed") != "fixed":
            raise PluginRefused(f"{self.name}.vol_shape: only 'fixed' (detector width) is supported, got "
                                f"{params.get('vol_shape')!r}")
        log_func = str(params.get("log_func") or DEFAULT_LOG_FUNC)
        try:
            evaluate(log_func, {"sino": np.ones((2, 2), dtype=np.float32)})
        except (ExpressionError, TypeError, ValueError) as exc:
            raise PluginRefused(f"{self.name}.log_func: {exc}") from None
        self.method(params)  # refuses unsupported algorithms/filters

    def method(self, params: dict):
        raise NotImplementedError

    def output(self, params, data):
        n = data.shape[2]
        voxels = np.arange(n)
        return ((n, data.shape[1], n),
                [("voxel_x", "voxels", voxels), ("voxel_y", "voxels", data.axes[1][2]), ("voxel_z", "voxels", voxels)],
                "volume")

    def context(self, params, data, axis, start, stop):
        columns = data.axes[2][2]
        rows = data.axes[1][2][start:stop]
        centre = data.meta.get("centre_of_rotation")
        if centre is not None:
            centres = np.asarray(centre, dtype=np.float64)[start:stop]
        else:
            value = params.get("centre_of_rotation", 0.0)
            if isinstance(value, dict):
                keys = sorted(int(k) for k in value)
                centres = np.interp(rows, keys, [float(value[k] if k in value else value[str(k)]) for k in keys])
            else:
                centres = np.full(len(rows), float(value))
        step = float(columns[1] - columns[0]) if len(columns) > 1 else 1.0
        local = (centres - float(columns[0])) / step
        return {"centres": local, "angles": np.deg2rad(np.asarray(data.axes[0][2], dtype=np.float64))}

    def process(self, block, params, context):
        function = self.method(params)
        n_angles, n_rows, width = block.shape
        out = np.empty((width, n_rows, width), dtype=np.float32)
        log_func = str(params.get("log_func") or DEFAULT_LOG_FUNC)
        ratio = params.get("ratio", 0.95)
        ratio = float(ratio[0] if isinstance(ratio, (list, tuple)) else ratio) if ratio is not None else None
        force_zero = params.get("force_zero") or [None, None]
        for i in range(n_rows):
            sino = np.asarray(block[:, i, :], dtype=np.float32)
            if params.get("log", True):
                sino = (algorithms.minus_log(sino) if log_func.replace(" ", "") == DEFAULT_LOG_FUNC.replace(" ", "")
                        else np.asarray(evaluate(log_func, {"sino": sino}), dtype=np.float32))
            image = function(sino, float(context["centres"][i]), context["angles"])
            image = algorithms.circle_mask(image, ratio)
            low, high = (None if v in (None, "None") else float(v) for v in list(force_zero)[:2])
            if low is not None and high is not None:
                image[(image < low) | (image > high)] = 0.0
            out[:, i, :] = image
        return out


def _window(plugin: str, parameter: str, value: Any) -> Any:
    key = None if value is None else str(value).lower()
    if key not in algorithms.ALGOTOM_WINDOWS:
        supported = ", ".join(sorted(k for k in algorithms.ALGOTOM_WINDOWS if k))
        raise PluginRefused(f"{plugin}.{parameter}: filter {value!r} is not available in hebi's runner "
                            f"(supported: {supported})")
    return algorithms.ALGOTOM_WINDOWS[key]


class AstraReconCpu(_Reconstruction):
    name = "AstraReconCpu"

    def method(self, params):
        algorithm = str(params.get("algorithm", "FBP")).upper()
        if algorithm not in ("FBP", "SIRT", "SART", "ART", "CGLS", "BP"):
            raise PluginRefused(f"AstraReconCpu.algorithm: {algorithm!r} is not an astra CPU algorithm")
        if algorithms.astra_available():
            iterations, filter_name = int(params.get("n_iterations", 1)), str(params.get("FBP_filter", "ram-lak"))
            projector = str(params.get("projector", "line"))
            return lambda sino, centre, angles: algorithms.astra_cpu(sino, centre, angles, algorithm, iterations,
                                                                     filter_name, projector)
        if algorithm != "FBP":
            raise PluginRefused(f"AstraReconCpu.algorithm {algorithm} needs astra-toolbox, which is not "
                                "installed (pip install 'hebi-runner[astra]', GPL-3.0); FBP runs without it")
        window = _window(self.name, "FBP_filter", params.get("FBP_filter", "ram-lak"))
        return lambda sino, centre, angles: algorithms.fbp(sino, centre, angles, window)


class TomopyRecon(_Reconstruction):
    name = "TomopyRecon"

    def method(self, params):
        algorithm = str(params.get("algorithm", "gridrec"))
        window = _window(self.name, "filter_name", params.get("filter_name", "ramlak"))
        if algorithm == "gridrec":  # gridrec is a Fourier-space method: algotom's direct Fourier inversion
            return lambda sino, centre, angles: algorithms.dfi(sino, centre, angles, window)
        if algorithm == "fbp":
            return lambda sino, centre, angles: algorithms.fbp(sino, centre, angles, window)
        raise PluginRefused(f"TomopyRecon.algorithm {algorithm!r} needs tomopy, which is not installable from "
                            "PyPI; hebi's runner maps only 'gridrec' (to algotom's DFI) and 'fbp'")


class ScikitimageFilterBackProjection(_Reconstruction):
    name = "ScikitimageFilterBackProjection"

    def method(self, params):
        window = _window(self.name, "filter", params.get("filter", "ramp"))
        return lambda sino, centre, angles: algorithms.fbp(sino, centre, angles, window)


class DownsampleFilter(Adapter):
    """Bins each projection by ``bin_size`` (mean/median/min/max), with Savu's flips."""
    name = "DownsampleFilter"
    accepts = ("projections", "volume")

    def axis(self, params):
        return 0 if params.get("pattern", "PROJECTION") == "PROJECTION" else 1

    def check(self, params, data):
        super().check(params, data)
        if int(params.get("num_bit", 32)) != 32:
            raise PluginRefused("DownsampleFilter.num_bit: only 32 (float output) is supported by hebi's runner")
        if float(params.get("rotate_angle") or 0) != 0:
            raise PluginRefused("DownsampleFilter.rotate_angle: only 0 is supported by hebi's runner")
        if params.get("mode") not in ("mean", "median", "min", "max"):
            raise PluginRefused("DownsampleFilter.mode: expected mean, median, min or max")
        if int(params["bin_size"]) < 1:
            raise PluginRefused("DownsampleFilter.bin_size: expected a positive number")

    def _core(self, params):
        return (1, 2) if self.axis(params) == 0 else (0, 2)

    def output(self, params, data):
        size = int(params["bin_size"])
        shape, axes = list(data.shape), list(data.axes)
        for d in self._core(params):
            shape[d] = data.shape[d] // size
            label, units, values = data.axes[d]
            axes[d] = (label, units, np.asarray(values)[: shape[d] * size: size])
        return tuple(shape), axes, data.kind

    def process(self, block, params, context):
        size, (a, b) = int(params["bin_size"]), self._core(params)
        block = np.asarray(block, dtype=np.float32)
        block = np.moveaxis(block, (a, b), (-2, -1))
        h, w = (block.shape[-2] // size) * size, (block.shape[-1] // size) * size
        tiles = block[..., :h, :w].reshape(block.shape[:-2] + (h // size, size, w // size, size))
        reduce = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}[params["mode"]]
        binned = reduce(tiles, axis=(-3, -1))
        if params.get("flip_updown"):
            binned = binned[..., ::-1, :]
        if params.get("flip_leftright"):
            binned = binned[..., :, ::-1]
        return np.ascontiguousarray(np.moveaxis(binned, (-2, -1), (a, b)), dtype=np.float32)


class Hdf5Saver(Adapter):
    """Every dataset is written to HDF5 anyway (as Savu's auto-added savers do): nothing more to do."""
    name = "Hdf5Saver"
    kind = "noop"
    accepts = ("projections", "volume", "metadata")


class TiffSaver(Adapter):
    """One float32 TIFF per slice of the pattern, in ``TiffSaver_<n>/``."""
    name = "TiffSaver"
    kind = "images"
    accepts = ("projections", "volume")

    def axis(self, params):
        return 0 if params.get("pattern") == "PROJECTION" else 1

    def process(self, block, params, context):
        import tifffile
        axis, folder, first = context["axis"], context["folder"], context["first"]
        for i in range(block.shape[axis]):
            index = (slice(None),) * axis + (i,)
            name = f"{context['prefix']}{context['suffix']}_{first + i:05d}.tiff"
            tifffile.imwrite(inside(Path(folder), name), np.ascontiguousarray(block[index], dtype=np.float32))
        return None


ADAPTERS: dict[str, Adapter] = {cls.name: cls() for cls in (
    DarkFlatFieldCorrection, NoProcessPlugin, RingRemovalSorting, RingRemovalFiltering, RemoveAllRings,
    RemoveLargeRings, RemoveUnresponsiveAndFluctuatingRings, RingRemovalWaveletfft, RavenFilter, PaganinFilter,
    MedianFilter, VoCentering, AstraReconCpu, TomopyRecon, ScikitimageFilterBackProjection, DownsampleFilter,
    Hdf5Saver, TiffSaver)}
