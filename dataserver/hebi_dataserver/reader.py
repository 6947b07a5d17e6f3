"""Reading a selection of a dataset: uncompressed chunks straight from the file, in parallel; else h5py.

For uncompressed data HDF5 adds little but costs much: one frame of a stack chunked (16, 256, 256) is
read by HDF5 as 64 scattered hyperslabs one after the other (about 7x slower than a frame-shaped chunk,
see docs/dataserver.md). Yet inside each such chunk the frame is one contiguous 256 KiB run. So when a
dataset is chunked or contiguous, unfiltered, not virtual and not externally stored, this module asks
HDF5 only *where* each chunk is (``get_chunk_info_by_coord``) and reads the byte runs itself with
``os.preadv`` on a thread pool, straight into the result array. Everything else (compressed chunks,
strided selections, strings, compounds, virtual datasets) goes through h5py, whose chunk cache is
sized by the open-file cache.
"""
from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

from .downsample import run_inline
from .errors import DataError
from .files import OpenFile
from .selection import Selection

# Give up on direct reads when the byte runs cover more than this many times the bytes wanted
# (e.g. a sinogram row across frame-shaped chunks): HDF5 then does better.
MAX_WASTE = 4
# Variable-length values are read this many at first, then in blocks of about this many bytes.
VARIABLE_BLOCK_ITEMS = 64
VARIABLE_BLOCK_BYTES = 4 << 20


def direct_readable(dataset: h5py.Dataset) -> bool:
    dtype = dataset.dtype
    if dtype.kind not in "biuf" or dtype.hasobject or dataset.shape is None or dataset.size == 0:
        return False
    if dataset.is_virtual or dataset.external:
        return False
    plist = dataset.id.get_create_plist()
    if plist.get_nfilters() > 0:
        return False
    return plist.get_layout() in (h5py.h5d.CHUNKED, h5py.h5d.CONTIGUOUS)


def value_bytes(value) -> int:
    """Bytes a value read from HDF5 holds, variable-length strings and arrays counted as they are."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        return value.nbytes + sum(value_bytes(item) for item in value.reshape(-1))
    if isinstance(value, (np.ndarray, np.generic)):
        return value.nbytes
    if isinstance(value, (bytes, str)):
        return len(value)
    return 8


def decompressed_chunk_bytes(dataset: h5py.Dataset) -> int:
    """How much HDF5 must decompress at once to read any value: a whole chunk of a filtered dataset.
    0 when nothing is decompressed (contiguous, compact, or chunked without filters: read in part)."""
    if dataset.chunks is None or dataset.id.get_create_plist().get_nfilters() == 0:
        return 0
    return math.prod(dataset.chunks) * dataset.dtype.itemsize


def chunks_crossed(dataset: h5py.Dataset, selection: Selection) -> int:
    """How many chunks a selection of a chunked dataset crosses, from its shape alone."""
    count = 1
    for member, chunk in zip(selection.box, dataset.chunks):
        taken = range(member.start, member.stop, member.step)
        if not taken:
            return 0
        # Steps shorter than a chunk cannot skip one; longer ones land in a chunk each.
        count *= len(taken) if member.step >= chunk else taken[-1] // chunk - taken[0] // chunk + 1
    return count


class SelectionReader:
    """Reads selections; one instance per app, sharing a small thread pool."""

    def __init__(self, threads: int = 2):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hebi-read")
        self.threads = threads

    def read(self, handle: OpenFile, dataset: h5py.Dataset, selection: Selection):
        """The selected values as h5py returns them (ndarray, scalar, or h5py.Empty)."""
        if dataset.shape is None:
            return dataset[()]
        if dataset.shape == ():
            return dataset[()]
        if selection.unit_steps and direct_readable(dataset):
            result = self._read_direct(handle, dataset, selection)
            if result is not None:
                return result
        return dataset[selection.members]

    def read_variable(self, dataset: h5py.Dataset, selection: Selection, limit: int, what: str):
        """Variable-length values (strings, ragged arrays) are only as big as they turn out to be: they
        are read a block of rows at a time and counted, and refused (413) once they pass ``limit``."""
        dims = [d for d, m in enumerate(selection.members) if isinstance(m, slice)]
        if dataset.shape in (None, ()) or not dims or selection.size == 0:
            return _counted(self.read(None, dataset, selection), 0, limit, what)
        dim, member, rows = dims[0], selection.members[dims[0]], selection.shape[0]
        per_row = selection.size // rows
        parts, used, start, block = [], 0, 0, max(1, VARIABLE_BLOCK_ITEMS // per_row)
        while start < rows:
            stop = min(rows, start + block)
            members = list(selection.members)
            members[dim] = slice(member.start + start * member.step, member.start + stop * member.step,
                                 member.step)
            part = dataset[tuple(members)]
            used = _counted(part, used, limit, what)
            parts.append(part)
            # Small values: take bigger blocks, up to about VARIABLE_BLOCK_BYTES of them at a time.
            average = used / (stop * per_row)
            block = max(1, min(rows, int(VARIABLE_BLOCK_BYTES / max(average, 1.0)) // per_row))
            start = stop
        return np.concatenate(parts, axis=0)

    def single_run(self, dataset: h5py.Dataset, selection: Selection) -> tuple[int, int] | None:
        """(file offset, byte count) when the selection is one contiguous run of the file, else None.

        A frame of a stack chunked frame by frame is such a run: it can be sent as the file's own bytes
        (``read_run``) without ever being an array.
        """
        if not (selection.unit_steps and direct_readable(dataset)) or selection.size == 0:
            return None
        lo = np.array([s.start for s in selection.box], dtype=np.int64)
        hi = np.array([s.stop for s in selection.box], dtype=np.int64)
        if dataset.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS:
            chunk = np.array(dataset.shape, dtype=np.int64)
            origin = np.zeros_like(lo)
            offset = dataset.id.get_offset()
        else:
            chunk = np.array(dataset.chunks, dtype=np.int64)
            origin = lo // chunk * chunk
            if ((hi - 1) // chunk * chunk != origin).any():
                return None  # spans more than one chunk
            offset, _ = _chunk_offset(dataset, tuple(int(x) for x in origin))
        if offset is None:
            return None
        strides = np.array([int(np.prod(chunk[d + 1:], dtype=np.int64)) for d in range(len(chunk))],
                           dtype=np.int64)
        first = int(((lo - origin) * strides).sum())
        last = int(((hi - 1 - origin) * strides).sum())
        if last - first + 1 != selection.size:
            return None
        itemsize = dataset.dtype.itemsize
        return offset + first * itemsize, selection.size * itemsize

    def read_run(self, handle: OpenFile, offset: int, nbytes: int) -> list[bytes]:
        """The run as bytes objects (parts read side by side), ready to be sent as they are."""
        parts = self.threads if nbytes >= (4 << 20) else 1
        step = -(-nbytes // parts)
        pieces: dict[int, bytes] = {}

        def one(start: int) -> None:
            want = min(step, nbytes - start)
            data = os.pread(handle.fd, want, offset + start)
            if len(data) != want:
                raise OSError("the file ends before the data it describes (truncated?)")
            pieces[start] = data

        run_inline(self.pool, one, list(range(0, nbytes, step)), self.threads)
        return [pieces[start] for start in sorted(pieces)]

    def open_run(self, handle: OpenFile, offset: int, nbytes: int) -> FileRun | None:
        """The run as a file object for ``wsgi.file_wrapper``: gunicorn then sends it with sendfile,
        straight from the page cache to the socket. None where /proc/self/fd is not available."""
        try:
            # A new open of the same inode (not a dup: a dup would share its file position with every
            # other request's).
            fd = os.open(f"/proc/self/fd/{handle.fd}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        if os.fstat(fd).st_ino != handle.identity.inode or os.fstat(fd).st_size < offset + nbytes:
            os.close(fd)
            return None
        os.lseek(fd, offset, os.SEEK_SET)
        return FileRun(fd, nbytes)

    # -- the direct path ----------------------------------------------------------------------------

    def _read_direct(self, handle: OpenFile, dataset: h5py.Dataset, selection: Selection):
        box = selection.box
        lo = np.array([s.start for s in box], dtype=np.int64)
        hi = np.array([s.stop for s in box], dtype=np.int64)
        box_shape = tuple(int(n) for n in hi - lo)
        itemsize = dataset.dtype.itemsize
        out = np.empty(box_shape, dtype=dataset.dtype)
        if out.size == 0:
            return out.reshape(selection.shape)
        plist = dataset.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.CONTIGUOUS:
            chunk = tuple(dataset.shape)
            grid = [range(1)] * len(chunk)
            locate = lambda coord: (dataset.id.get_offset(), None)  # noqa: E731
        else:
            chunk = dataset.chunks
            grid = [range(int(a) // c, (int(b) - 1) // c + 1) for a, b, c in zip(lo, hi, chunk)]
            locate = lambda coord: _chunk_offset(dataset, coord)  # noqa: E731
        chunk_strides = np.array([int(np.prod(chunk[d + 1:], dtype=np.int64)) for d in range(len(chunk))],
                                 dtype=np.int64)
        tasks = []
        wanted = out.size * itemsize
        spanned = 0
        fill = dataset.fillvalue
        for index in itertools.product(*grid):
            origin = np.array(index, dtype=np.int64) * np.array(chunk, dtype=np.int64)
            a = np.maximum(lo, origin)
            b = np.minimum(hi, origin + np.array(chunk, dtype=np.int64))
            offset, _ = locate(tuple(int(x) for x in origin))
            out_region = tuple(slice(int(x - l), int(y - l)) for x, y, l in zip(a, b, lo))
            if offset is None:  # never written: HDF5 would return the fill value
                out[out_region] = fill
                continue
            first = int(((a - origin) * chunk_strides).sum())
            last = int(((b - 1 - origin) * chunk_strides).sum())
            span = last - first + 1
            spanned += span * itemsize
            tasks.append((offset + first * itemsize, span, out[out_region], tuple(int(n) for n in b - a)))
        if spanned > MAX_WASTE * wanted + (1 << 20):
            return None
        byte_strides = tuple(int(s) * itemsize for s in chunk_strides)
        fd = handle.fd

        def run(task):
            file_offset, span, target, region_shape = task
            if target.flags.c_contiguous and span == target.size:
                _pread_into(fd, memoryview(target.reshape(-1).view(np.uint8)), file_offset)
                return
            buffer = np.empty(span, dtype=dataset.dtype)
            _pread_into(fd, memoryview(buffer.view(np.uint8)), file_offset)
            target[...] = np.lib.stride_tricks.as_strided(buffer, shape=region_shape, strides=byte_strides)

        tasks = _split_large(tasks, self.threads)
        if len(tasks) == 1:
            run(tasks[0])
        else:
            run_inline(self.pool, run, tasks, self.threads)
        return out.reshape(selection.shape)


def _counted(values, used: int, limit: int, what: str) -> int:
    used += value_bytes(values)
    if used > limit:
        raise DataError(f"{what}: its variable-length values (strings or ragged arrays) pass {limit} bytes, "
                        "more than one request may read; select fewer of them", 413, limit_bytes=limit)
    return used


def _chunk_offset(dataset: h5py.Dataset, coord: tuple[int, ...]):
    info = dataset.id.get_chunk_info_by_coord(coord)
    return info.byte_offset, info.size


def _pread_into(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise OSError("the file ends before the data it describes (truncated?)")
        done += n


def _split_large(tasks, threads: int):
    """One big contiguous run (a frame-shaped chunk) is split so that every reader thread has a part."""
    if threads < 2 or len(tasks) != 1:
        return tasks
    file_offset, span, target, _ = tasks[0]
    if not (target.flags.c_contiguous and span == target.size) or target.nbytes < (4 << 20):
        return tasks
    flat = target.reshape(-1)
    step = -(-flat.size // threads)
    return [(file_offset + start * target.itemsize, min(flat.size, start + step) - start,
             flat[start:start + step], (min(flat.size, start + step) - start,))
            for start in range(0, flat.size, step)]


class FileRun:
    """``nbytes`` of an open file from its current position: ``fileno`` for sendfile, ``read`` otherwise."""

    def __init__(self, fd: int, nbytes: int):
        self.fd = fd
        self.left = nbytes

    def fileno(self) -> int:
        return self.fd

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = os.read(self.fd, size) if size else b""
        self.left -= len(data)
        return data

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self.fd, position, whence)  # socket.sendfile's fallback positions the file itself

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
