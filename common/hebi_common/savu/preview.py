"""Savu's preview syntax, once for the editor, job submission and the runner.

A preview is a list with one entry per data dimension; each entry is ``start[:stop[:step[:chunk]]]``
(DiamondLightSource/Savu data_structures/preview.py, notes/savu.md §4). Each field is an expression of
numbers and the words ``start`` (0), ``mid`` (``max(ceil(n/2) - 1, 0)``) and ``end`` (``n``) in the
bounded grammar of ``expressions``; Savu evaluates it with Python and takes the whole part, so
``1.5`` is 1 and ``mid%2`` is Python's remainder. Negative values count from the end. An empty field
takes its default (start 0, stop end, step 1, chunk 1), so ``:``, ``::``, ``:::`` and ``::::`` all
select everything; a single field ``n`` selects ``n:n+1``. A list of numbers selects those indices.

``entry_problem`` is what the editor and submission check (no data shape is known there); anything it
accepts, ``indices`` evaluates with exactly that meaning once the shape is known.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .expressions import ExpressionError, evaluate, parse

WORDS = frozenset({"start", "mid", "end"})
FIELDS = ("start", "stop", "step", "chunk")

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions that use it: a session's API that never evaluates an
# expression does not carry numpy's memory (bench/session).


class PreviewError(ValueError):
    """A preview the grammar refuses, or one that selects nothing of the data."""


def _fields(entry: Any) -> list[str]:
    """The fields of one entry, checked against the grammar; PreviewError with the reason."""
    if isinstance(entry, bool) or not isinstance(entry, (str, int, float)):
        raise PreviewError(f"{entry!r} is not a preview entry")
    text = str(entry).strip()
    fields = [field.strip() for field in text.split(":")]
    if len(fields) > 4:
        raise PreviewError(f"{entry!r} has more than start:stop:step:chunk")
    if not any(fields):
        if text:
            return fields  # ':', '::', ... select everything
        raise PreviewError(f"{entry!r} is empty: use ':' to keep a whole dimension")
    for field in fields:
        if field:
            try:
                parse(field, WORDS)
            except ExpressionError as exc:
                raise PreviewError(f"{entry!r} is not start[:stop[:step[:chunk]]] made of numbers and the "
                                   f"words start, mid and end ({exc})") from None
    return fields


def entry_problem(entry: Any) -> str | None:
    """Why one preview entry is refused (None when it is fine)."""
    if isinstance(entry, list):
        if entry and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in entry):
            return None
        return f"{entry!r}: a list entry must hold numbers"
    try:
        _fields(entry)
    except PreviewError as exc:
        return str(exc)
    return None


def preview_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        return "a preview is a list with one entry per dimension, e.g. [\":\", \"mid\", \":\"]"
    for dim, entry in enumerate(value, start=1):
        problem = entry_problem(entry)
        if problem:
            return f"dimension {dim}: {problem}"
    return None


def _as_list(preview: Any) -> list[Any]:
    if isinstance(preview, str):
        text = preview.strip()
        if text.startswith("[") and text.endswith("]"):  # older files hold "[:, mid, :]"
            return [part.strip().strip("'\"") for part in text[1:-1].split(",")]
        raise PreviewError(f"preview '{preview}' should be a list with one entry per dimension")
    if not isinstance(preview, (list, tuple)):
        raise PreviewError(f"preview {preview!r} should be a list with one entry per dimension")
    return list(preview)


def indices(preview: Any, shape: tuple[int, ...], labels: list[str] | None = None) -> list[np.ndarray]:
    """Selected indices per dimension; ``[]``/``None``/``{}`` select everything."""
    import numpy as np
    labels = labels or [f"dimension {d}" for d in range(len(shape))]
    if preview in (None, [], {}, ""):
        return [np.arange(n) for n in shape]
    entries = _as_list(preview)
    if len(entries) > len(shape):
        raise PreviewError(f"preview {entries} has {len(entries)} entries but the data have "
                           f"{len(shape)} dimensions ({', '.join(labels)})")
    entries += [":"] * (len(shape) - len(entries))
    return [entry_indices(entry, n, label) for entry, n, label in zip(entries, shape, labels)]


def field_value(text: str, n: int) -> int:
    """One field for a dimension of ``n``: Savu's ``int(eval(...))``, negatives counted from the end."""
    names = {"start": 0, "mid": max(math.ceil(n / 2) - 1, 0), "end": n}
    try:
        value = evaluate(text, names)
    except ExpressionError as exc:
        raise PreviewError(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PreviewError(f"'{text}' is not a number")
    value = int(value)
    return value + n if value < 0 else value


def entry_indices(entry: Any, n: int, label: str = "dimension") -> np.ndarray:
    import numpy as np
    if entry is None:
        return np.arange(n)
    if isinstance(entry, (list, tuple)):  # an explicit list of indices
        problem = entry_problem(list(entry))
        if problem:
            raise PreviewError(f"preview entry for {label}: {problem}")
        picked = [field_value(str(v), n) for v in entry]
        if any(not 0 <= i < n for i in picked):
            raise PreviewError(f"preview entry {list(entry)} for {label} lies outside 0..{n - 1}")
        return np.array(picked, dtype=int)
    try:
        fields = _fields(entry)
    except PreviewError as exc:
        raise PreviewError(f"preview entry for {label}: {exc}") from None
    text = str(entry).strip()

    def field(i: int, default: int) -> int:
        if i >= len(fields) or not fields[i]:
            return default
        try:
            return field_value(fields[i], n)
        except PreviewError as exc:
            raise PreviewError(f"preview entry '{text}' for {label}: {exc}") from None

    start = field(0, 0)
    stop = field(1, start + 1) if len(fields) == 1 else field(1, n)
    step, chunk = field(2, 1), field(3, 1)
    if step < 1 or chunk < 1:
        raise PreviewError(f"preview entry '{text}' for {label}: step and chunk must be at least 1")
    if stop <= start or start >= n or stop > n:
        raise PreviewError(f"preview entry '{text}' for {label} selects nothing of {n} "
                           f"(start {start}, stop {stop}); Savu says 'Error in previewing parameters!'")
    if chunk > n:
        raise PreviewError(f"preview entry '{text}' for {label}: chunk {chunk} is larger than the {n} there are")
    picked = np.arange(start, stop, step)
    if chunk > 1:
        picked = np.unique((picked[:, None] + np.arange(chunk) - chunk // 2).ravel())
        picked = picked[(picked >= 0) & (picked < n)]
    return picked
