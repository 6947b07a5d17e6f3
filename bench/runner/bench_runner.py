"""Benchmark of hebi's runner against calling the same library functions directly, in one run:

1. per-slice reconstruction time through the runner vs algotom's function called directly on the same
   sinograms (goal: runner throughput >= 0.9x direct, both on all cores: the direct baseline runs the
   function in one process per core, the runner in its worker processes);
2. peak memory (RSS of the runner's whole process tree) of a full run on a generated
   1801 x 200 x 2560 float32 scan (goal <= 4 GB);
3. a 3-slice preview's wall time vs the compute time of those slices (flat-field + reconstruction of
   the 3 sinograms, called directly, one core) (goal <= 1.5x).

    .venv/bin/python bench/runner/bench_runner.py [--workdir DIR] [--rows 200] [--skip-full]

Data are generated in a temporary folder and deleted at the end.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from make_sample_data import sinogram  # noqa: E402

MU = 0.02


def write_scan(path: Path, angles: int, rows: int, columns: int, darks: int = 20, flats: int = 20) -> Path:
    """A float32 NXtomo (darks, flats, projections; frame-chunked as detectors write) of the phantom."""
    angle_values = np.linspace(0.0, 180.0, angles)
    centre = (columns - 1) / 2.0 + 7.5
    # Eight different sections of the phantom, repeated down the rows (the analytic sinogram is costly).
    sections = [sinogram(angle_values, columns, centre, s) * (512.0 / columns) for s in np.linspace(1.0, 0.7, 8)]
    flat = np.float32(20000.0)
    with h5py.File(path, "w") as f:
        tomo = f.create_group("entry1/tomo_entry")
        data = tomo.create_dataset("data/data", (darks + flats + angles, rows, columns), dtype=np.float32,
                                   chunks=(1, rows, columns))
        data[:darks] = 100.0
        data[darks:darks + flats] = flat + 100.0
        for i in range(angles):
            frame = np.stack([sections[r % 8][i] for r in range(rows)])
            data[darks + flats + i] = flat * np.exp(-MU * frame) + 100.0
        tomo["instrument/detector/image_key"] = np.concatenate(
            [np.full(darks, 2), np.full(flats, 1), np.zeros(angles)]).astype(np.int32)
        tomo["data/rotation_angle"] = np.concatenate([np.zeros(darks + flats), angle_values])
    return path


def write_list(path: Path, plugins: list[tuple[str, dict]]) -> Path:
    from hebi_common.savu.catalogue import bundled_catalogue
    from hebi_common.savu.process_list import PluginEntry, ProcessList, write_process_list
    catalogue = bundled_catalogue()
    entries = [PluginEntry(pos=str(i + 1), name=n, module=catalogue.get(n).module, params=p)
               for i, (n, p) in enumerate(plugins)]
    write_process_list(ProcessList(plugins=entries), path)
    return path


def tree_rss(root: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_cli(args: list[str]) -> tuple[float, int]:
    """Wall time and peak tree RSS of one hebi-runner command."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "hebi_runner.cli", *args, "-q"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    peak = 0

    def poll() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"hebi-runner failed ({process.returncode}): {err or out}")
    return time.monotonic() - start, peak


def _direct(method: str, sinograms: np.ndarray, centre: float, angles: np.ndarray) -> float:
    """The library call itself on a stack of -log sinograms, one numba thread, in this process."""
    import numba
    numba.set_num_threads(1)
    from algotom.rec.reconstruction import dfi_reconstruction, fbp_reconstruction
    start = time.monotonic()
    for sino in sinograms:
        if method == "fbp":
            fbp_reconstruction(sino, centre, angles=angles, filter_name=None, apply_log=False, gpu=False, ncore=1)
        else:
            dfi_reconstruction(sino, centre, angles=angles, filter_name=None, apply_log=False, ncore=1)
    return time.monotonic() - start


def _warm(method: str) -> float:
    sino = np.random.default_rng(0).random((91, 64)).astype(np.float32)
    return _direct(method, sino[None], 31.5, np.linspace(0, np.pi, 91))


def recon_throughput(work: Path, workers: int, angles: int, columns: int, slices: int,
                     repeats: int = 2) -> list[tuple]:
    from hebi_runner import PluginSpec, RunOptions, run_pipeline
    path = work / "recon.nxs"
    with h5py.File(path, "w") as f:  # -log sinograms, stored as projections (no darks/flats)
        angle_values = np.linspace(0.0, 180.0, angles)
        base = sinogram(angle_values, columns, (columns - 1) / 2 + 7.5) * (MU * 512 / columns)
        data = np.repeat(base[:, None, :], slices, axis=1).astype(np.float32)
        f["entry1/tomo_entry/data/data"] = data
        f["entry1/tomo_entry/data/rotation_angle"] = angle_values
    sinograms = np.ascontiguousarray(data.transpose(1, 0, 2))
    centre = (columns - 1) / 2 + 7.5
    rows = []
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for method, plugin, params in (("fbp", "AstraReconCpu", {"FBP_filter": "ram-lak"}),
                                       ("dfi", "TomopyRecon", {"algorithm": "gridrec", "filter_name": "ramlak"})):
            list(pool.map(_warm, [method] * workers))  # JIT/imports outside the timing
            share = np.array_split(sinograms, workers)
            plugins = [PluginSpec("NxtomoLoader", {"image_key_path": None}),
                       PluginSpec(plugin, dict(params, centre_of_rotation=centre, log=False, ratio=None))]
            direct = runner = float("inf")
            for attempt in range(repeats):  # alternate, keep the best of each: the machine is shared
                start = time.monotonic()
                list(pool.map(_direct, [method] * workers, share, [centre] * workers,
                              [np.deg2rad(angle_values)] * workers))
                direct = min(direct, time.monotonic() - start)
                start = time.monotonic()
                result = run_pipeline(path, plugins, work / "out",
                                      RunOptions(folder=f"recon_{method}_{attempt}", workers=workers))
                runner = min(runner, time.monotonic() - start)
                assert result.status == "completed", result.error
            rows.append((f"recon {method.upper()} {angles}x{columns}, s/slice", runner / slices, direct / slices,
                         direct / runner, ">= 0.9x direct throughput"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where to generate data (default: a temporary folder)")
    parser.add_argument("--rows", type=int, default=200, help="rows of the full-size scan (200 as in the goal)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-full", action="store_true", help="skip the full 1801x200x2560 run")
    parser.add_argument("--skip-recon", action="store_true", help="skip the per-slice reconstruction timing")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hebi-bench-runner-", dir=args.workdir))
    table = []
    try:
        print(f"workdir {work}, {args.workers} workers, load average {os.getloadavg()[0]:.1f}", flush=True)
        if not args.skip_recon:
            table += recon_throughput(work, args.workers, angles=901, columns=1280, slices=8 * args.workers)
        for row in table:
            print("  ", row, flush=True)

        started = time.monotonic()
        scan = write_scan(work / "full.nxs", angles=1801, rows=args.rows, columns=2560)
        print(f"generated {scan.name} ({os.path.getsize(scan) / 1e9:.2f} GB) in {time.monotonic() - started:.0f} s",
              flush=True)
        centre = (2560 - 1) / 2.0 + 7.5
        plist = write_list(work / "full.nxs.list.nxs", [
            ("NxtomoLoader", {}), ("DarkFlatFieldCorrection", {}),
            ("TomopyRecon", {"centre_of_rotation": centre, "algorithm": "gridrec", "filter_name": "ramlak"})])

        wall, peak = run_cli([str(scan), str(plist), str(work / "out"), "-f", "preview", "--preview",
                              ":,mid-1:mid+2,:", "-n", str(args.workers)])
        compute = preview_compute(scan, centre)
        table.append(("3-slice preview, wall s (vs direct compute s)", wall, compute, wall / compute, "<= 1.5x"))
        print("  ", table[-1], flush=True)

        if not args.skip_full:
            wall, peak = run_cli([str(scan), str(plist), str(work / "out"), "-f", "full", "-n", str(args.workers)])
            table.append((f"full run 1801x{args.rows}x2560, peak RSS GB (wall {wall / 60:.1f} min)", peak / 1e9,
                          None, None, "<= 4 GB"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (the machine's other work shares the cores)")
    print(f"{'measure':58} {'hebi-runner':>12} {'direct':>10} {'ratio':>7}  goal")
    for name, ours, direct, ratio, goal in table:
        print(f"{name:58} {ours:12.3f} {direct if direct is not None else float('nan'):10.3f} "
              f"{ratio if ratio is not None else float('nan'):7.2f}  {goal}")


def preview_compute(scan: Path, centre: float) -> float:
    """Flat-field + -log + DFI on the 3 middle sinograms, called directly, one core (reading excluded)."""
    from algotom.rec.reconstruction import dfi_reconstruction
    with h5py.File(scan, "r") as f:
        data = f["entry1/tomo_entry/data/data"]
        rows = data.shape[1]
        mid = max(-(-rows // 2) - 1, 0)
        raw = data[40:, mid - 1:mid + 2, :]
        dark, flat = data[:20, mid - 1:mid + 2, :].mean(0), data[20:40, mid - 1:mid + 2, :].mean(0)
        angles = np.deg2rad(f["entry1/tomo_entry/data/rotation_angle"][40:])
    _warm("dfi")
    start = time.monotonic()
    corrected = (raw - dark) / (flat - dark)
    for i in range(3):
        sino = np.nan_to_num(-np.log(np.maximum(corrected[:, i, :], 1e-6)))
        dfi_reconstruction(sino, centre, angles=angles, filter_name=None, apply_log=False, ncore=1)
    return time.monotonic() - start


if __name__ == "__main__":
    main()
