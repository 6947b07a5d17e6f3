"""The per-user upload quota (``session.quota_bytes``): what a user's writable roots may hold before an
upload is refused with 413, checked before the upload starts (its declared length) and while it streams.

Measuring: a walk of the writable roots with ``os.scandir`` (symlinks not followed, each file's size
once), stopped after ``WALK_LIMIT`` entries so that one measurement stays bounded in cost whatever the
user keeps, and reused for ``CACHE_SECONDS``. What this API stores meanwhile is added to the figure at
once, and uploads in progress hold their bytes as a reservation, so neither a burst of uploads nor
parallel ones slip past a stale figure. Files written by jobs count from the next measurement. A
session's API is one process (the launcher runs one gunicorn worker, hebi_common.serve), so one lock covers every upload.

This is hebi's own guard; a facility's filesystem quotas stay the hard limit.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hebi_common.errors import UserError
from hebi_common.sandbox import Roots

log = logging.getLogger("hebi.quota")
CACHE_SECONDS = 30.0
WALK_LIMIT = 200_000


class UploadQuota:
    def __init__(self, roots: Roots, limit: int, *, cache_seconds: float = CACHE_SECONDS, walk_limit: int = WALK_LIMIT):
        self.roots = roots
        self.limit = limit  # 0: no quota
        self.cache_seconds = cache_seconds
        self.walk_limit = walk_limit
        self._lock = threading.Lock()
        self._used: int | None = None
        self._measured_at = 0.0
        self._reserved = 0

    def _usage(self) -> int:
        """Bytes stored under the writable roots (lock held), measured at most every cache_seconds."""
        now = time.monotonic()
        if self._used is None or now - self._measured_at > self.cache_seconds:
            self._used = sum(tree_bytes(root.path, self.walk_limit) for root in self.roots if root.writable)
            self._measured_at = now
        return self._used

    def _refuse(self, used: int, more: int) -> UserError:
        return UserError(
            f"this upload would pass your storage quota of {self.limit} bytes: {used} bytes are already in your "
            f"writable folders and it needs {more} more. Delete files you no longer need (old job outputs "
            "are the usual), or ask your administrator for a larger quota.", 413,
            quota_bytes=self.limit, used_bytes=used)

    @contextmanager
    def upload(self, replacing: Path, declared: int | None) -> Iterator[Callable[[int], None]]:
        """Around storing one upload to ``replacing``: refuses at once when ``declared`` bytes would not
        fit, then yields ``take(n)`` to call for each chunk before it is written (it raises
        a 413 UserError when the chunk would not fit). The file being replaced frees its own size."""
        if not self.limit:
            yield lambda n: None
            return
        try:
            freed = replacing.stat().st_size if replacing.is_file() else 0
        except OSError:
            freed = 0
        taken = 0

        def fits(more: int) -> None:
            used = self._usage() + self._reserved - freed
            if used + more > self.limit:
                raise self._refuse(max(used, 0), more)

        def take(n: int) -> None:
            nonlocal taken
            with self._lock:
                fits(n)
                self._reserved += n
                taken += n

        with self._lock:
            fits(declared or 0)
        try:
            yield take
        except BaseException:
            with self._lock:
                self._reserved -= taken
            raise
        with self._lock:
            self._reserved -= taken
            if self._used is not None:
                self._used += taken - freed


def tree_bytes(folder: Path, limit: int) -> int:
    """Sizes of the files under ``folder``, symlinks not followed, at most ``limit`` entries looked at."""
    total, seen, pending = 0, 0, [str(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        log.warning("quota: stopped measuring %s after %d entries; the figure is a lower bound",
                                    folder, limit)
                        return total
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # vanished while measuring
        except OSError:
            continue
    return total
