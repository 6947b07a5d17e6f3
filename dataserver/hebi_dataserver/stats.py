"""Statistics of a selection for a viewer's colour scale: h5grove's fields plus counts and a histogram.

h5grove's ``/stats`` fields (``strict_positive_min``, ``positive_min``, ``min``, ``max``, ``mean``, ``std``)
are computed over the finite values only, as h5grove does, so one NaN or Inf pixel does not turn the
colour range into NaN. Added: how many values were finite, NaN and infinite, and a histogram of the
finite values over [min, max] (``bins`` edges are ``bins + 1`` numbers), which is what a domain slider
with a histogram needs without fetching the data.
"""
from __future__ import annotations

import numpy as np

from .errors import DataError

MAX_BINS = 4096
BLOCK = 1 << 16  # values looked at a time


def parse_bins(text: str | None) -> int:
    if text is None or text == "":
        return 64
    try:
        bins = int(text)
    except ValueError:
        raise DataError(f"bins must be an integer, not {text!r}") from None
    if not 0 <= bins <= MAX_BINS:
        raise DataError(f"bins must be between 0 and {MAX_BINS}, not {bins}")
    return bins


def check_numbers(dtype: np.dtype, what: str) -> None:
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise DataError(f"statistics need numbers; {what} holds {dtype} values", 422)


def array_stats(values, bins: int = 64) -> dict:
    """The statistics, looked at ``BLOCK`` values at a time: whatever the selection, the working arrays
    (masks, finite values, squares) stay one block's size, so a request holds little more than its values.
    Two passes, as NumPy's ``std`` does: min, max and mean first, then the deviations and the histogram."""
    data = np.asarray(values)
    if data.dtype.kind == "b":
        data = data.view(np.uint8)
    check_numbers(data.dtype, "this selection")
    flat = data.reshape(-1)
    floats = data.dtype.kind == "f"

    def finite_blocks():
        for start in range(0, flat.size, BLOCK):
            block = flat[start:start + BLOCK]
            yield block[np.isfinite(block)] if floats else block

    nan_count = 0
    if floats:
        for start in range(0, flat.size, BLOCK):
            nan_count += int(np.count_nonzero(np.isnan(flat[start:start + BLOCK])))
    count, total = 0, 0.0
    low = high = positive_min = strict_min = None
    for block in finite_blocks():
        if not block.size:
            continue
        count += int(block.size)
        total += float(np.sum(block, dtype=np.float64))
        low = block.min() if low is None else min(low, block.min())
        high = block.max() if high is None else max(high, block.max())
        positive = block[block >= 0]
        if positive.size:
            positive_min = positive.min() if positive_min is None else min(positive_min, positive.min())
            strict = positive[positive > 0]
            if strict.size:
                strict_min = strict.min() if strict_min is None else min(strict_min, strict.min())
    result = {"strict_positive_min": None, "positive_min": None, "min": None, "max": None, "mean": None,
              "std": None, "count": count, "nan_count": nan_count,
              "inf_count": int(flat.size - count - nan_count), "histogram": None}
    if count == 0:
        return result
    mean = total / count
    squares = 0.0
    counts = np.zeros(bins, dtype=np.int64)
    edges = None
    for block in finite_blocks():
        deviations = block.astype(np.float64)
        deviations -= mean
        squares += float(np.dot(deviations, deviations))
        if bins:
            block_counts, edges = np.histogram(block, bins=bins, range=(float(low), float(high)))
            counts += block_counts
    cast = float if floats else int
    result.update(
        strict_positive_min=None if strict_min is None else cast(strict_min),
        positive_min=None if positive_min is None else cast(positive_min),
        min=cast(low), max=cast(high), mean=float(mean), std=float(np.sqrt(squares / count)))
    if bins:
        result["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    return result
