"""The numerics, one plain function per algorithm (NumPy in, NumPy out, no hidden state), in the style
of algotom. Where the field has a library function (algotom's ring removal, centring and
reconstructions; scipy's median filter and FFT; astra-toolbox's CPU algorithms) these functions only
translate units and conventions; the two written here follow Savu's own formulas (flat-field with its
zero handling, and Savu's Paganin filter, which no PyPI library reproduces).

Conventions: projection data are (angles, rows, columns); a sinogram is (angles, columns); angles in
radians; centres are absolute column indices.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft
import scipy.ndimage


def dark_flat_field(data: np.ndarray, dark: np.ndarray, flat: np.ndarray, lower_bound: float | None = None,
                    upper_bound: float | None = None) -> tuple[np.ndarray, float]:
    """Savu's DarkFlatFieldCorrection: (data - dark) / (flat - dark), where a zero denominator becomes
    1, NaN/inf become numbers, then optional clipping. ``dark``/``flat`` broadcast against ``data``.
    Returns the corrected data and the fraction of values clipped by the bounds."""
    denominator = np.asarray(flat, dtype=np.float32) - dark
    denominator[denominator == 0] = 1.0
    corrected = np.nan_to_num((np.asarray(data, dtype=np.float32) - dark) / denominator)
    clipped = 0
    if lower_bound is not None:
        clipped += np.count_nonzero(corrected < lower_bound)
    if upper_bound is not None:
        clipped += np.count_nonzero(corrected > upper_bound)
    if lower_bound is not None or upper_bound is not None:
        np.clip(corrected, lower_bound, upper_bound, out=corrected)
    return corrected.astype(np.float32, copy=False), clipped / max(corrected.size, 1)


def paganin_kernel(height: int, width: int, energy_kev: float, distance_m: float, pixel_um: float,
                   ratio: float) -> np.ndarray:
    """Savu's Paganin filter in Fourier space (DiamondLightSource/Savu plugins/filters/paganin_filter.py):
    (1 + ratio * pi * lambda * z * |k|^2) * (1 + 1j), centred at ceil(n/2) - 1 as Savu does."""
    wavelength = 1240.0 / (energy_kev * 1000.0) * 1e-9
    resolution = pixel_um * 1e-6
    kx = (np.arange(width) - (math.ceil(width / 2.0) - 1.0)) / (width * resolution)
    ky = (np.arange(height) - (math.ceil(height / 2.0) - 1.0)) / (height * resolution)
    pd = (kx[None, :] ** 2 + ky[:, None] ** 2) * wavelength * distance_m * math.pi
    factor = 1.0 + ratio * pd
    return (factor + factor * 1j).astype(np.complex64)


def paganin_filter(projection: np.ndarray, energy_kev: float = 53.0, distance_m: float = 1.0,
                   pixel_um: float = 1.28, ratio: float = 250.0, pad_rows: int = 100, pad_columns: int = 100,
                   pad_mode: str = "edge", increment: float = 0.0) -> np.ndarray:
    """Savu's PaganinFilter on one flat-field-corrected projection: returns -0.5 * ratio * log|...|,
    i.e. already log data (so reconstruct it with ``log`` off)."""
    data = np.nan_to_num(np.asarray(projection, dtype=np.float32))
    data[data == 0] = 1.0
    padded = np.pad(data, ((pad_rows, pad_rows), (pad_columns, pad_columns)), mode=pad_mode)
    kernel = paganin_kernel(padded.shape[0], padded.shape[1], energy_kev, distance_m, pixel_um, ratio)
    spectrum = scipy.fft.fftshift(scipy.fft.fft2(padded)) / kernel
    filtered = np.abs(scipy.fft.ifft2(scipy.fft.ifftshift(spectrum)))
    result = np.abs(-0.5 * ratio * np.log(filtered + increment))
    rows = slice(pad_rows, padded.shape[0] - pad_rows)
    columns = slice(pad_columns, padded.shape[1] - pad_columns)
    return np.nan_to_num(result[rows, columns]).astype(np.float32)


def median_filter(data: np.ndarray, kernel_size: int = 3, dimensions: int = 3, axis: int = 1) -> np.ndarray:
    """scipy's median filter, in 3D, or in 2D on each slice taken along ``axis``."""
    if dimensions == 3:
        return scipy.ndimage.median_filter(data, size=kernel_size, mode="reflect")
    size = [kernel_size] * data.ndim
    size[axis] = 1
    return scipy.ndimage.median_filter(data, size=size, mode="reflect")


def minus_log(sinogram: np.ndarray) -> np.ndarray:
    """Savu's default ``log_func``: nan_to_num(-log(sino)), with values <= 0 clipped first so that a
    dead pixel does not become +inf -> huge (engine notes, gotcha 6)."""
    floor = np.float32(1e-6)
    return np.nan_to_num(-np.log(np.maximum(sinogram, floor))).astype(np.float32)


def find_centre_vo(sinogram: np.ndarray, start: float, stop: float, step: float = 0.5, radius: float = 6,
                   ratio: float = 0.5, row_drop: int = 20) -> float:
    """Vo's centre of rotation (algotom ``find_center_vo``, the method Savu's VoCentering implements) on
    one 180-degree sinogram, searching columns ``start``..``stop``."""
    from algotom.prep.calculation import find_center_vo
    sinogram = np.nan_to_num(np.asarray(sinogram, dtype=np.float32))
    width = sinogram.shape[1]
    start = float(np.clip(start, 1, width - 2))
    stop = float(np.clip(stop, start + 1, width - 2))
    return float(find_center_vo(sinogram, start=start, stop=stop, step=step, radius=radius, ratio=ratio,
                                dsp=False, ncore=1, ver_drop=row_drop))


# Savu's filter names (astra / tomopy / scikit-image) -> algotom's smoothing window on the ramp filter.
ALGOTOM_WINDOWS = {
    None: None, "none": None, "ram-lak": None, "ramlak": None, "ramp": None,
    "hann": "hann", "hamming": "hamming", "parzen": "parzen", "blackman": "blackman",
    "nuttall": "nuttall", "triangular": "triang", "bartlett": "bartlett",
}


def _one_thread_numba() -> None:
    # algotom's CPU back-projector races with more than one numba thread (engine notes, gotcha 1):
    # parallelism comes from worker processes instead.
    import numba
    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def circle_mask(image: np.ndarray, ratio: float | None) -> np.ndarray:
    """Savu's ``ratio``: zero outside a disc of diameter ratio * the image width."""
    if ratio is None:
        return image
    n = image.shape[-1]
    y, x = np.ogrid[:image.shape[-2], :n]
    radius = ratio * n / 2.0
    outside = (x - (n - 1) / 2.0) ** 2 + (y - (image.shape[-2] - 1) / 2.0) ** 2 > radius ** 2
    image[..., outside] = 0.0
    return image


def fbp(sinogram: np.ndarray, centre: float, angles: np.ndarray, window: str | None = None) -> np.ndarray:
    """Filtered back-projection of a -log sinogram with algotom (CPU, one numba thread)."""
    from algotom.rec.reconstruction import fbp_reconstruction
    _one_thread_numba()
    return fbp_reconstruction(sinogram, centre, angles=angles, ratio=1.0, filter_name=window, apply_log=False,
                              gpu=False, ncore=1).astype(np.float32)


def dfi(sinogram: np.ndarray, centre: float, angles: np.ndarray, window: str | None = None) -> np.ndarray:
    """Direct Fourier inversion of a -log sinogram with algotom (the Fourier method, as tomopy's gridrec)."""
    from algotom.rec.reconstruction import dfi_reconstruction
    return dfi_reconstruction(sinogram, centre, angles=angles, ratio=1.0, filter_name=window, apply_log=False,
                              ncore=1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def astra_available() -> bool:
    try:
        import astra  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return False
    return True


def astra_cpu(sinogram: np.ndarray, centre: float, angles: np.ndarray, algorithm: str = "FBP",
              iterations: int = 1, filter_name: str = "ram-lak", projector: str = "line") -> np.ndarray:
    """astra-toolbox's CPU algorithms (FBP, SIRT, SART, ART, CGLS, BP) on a -log sinogram. astra's CPU
    FBP only accepts a centred parallel geometry, so the sinogram is edge-padded until the rotation
    axis sits in its middle, as Savu's base_recon does, and the image is cropped back."""
    import astra
    width = sinogram.shape[1]
    shift = 2.0 * centre - (width - 1)  # > 0: pad on the right
    pad = int(math.ceil(abs(shift)))
    pad += pad % 2  # an even pad keeps the crop back to ``width`` on whole pixels
    if pad:
        padding = ((0, 0), (0, pad)) if shift > 0 else ((0, 0), (pad, 0))
        sinogram = np.pad(sinogram, padding, mode="edge")
        frac = pad - abs(shift)  # sub-pixel remainder, moved with a linear shift
        if frac:
            sinogram = scipy.ndimage.shift(sinogram, (0, frac / 2.0 if shift > 0 else -frac / 2.0), order=1,
                                           mode="nearest")
    n = sinogram.shape[1]
    volume_geometry = astra.create_vol_geom(n, n)
    projection_geometry = astra.create_proj_geom("parallel", 1.0, n, np.asarray(angles, dtype=np.float64))
    projector_id = astra.create_projector(projector, projection_geometry, volume_geometry)
    sino_id = astra.data2d.create("-sino", projection_geometry, sinogram.astype(np.float32))
    rec_id = astra.data2d.create("-vol", volume_geometry, 0.0)
    config = astra.astra_dict(algorithm)
    config.update(ProjectorId=projector_id, ProjectionDataId=sino_id, ReconstructionDataId=rec_id)
    if algorithm == "FBP":
        config["FilterType"] = filter_name
    algorithm_id = astra.algorithm.create(config)
    try:
        astra.algorithm.run(algorithm_id, iterations if algorithm not in ("FBP", "BP") else 1)
        image = astra.data2d.get(rec_id)
    finally:
        astra.algorithm.delete(algorithm_id)
        astra.data2d.delete([sino_id, rec_id])
        astra.projector.delete(projector_id)
    if pad:  # crop the padded field of view back around the rotation axis
        offset = (n - width) // 2
        image = image[offset:offset + width, offset:offset + width]
    return image.astype(np.float32)
