"""Server-side downsampling of a 1D or 2D selection to (at most) a requested size, by mean, max or min.

A viewer's canvas is 500-1500 pixels wide; a detector frame is 2048-4096. Sending the whole frame costs
16-64 MiB per slider step; binning on the server sends 16x less for a 4x4 bin. ``mean`` is the honest
picture of smooth data; ``max`` (or ``min``) keeps single-pixel features such as diffraction peaks or
dead pixels visible, which nearest-neighbour decimation (a strided selection, h5grove's only form of
downsampling) drops (h5web#1721). NaN is ignored: a block's mean or max is that of its finite values.

The factor in each dimension is ``ceil(size / requested)``, so the result is never larger than asked
and every output pixel summarises a whole block; blocks at the right and bottom edges may be partial.
The input arrives in bands of rows (``read_rows``) so a huge image never has to be held whole.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np

from .errors import DataError

Reduction = Literal["mean", "max", "min"]
REDUCTIONS = ("mean", "max", "min")
BAND_BYTES = 32 * 1024**2  # rows read per step; bounded memory however large the image
PARALLEL_BYTES = 4 * 1024**2  # smaller selections are binned by one thread


def parse_size(text: str, ndim: int) -> tuple[int, ...]:
    """``512x512``, ``512,512`` or ``512`` (the same bound in every dimension)."""
    parts = [p for p in text.replace("x", ",").replace("X", ",").split(",") if p.strip()]
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        raise DataError(f"size {text!r} must be one or {ndim} positive integers, e.g. 512x512") from None
    if len(numbers) == 1:
        numbers = numbers * ndim
    if len(numbers) != ndim or any(n <= 0 for n in numbers):
        raise DataError(f"size {text!r} must be one or {ndim} positive integers for a {ndim}D selection")
    return numbers


def factors(shape: tuple[int, ...], size: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, math.ceil(n / s)) for n, s in zip(shape, size))


def result_dtype(dtype: np.dtype, how: Reduction) -> np.dtype:
    if how != "mean":
        return np.dtype(np.uint8) if dtype.kind == "b" else dtype.newbyteorder("=")
    return np.dtype(np.float64) if dtype.itemsize >= 8 or (dtype.kind in "iu" and dtype.itemsize >= 4) \
        else np.dtype(np.float32)


def band_rows(shape: tuple[int, ...], dtype: np.dtype, size: tuple[int, ...], band_bytes: int = BAND_BYTES) -> int:
    """Rows read per step: a whole number of output rows, as many as fit in ``band_bytes``."""
    if len(shape) == 1:
        return 1
    fy = factors(shape, size)[0]
    return max(fy, (band_bytes // max(1, shape[1] * dtype.itemsize)) // fy * fy)


def downsample(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, ...], dtype: np.dtype,
               size: tuple[int, ...], how: Reduction, band_bytes: int = BAND_BYTES, pool=None,
               threads: int = 1) -> tuple[np.ndarray, tuple[int, ...]]:
    """Bin a (rows, cols) or (cols,) selection; returns the result and the factors used."""
    if how not in REDUCTIONS:
        raise DataError(f"reduce must be one of {', '.join(REDUCTIONS)}, not {how!r}")
    if len(shape) == 1:
        line = np.asarray(read_rows(0, shape[0])).reshape(1, -1)
        result, (_, fx) = downsample(lambda a, b: line[a:b], (1, shape[0]), dtype, (1, size[0]), how)
        return result.reshape(-1), (fx,)
    rows, cols = shape
    fy, fx = factors(shape, size)
    out_rows, out_cols = math.ceil(rows / fy), math.ceil(cols / fx)
    out = np.empty((out_rows, out_cols), dtype=result_dtype(dtype, how))
    step = band_rows(shape, dtype, size, band_bytes)
    if pool is not None and threads > 1 and rows * cols * dtype.itemsize >= PARALLEL_BYTES:
        # Bands of whole output rows read and reduced side by side (h5py waits on its lock, the
        # reads and NumPy's loops do not): each thread gets an equal share, within the band size.
        step = min(step, max(fy, -(-math.ceil(rows / fy) // threads) * fy))

    def one(start: int) -> None:
        stop = min(rows, start + step)
        block = np.asarray(read_rows(start, stop))
        out[start // fy: start // fy + math.ceil((stop - start) / fy)] = _reduce_band(block, fy, fx, how, out.dtype)

    starts = range(0, rows, step)
    if pool is not None and threads > 1 and len(starts) > 1:
        run_inline(pool, one, list(starts), threads)
    else:
        for start in starts:
            one(start)
    return out, (fy, fx)


def run_inline(pool, fn, items: list, threads: int = 2) -> None:
    """``fn`` over ``items`` in ``threads`` shares: one share in this thread, the others on the pool
    (thread hand-offs are not free, so the calling thread works rather than waits)."""
    if not items:
        return
    shares = [items[k::threads] for k in range(min(threads, len(items)))]

    def share(part: list) -> None:
        for item in part:
            fn(item)

    futures = [pool.submit(share, part) for part in shares[1:]]
    try:
        share(shares[0])
    finally:
        for future in futures:
            future.result()


def _reduce_band(block: np.ndarray, fy: int, fx: int, how: Reduction, out_dtype: np.dtype) -> np.ndarray:
    if block.dtype.kind == "b":
        block = block.view(np.uint8)
    rows, cols = block.shape
    pad_rows, pad_cols = (-rows) % fy, (-cols) % fx
    floating = block.dtype.kind == "f"
    if how == "mean":
        work = block if floating and block.dtype == out_dtype else block.astype(out_dtype)
        ragged = pad_rows or pad_cols
        if ragged:
            work = np.pad(work, ((0, pad_rows), (0, pad_cols)), constant_values=np.nan)
        else:
            sums = _block_sum(work, fy, fx)
            # A NaN anywhere in a block makes its sum NaN: only then is the slower NaN-aware mean needed.
            if not floating or not np.isnan(sums).any():
                return sums * np.asarray(1.0 / (fy * fx), dtype=out_dtype)
        valid = ~np.isnan(work)
        sums = _block_sum(np.where(valid, work, 0), fy, fx)
        counts = _block_sum(valid.astype(out_dtype), fy, fx)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / counts  # an all-NaN block stays NaN
    if pad_rows or pad_cols:
        if floating:
            fill = np.nan
        else:
            info = np.iinfo(block.dtype)
            fill = info.min if how == "max" else info.max
        block = np.pad(block, ((0, pad_rows), (0, pad_cols)), constant_values=fill)
    pick = (np.fmax if how == "max" else np.fmin) if floating else (np.maximum if how == "max" else np.minimum)
    return _block_reduce(block, fy, fx, pick)


def _block_sum(a: np.ndarray, fy: int, fx: int) -> np.ndarray:
    return _block_reduce(a, fy, fx, np.add)


def _block_reduce(a: np.ndarray, fy: int, fx: int, ufunc) -> np.ndarray:
    # Rows first over a (R, fy, C) view (contiguous inner loops), then columns by adding fx strided
    # slices: several times faster than reducing a (R, fy, C/fx, fx) view over two axes at once.
    rows, cols = a.shape
    a = ufunc.reduce(a.reshape(rows // fy, fy, cols), axis=1) if fy > 1 else a
    if fx == 1:
        return np.ascontiguousarray(a)
    out = a[:, 0::fx].copy()
    for j in range(1, fx):
        ufunc(out, a[:, j::fx], out=out)
    return out
