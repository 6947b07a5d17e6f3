"""Files are never half-written: each is written beside its final name, flushed to disk, and renamed
into place, so a reader sees the old file or the new one, and a crash leaves the old one intact."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: int = 0o644, *, text: bool = False) -> Iterator[IO]:
    """Yield a file open for writing that replaces ``path`` when the block ends without an error.

    The permissions are set before anything is written, so a 0600 file is never readable by others,
    even for a moment. Binary files are opened read-write (``w+b``), which h5py needs of a file object.
    """
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w" if text else "w+b") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
