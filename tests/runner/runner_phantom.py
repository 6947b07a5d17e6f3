"""A Shepp-Logan scan made for the runner's tests: exact parallel-beam projections (the analytic line
integrals of scripts/make_sample_data.py) with darks, flats, angles, a rotation axis off the middle and
a few miscalibrated detector columns that leave rings, written as an NXtomo; plus the ground truth."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from make_sample_data import ELLIPSES, sinogram

MU = 0.02  # attenuation per pixel of density 1


def ground_truth(columns: int, scale: float = 1.0) -> np.ndarray:
    """The phantom slice as the reconstruction shows it: attenuation per pixel on a columns^2 grid
    centred on the rotation axis, 4x4 supersampled, flipped up-down (image rows run downwards)."""
    half = columns / 2.0
    sub = (np.arange(columns * 4) + 0.5) / 4.0 - 0.5  # pixel-centre coordinates of the sub-samples
    x = (sub - (columns - 1) / 2.0) / half
    xx, yy = np.meshgrid(x, x)
    image = np.zeros_like(xx)
    for rho, a, b, x0, y0, phi in ELLIPSES:
        a, b, x0, y0 = a * scale, b * scale, x0 * scale, y0 * scale
        t = np.deg2rad(phi)
        u = (xx - x0) * np.cos(t) + (yy - y0) * np.sin(t)
        v = -(xx - x0) * np.sin(t) + (yy - y0) * np.cos(t)
        image[(u / a) ** 2 + (v / b) ** 2 <= 1] += rho
    image = image.reshape(columns, 4, columns, 4).mean(axis=(1, 3))
    return np.flipud(image) * MU


def write_phantom_scan(path: Path, centre: float, angles: int = 241, rows: int = 4, columns: int = 160,
                       bad_columns: tuple[int, ...] = (40, 41, 101, 120), seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    angle_values = np.linspace(0.0, 180.0, angles)
    projection_rows = sinogram(angle_values, columns, centre)  # the same slice on every row
    flat_level, dark_level = 20000.0, 100.0
    flat = flat_level * (1 + 0.05 * np.cos(np.linspace(0, 3, columns)))
    gain = np.ones(columns)
    gain[list(bad_columns)] = [0.97, 1.03, 0.96, 1.04][: len(bad_columns)]  # leave rings behind
    transmitted = dark_level + gain * flat * np.exp(-MU * projection_rows)
    projections = rng.poisson(np.repeat(transmitted[:, None, :], rows, axis=1)).astype(np.float32)
    darks = rng.normal(dark_level, 2.0, (5, rows, columns))
    flats = rng.normal(dark_level + flat, 20.0, (5, rows, columns))
    raw = np.concatenate([darks, flats, projections]).astype(np.float32)
    keys = np.concatenate([np.full(5, 2), np.full(5, 1), np.zeros(angles)]).astype(np.int32)
    with h5py.File(path, "w") as f:
        tomo = f.create_group("entry1/tomo_entry")
        tomo.attrs["NX_class"] = "NXsubentry"
        tomo.create_dataset("instrument/detector/data", data=raw, chunks=(1, rows, columns))
        tomo["instrument/detector/image_key"] = keys
        data = tomo.create_group("data")
        data.attrs.update(NX_class="NXdata", signal="data")
        data["data"] = tomo["instrument/detector/data"]
        data["rotation_angle"] = np.concatenate([np.zeros(10), angle_values])
    return path
