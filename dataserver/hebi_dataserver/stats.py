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


def array_stats(values, bins: int = 64) -> dict:
    data = np.asarray(values)
    if data.dtype.kind == "b":
        data = data.astype(np.uint8)
    if data.dtype.kind not in "iuf":
        raise DataError(f"statistics need numbers; this selection holds {data.dtype} values", 422)
    data = data.reshape(-1)
    total = int(data.size)
    nan_count = inf_count = 0
    if data.dtype.kind == "f":
        finite_mask = np.isfinite(data)
        if not finite_mask.all():
            nan_count = int(np.isnan(data).sum())
            inf_count = int(total - nan_count - finite_mask.sum())
            data = data[finite_mask]
    result = {"strict_positive_min": None, "positive_min": None, "min": None, "max": None, "mean": None,
              "std": None, "count": int(data.size), "nan_count": nan_count, "inf_count": inf_count,
              "histogram": None}
    if data.size == 0:
        return result
    cast = float if data.dtype.kind == "f" else int
    positive = data[data >= 0]
    strict = positive[positive > 0]
    low, high = data.min(), data.max()
    result.update(
        strict_positive_min=cast(strict.min()) if strict.size else None,
        positive_min=cast(positive.min()) if positive.size else None,
        min=cast(low), max=cast(high),
        mean=float(np.mean(data, dtype=np.float64)), std=float(np.std(data, dtype=np.float64)))
    if bins:
        counts, edges = np.histogram(data, bins=bins, range=(float(low), float(high)))
        result["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    return result
