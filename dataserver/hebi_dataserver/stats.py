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
#: Values looked at a time: the working arrays (a float64 copy, the bin of each value) stay 2 MiB.
BLOCK = 1 << 17
_UNSIGNED = {2: np.uint16, 4: np.uint32, 8: np.uint64}


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


def _positive_mins(block: np.ndarray) -> tuple:
    """(smallest value >= 0, smallest value > 0) of a block of finite numbers, None where there is none.

    The values are read as unsigned integers of their size: non-negative floats and integers keep their
    order there, and every negative one (sign bit set) is larger than all of them, so one integer ``min``
    finds the smallest non-negative value without a boolean mask (which costs ten times as much).
    Subtracting one first sends 0 to the top, so the second ``min`` passes over zeros."""
    unsigned = np.dtype(f"u{block.dtype.itemsize}")
    bits = np.ascontiguousarray(block).view(unsigned)
    sign = None if block.dtype.kind == "u" else unsigned.type(1) << unsigned.type(8 * unsigned.itemsize - 1)

    def value(b) -> np.generic:
        return np.array(b, dtype=unsigned).view(block.dtype)[()]

    least = bits.min()
    # For floats the sign bit alone is -0.0: the least of the "negatives", yet >= 0 (as for NumPy).
    non_negative = sign is None or least < sign or (block.dtype.kind == "f" and least == sign)
    below = (bits - unsigned.type(1)).min()  # the top if every value is 0
    positive = below != np.iinfo(unsigned).max and (sign is None or below < sign - unsigned.type(1))
    return (value(least) if non_negative else None, value(below + unsigned.type(1)) if positive else None)


# Sums and squares of values near float64's limits overflow: their mean or std is then infinite (sent
# as null), which is the answer, not something for the server's log.
@np.errstate(over="ignore", invalid="ignore")
def array_stats(values, bins: int = 64) -> dict:
    """The statistics, looked at ``BLOCK`` values at a time: whatever the selection, the working arrays
    stay one block's size, so a request holds little more than its values. Two passes, as NumPy's
    ``std`` does: min, max and mean first, then the deviations and the histogram.

    A viewer asks for these after every step through a stack (a whole frame, 4 M values for a 2048²
    detector), beside the next slice on the session's cores, so the common case is kept cheap: a block
    is masked for NaN and infinities only if its extremes show it holds some, and the histogram bins
    values by one multiply and ``bincount`` (its edges are NumPy's; a value within rounding of an inner
    edge may land in the bin beside the one ``np.histogram`` would give it)."""
    data = np.asarray(values)
    if data.dtype.kind == "b":
        data = data.view(np.uint8)
    check_numbers(data.dtype, "this selection")
    flat = data.reshape(-1)
    floats = data.dtype.kind == "f"
    ragged: set[int] = set()  # the blocks holding NaN or infinities

    def finite_blocks():
        for start in range(0, flat.size, BLOCK):
            block = flat[start:start + BLOCK]
            yield block[np.isfinite(block)] if start in ragged else block

    nan_count = 0
    if floats:
        for start in range(0, flat.size, BLOCK):
            block = flat[start:start + BLOCK]
            if not (np.isfinite(block.min()) and np.isfinite(block.max())):  # NaN and inf show in the extremes
                ragged.add(start)
                nan_count += int(np.count_nonzero(np.isnan(block)))
    count, total = 0, 0.0
    low = high = positive_min = strict_min = None
    for block in finite_blocks():
        if not block.size:
            continue
        count += int(block.size)
        total += float(np.sum(block, dtype=np.float64))
        low = block.min() if low is None else min(low, block.min())
        high = block.max() if high is None else max(high, block.max())
        non_negative, positive = _positive_mins(block)
        if non_negative is not None:
            positive_min = non_negative if positive_min is None else min(positive_min, non_negative)
        if positive is not None:
            strict_min = positive if strict_min is None else min(strict_min, positive)
    result = {"strict_positive_min": None, "positive_min": None, "min": None, "max": None, "mean": None,
              "std": None, "count": count, "nan_count": nan_count,
              "inf_count": int(flat.size - count - nan_count), "histogram": None}
    if count == 0:
        return result
    mean = total / count
    squares = 0.0
    counts = np.zeros(bins, dtype=np.int64)
    # NumPy's range: one value alone gets the unit around it, or a relative margin where 0.5 is lost in
    # its size. Values near float64's limits are binned at 2**-64 of their size (exact), where neither
    # the span nor a value's distance from the first edge overflows.
    shrink = 2.0 ** -64 if max(abs(float(low)), abs(float(high))) > 2.0 ** 1000 else 1.0
    first, last = float(low) * shrink, float(high) * shrink
    if not first < last:
        margin = max(0.5 * shrink, abs(first) * 2.0 ** -40)
        first, last = first - margin, last + margin
    scale = bins / (last - first)
    for block in finite_blocks():
        work = block.astype(np.float64)
        work -= mean
        squares += float(np.dot(work, work))
        if bins:  # each value's place in the range, in bins, in the same buffer
            np.multiply(block, shrink * scale, out=work, dtype=np.float64)  # not in float32: scale may overflow it
            work -= first * scale
            index = work.astype(np.intp)
            np.clip(index, 0, bins - 1, out=index)  # the last edge belongs to the last bin
            counts += np.bincount(index, minlength=bins)
    cast = float if floats else int
    result.update(
        strict_positive_min=None if strict_min is None else cast(strict_min),
        positive_min=None if positive_min is None else cast(positive_min),
        min=cast(low), max=cast(high), mean=float(mean), std=float(np.sqrt(squares / count)))
    if bins:
        edges = np.clip(np.linspace(first, last, bins + 1) / shrink, -np.finfo(np.float64).max, np.finfo(np.float64).max)
        result["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    return result
