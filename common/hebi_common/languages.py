"""What a code job's entry point is, by its suffix (any case): one table for the API, which checks and
records it, and the runner, which runs it accordingly."""
from __future__ import annotations

from pathlib import PurePath

LANGUAGES = {".py": "python", ".m": "octave", ".ipynb": "notebook"}


def language_of(entry: str) -> str | None:
    """``python``, ``octave`` or ``notebook``; None for a file that is none of them."""
    return LANGUAGES.get(PurePath(entry).suffix.lower())
