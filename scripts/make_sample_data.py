"""Writes a small NeXus tomography scan of hebi's own making: a 3D Shepp-Logan-like phantom seen
in parallel beam, with darks, flats, rotation angles and an off-centre rotation axis, laid out as an
NXtomo under /entry1/tomo_entry (the paths Savu's NxtomoLoader reads by default).

Projections are the exact line integrals of ellipses (no reconstruction library needed to make them).
Also writes a Savu process list that reconstructs it (``--process-list``), so a newcomer has a first job.
    python scripts/make_sample_data.py OUT.nxs [--angles 181 --rows 24 --columns 160] [--process-list LIST.nxs]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import h5py
import numpy as np

# Modified Shepp-Logan: (density, semi-axis a, semi-axis b, centre x, centre y, angle in degrees),
# in units of the half-width of the field of view.
ELLIPSES = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0),
)


def sinogram(angles_deg: np.ndarray, columns: int, centre: float, scale: float = 1.0) -> np.ndarray:
    """Parallel-beam line integrals of the phantom (scaled by ``scale``), axis at column ``centre``."""
    half = columns / 2.0
    s = (np.arange(columns) - centre) / half  # detector coordinate in phantom units
    theta = np.deg2rad(angles_deg)[:, None]
    out = np.zeros((len(angles_deg), columns))
    for rho, a, b, x0, y0, phi in ELLIPSES:
        a, b, x0, y0 = a * scale, b * scale, x0 * scale, y0 * scale
        alpha = theta - np.deg2rad(phi)
        a2 = (a * np.cos(alpha)) ** 2 + (b * np.sin(alpha)) ** 2
        shifted = s[None, :] - (x0 * np.cos(theta) + y0 * np.sin(theta))
        inside = np.clip(a2 - shifted**2, 0, None)
        out += 2 * rho * a * b * np.sqrt(inside) / a2
    return out * half  # in pixels


def write_nxtomo(path: str | os.PathLike[str], angles: int = 181, rows: int = 24, columns: int = 160,
                 centre_offset: float = 3.5, darks: int = 5, flats: int = 5, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    angle_values = np.linspace(0.0, 180.0, angles)
    centre = (columns - 1) / 2.0 + centre_offset
    # Each detector row sees a slightly smaller section of the phantom, as through an ellipsoid.
    z = np.linspace(-0.8, 0.8, rows)
    scales = np.sqrt(1 - 0.5 * z**2)
    projections = np.stack([sinogram(angle_values, columns, centre, float(k)) for k in scales], axis=1)
    flat_level, dark_level, mu = 20000.0, 100.0, 0.02
    flat_field = flat_level * (1 + 0.05 * np.cos(np.linspace(0, 3, columns)))[None, :] * np.ones((rows, 1))
    transmitted = dark_level + flat_field[None] * np.exp(-mu * projections)
    raw = np.concatenate([
        rng.normal(dark_level, 3, (darks, rows, columns)),
        rng.normal(dark_level + flat_field, 30, (flats, rows, columns)),
        rng.poisson(transmitted).astype(float),
    ])
    image_key = np.concatenate([np.full(darks, 2), np.full(flats, 1), np.zeros(angles)]).astype(np.int32)
    all_angles = np.concatenate([np.zeros(darks + flats), angle_values])

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with h5py.File(temp, "w") as f:
        f.attrs["default"] = "entry1"
        entry = f.create_group("entry1")
        entry.attrs.update(NX_class="NXentry", default="tomo_entry")
        tomo = entry.create_group("tomo_entry")
        tomo.attrs.update(NX_class="NXsubentry", default="data")
        tomo["definition"] = "NXtomo"
        tomo["title"] = "hebi sample: Shepp-Logan phantom, off-centre axis"
        detector = tomo.create_group("instrument/detector")
        tomo["instrument"].attrs["NX_class"] = "NXinstrument"
        detector.attrs["NX_class"] = "NXdetector"
        data = detector.create_dataset("data", data=np.clip(raw, 0, 65535).astype(np.uint16),
                                       chunks=(1, rows, columns))
        detector["image_key"] = image_key
        detector["x_pixel_size"] = 1.0e-6
        sample = tomo.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        sample["rotation_angle"] = all_angles
        sample["rotation_angle"].attrs["units"] = "degrees"
        nxdata = tomo.create_group("data")
        nxdata.attrs.update(NX_class="NXdata", signal="data", axes=["rotation_angle", ".", "."])
        nxdata["data"] = data
        nxdata["rotation_angle"] = sample["rotation_angle"]
        nxdata["image_key"] = detector["image_key"]
    os.replace(temp, path)
    return path


#: The sample's first reconstruction, as savu_config commands: dark/flat correction, ring removal,
#: Vo's centring feeding the reconstruction's centre, and a filtered back-projection.
SAMPLE_PIPELINE = ("NxtomoLoader", "DarkFlatFieldCorrection", "RingRemovalWaveletfft", "VoCentering",
                   "AstraReconCpu")


def write_sample_process_list(path: str | os.PathLike[str]) -> Path:
    """A Savu process list (Savu 4.2's own format) for the sample scan, built with hebi's savu_config."""
    from hebi_common.savu.catalogue import load_catalogue
    from hebi_common.savu.operations import apply_operations
    from hebi_common.savu.process_list import ProcessList, write_process_list
    process_list, _, _ = apply_operations(ProcessList(), [{"op": "add", "name": name} for name in SAMPLE_PIPELINE],
                                          load_catalogue("bundled"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_process_list(process_list, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--angles", type=int, default=181)
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--columns", type=int, default=160)
    parser.add_argument("--process-list", help="also write a process list that reconstructs the scan")
    args = parser.parse_args()
    print(write_nxtomo(args.out, args.angles, args.rows, args.columns))
    if args.process_list:
        print(write_sample_process_list(args.process_list))


if __name__ == "__main__":
    main()
