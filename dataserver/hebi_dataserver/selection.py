"""h5grove's ``selection`` parameter, checked before anything is read.

A selection is NumPy-style text, one member per dimension: an integer (``5``, ``-1``) or
``start:stop[:step]`` (``:``, ``0:10``, ``::4``). Missing trailing members mean "all". Unlike h5grove,
a bad selection is answered with a message naming the member and the dimension, and the size of what
it selects is known before the read, so the byte limit can refuse it without touching the file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class Selection:
    """A normalised selection: one int or a slice with explicit start/stop/step per dimension."""

    members: tuple[int | slice, ...]
    shape: tuple[int, ...]  # of the result (ints drop their dimension)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def box(self) -> tuple[slice, ...]:
        """The selection as slices only (ints become length-1 slices)."""
        return tuple(slice(m, m + 1, 1) if isinstance(m, int) else m for m in self.members)

    @property
    def unit_steps(self) -> bool:
        return all(isinstance(m, int) or m.step == 1 for m in self.members)


def parse_selection(text: str | None, shape: tuple[int, ...] | None) -> Selection:
    if shape is None:  # an empty dataset (h5py.Empty) has no values to select
        if text:
            raise DataError("this dataset is empty (it has no shape), so it cannot take a selection")
        return Selection((), ())
    text = (text or "").strip()
    raw = [] if text == "" else text.split(",")
    if len(raw) > len(shape):
        raise DataError(f"the selection {text!r} has {len(raw)} members but the dataset has "
                        f"{len(shape)} dimension(s) {list(shape)}")
    members: list[int | slice] = []
    out_shape: list[int] = []
    for dim, size in enumerate(shape):
        member = raw[dim].strip() if dim < len(raw) else ":"
        parsed = _parse_member(member, dim, size, text)
        members.append(parsed)
        if isinstance(parsed, slice):
            out_shape.append(len(range(parsed.start, parsed.stop, parsed.step)))
    return Selection(tuple(members), tuple(out_shape))


def _parse_member(member: str, dim: int, size: int, text: str) -> int | slice:
    def number(value: str, what: str) -> int | None:
        value = value.strip()
        if value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise DataError(f"the selection {text!r} has {what} {value!r} in dimension {dim}, "
                            "which is not an integer") from None

    if ":" not in member:
        index = number(member, "the index")
        if index is None:
            raise DataError(f"the selection {text!r} has an empty member in dimension {dim}")
        if not -size <= index < size:
            raise DataError(f"index {index} is out of range for dimension {dim} of size {size}")
        return index % size
    parts = member.split(":")
    if len(parts) > 3:
        raise DataError(f"the selection member {member!r} in dimension {dim} is not start:stop:step")
    start, stop = number(parts[0], "the start"), number(parts[1], "the stop")
    step = number(parts[2], "the step") if len(parts) == 3 else None
    if step is not None and step <= 0:
        raise DataError(f"the step {step} in dimension {dim} must be a positive integer")
    start, stop, step = slice(start, stop, step).indices(size)
    return slice(start, max(start, stop), step)
