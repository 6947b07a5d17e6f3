"""Savu's preview syntax: one ``start[:stop[:step[:chunk]]]`` entry per data dimension, each field a
small expression of ``start``, ``mid`` and ``end`` (DiamondLightSource/Savu data_structures/preview.py:
``mid = max(ceil(n/2) - 1, 0)``, ``end = n``, negative values count from the end)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hebi_runner.expressions import ExpressionError, evaluate


class PreviewError(ValueError):
    pass


def preview_indices(preview: Any, shape: tuple[int, ...], labels: list[str] | None = None) -> list[np.ndarray]:
    """Selected indices per dimension; ``[]``/``None``/``{}`` select everything."""
    labels = labels or [f"dimension {d}" for d in range(len(shape))]
    if preview in (None, [], {}, ""):
        return [np.arange(n) for n in shape]
    if isinstance(preview, str):
        text = preview.strip()
        if text.startswith("[") and text.endswith("]"):
            preview = [p.strip().strip("'\"") for p in text[1:-1].split(",")]
        else:
            raise PreviewError(f"preview '{preview}' should be a list with one entry per dimension")
    if not isinstance(preview, (list, tuple)):
        raise PreviewError(f"preview {preview!r} should be a list with one entry per dimension")
    if len(preview) > len(shape):
        raise PreviewError(f"preview {list(preview)} has {len(preview)} entries but the data have "
                           f"{len(shape)} dimensions ({', '.join(labels)})")
    entries = list(preview) + [":"] * (len(shape) - len(preview))
    return [_entry(entry, n, label) for entry, n, label in zip(entries, shape, labels)]


def _entry(entry: Any, n: int, label: str) -> np.ndarray:
    if entry is None or (isinstance(entry, str) and entry.strip() in (":", "")):
        return np.arange(n)
    if isinstance(entry, (list, tuple)):  # an explicit list of indices
        return np.array([_value(v, n, label) for v in entry], dtype=int)
    text = str(entry).strip()
    fields = text.split(":")
    if len(fields) > 4:
        raise PreviewError(f"preview entry '{text}' for {label} has more than 3 colons")
    names = {"start": 0, "mid": max(math.ceil(n / 2) - 1, 0), "end": n}

    def field(i: int, default: int) -> int:
        if i >= len(fields) or fields[i].strip() == "":
            return default
        try:
            value = evaluate(fields[i], names)
        except ExpressionError as exc:
            raise PreviewError(f"preview entry '{text}' for {label}: {exc}") from None
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise PreviewError(f"preview entry '{text}' for {label}: '{fields[i]}' is not a number")
        value = int(value)
        return value + n if value < 0 else value

    start = field(0, 0)
    stop = field(1, start + 1) if len(fields) == 1 else field(1, n)
    step, chunk = field(2, 1), field(3, 1)
    if step < 1 or chunk < 1:
        raise PreviewError(f"preview entry '{text}' for {label}: step and chunk must be at least 1")
    if stop <= start or start >= n or stop > n:
        raise PreviewError(f"preview entry '{text}' for {label} selects nothing of {n} "
                           f"(start {start}, stop {stop}); Savu says 'Error in previewing parameters!'")
    indices = np.arange(start, stop, step)
    if chunk > 1:
        indices = np.unique((indices[:, None] + np.arange(chunk) - chunk // 2).ravel())
        indices = indices[(indices >= 0) & (indices < n)]
    return indices


def _value(value: Any, n: int, label: str) -> int:
    indices = _entry(value, n, label)
    return int(indices[0])
