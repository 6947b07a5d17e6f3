"""The open-file cache: HDF5 files stay open between requests, each with a sized chunk cache.

h5grove opens and closes the file on every request, which throws away HDF5's chunk cache (so the next
slice of a compressed stack decodes the same chunks again) and re-resolves every external link. Here a
small LRU keeps read-only handles, each with a raw file descriptor beside it for the parallel chunk
reader. A handle is reused only while the file on disk is the one it opened (same inode, size and
mtime): a file that a running job is still writing changes, so the next request opens it afresh and
reads what is there now (never ``H5Drefresh``: it rebuilds a dataset's chunk index under the feet of
other threads reading the same dataset). Files are opened with ``swmr=True`` (readers of files written in SWMR mode see
a consistent state) and without HDF5 file locking (a writer holding a lock must not block viewers).

Handles are leased: a request holds a lease for as long as it reads, and a handle dropped from the cache
(too old, or the file changed) is closed only when its last lease ends, so no request ever reads from a
closed file.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py

try:  # compressed datasets (Blosc, bitshuffle, LZ4, ...) as written by detectors and Savu
    import hdf5plugin  # noqa: F401
except ImportError:  # pragma: no cover - hdf5plugin is a dependency, but reading plain files needs none
    pass

from .errors import DataError

STALE_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class FileIdentity:
    """What makes a file on disk the same file: any write changes size or mtime."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def token(self) -> str:
        return f"{self.device:x}.{self.inode:x}.{self.size:x}.{self.mtime_ns:x}"


@dataclass(eq=False)
class OpenFile:
    """One open HDF5 file: the h5py handle, a raw descriptor of the same inode, and who is reading it."""

    path: Path
    identity: FileIdentity
    h5: h5py.File
    fd: int
    leases: int = 0
    retired: bool = False
    closed: threading.Event = field(default_factory=threading.Event, repr=False)

    def close(self) -> None:
        try:
            self.h5.close()
        finally:
            os.close(self.fd)
            self.closed.set()


class OpenFileCache:
    """An LRU of open HDF5 files, keyed by real path. ``lease(path)`` is the only way in."""

    def __init__(self, max_files: int = 16, chunk_cache_bytes: int = 64 * 1024**2):
        self.max_files = max_files
        self.chunk_cache_bytes = chunk_cache_bytes
        self._files: OrderedDict[str, OpenFile] = OrderedDict()
        self._lock = threading.Lock()
        self._opening: dict[str, threading.Lock] = {}
        self.opened = 0  # how many times a file was really opened (tests check reuse)

    @contextmanager
    def lease(self, path: Path, shown_as: str) -> Iterator[OpenFile]:
        handle = self._acquire(path, shown_as)
        try:
            yield handle
        finally:
            self._release(handle)

    def _acquire(self, path: Path, shown_as: str) -> OpenFile:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"File not found: {shown_as}", 404) from None
        except PermissionError:
            raise DataError(f"Cannot read file: Permission denied: {shown_as}", 403) from None
        if not Path(path).is_file():
            raise DataError(f"{shown_as} is a folder, not an HDF5 file", 400)
        identity = FileIdentity.of(stat)
        key = str(path)
        with self._lock:
            cached = self._lease_if_current(key, identity)
            if cached is not None:
                return cached
            opening = self._opening.setdefault(key, threading.Lock())
        # One thread opens a file at a time: HDF5 shares one open file per inode within a process, and
        # two h5py handles of the same file interfere when either is closed.
        with opening:
            with self._lock:
                cached = self._lease_if_current(key, identity)
                if cached is not None:
                    return cached
                stale = self._files.pop(key, None)
                if stale is not None:  # the file changed on disk: this handle must go first
                    self._retire(stale)
            if stale is not None and not stale.closed.is_set():
                # Opened while the old handle lives, the new one would see the old metadata.
                # Requests are short; wait for them to finish.
                stale.closed.wait(STALE_WAIT_SECONDS)
            fresh = self._open(Path(path), identity, shown_as)
            with self._lock:
                self._files[key] = fresh
                fresh.leases += 1
                while len(self._files) > self.max_files:
                    _, evicted = self._files.popitem(last=False)
                    self._retire(evicted)
        return fresh

    def _lease_if_current(self, key: str, identity: FileIdentity) -> OpenFile | None:
        cached = self._files.get(key)
        if cached is not None and cached.identity == identity:
            self._files.move_to_end(key)
            cached.leases += 1
            return cached
        return None

    def _open(self, path: Path, identity: FileIdentity, shown_as: str) -> OpenFile:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except PermissionError:
            raise DataError(f"Cannot read file: Permission denied: {shown_as}", 403) from None
        except FileNotFoundError:
            raise DataError(f"File not found: {shown_as}", 404) from None
        try:
            # The descriptor must name the inode that was checked, not one swapped in since.
            if os.fstat(fd).st_ino != identity.inode:
                raise DataError(f"{shown_as} changed while it was being opened; try again", 409)
            nslots = max(521, (self.chunk_cache_bytes // (256 * 1024)) * 10 + 1)
            h5 = h5py.File(path, "r", swmr=True, locking=False,
                           rdcc_nbytes=self.chunk_cache_bytes, rdcc_nslots=nslots)
        except DataError:
            os.close(fd)
            raise
        except (OSError, RuntimeError, ValueError) as err:
            os.close(fd)
            raise DataError(f"{shown_as} is not a readable HDF5 file: it is corrupt, truncated, of another "
                            f"format, or still being written without SWMR ({_first_line(err)})", 422) from None
        self.opened += 1
        return OpenFile(path, identity, h5, fd)

    def _retire(self, handle: OpenFile) -> None:
        # Called with self._lock held.
        handle.retired = True
        if handle.leases == 0:
            handle.close()

    def _release(self, handle: OpenFile) -> None:
        with self._lock:
            handle.leases -= 1
            if handle.retired and handle.leases == 0:
                handle.close()

    def close_all(self) -> None:
        with self._lock:
            for handle in self._files.values():
                self._retire(handle)
            self._files.clear()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
