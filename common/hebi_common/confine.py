"""Confinement of HDF5 links: every file an entity leads to must lie inside the user's roots.

One module for every reader of users' HDF5 files (the dataserver and the runner). The sandbox confines
the file a user names. Inside HDF5 files three things can name *other* files, and
the HDF5 library would open them wherever they are: external links, the source files of virtual datasets
(VDS), and the raw files of datasets with external storage. This module decides which file each of those
would open and refuses any that lies outside the user's roots (symlinks resolved).

External links are never followed by HDF5 here: the reader (the dataserver's ``content.Resolver``) opens their target
itself, through the sandbox, and walks the rest of the path in it. Its rule is HDF5's own search order
without the environment and property prefixes: an absolute target name as written if that file exists,
else the name relative to the linking file's folder.

For VDS and external storage HDF5 does the reading, so every place it might look is checked: the name as
written (if absolute), relative to the file's folder, and relative to the server's working directory; a
printf-style VDS source name (``series_%b.h5``) stands for every file it can match there. If any of those
exists outside the roots the read is refused. Inside each source file the source dataset's path is walked
as HDF5 will walk it, so a soft or external link or a nested VDS there is checked the same way.
HDF5_EXT_PREFIX, HDF5_VDS_PREFIX and HDF5_EXTFILE_PREFIX would add places, so every reader removes them
from its environment at start.
"""
from __future__ import annotations

import glob
import os
import posixpath
import re
from collections.abc import Callable, MutableMapping
from contextlib import ExitStack
from pathlib import Path

import h5py

from .errors import UserError
from .sandbox import Roots, SandboxError

PREFIX_VARIABLES = ("HDF5_EXT_PREFIX", "HDF5_VDS_PREFIX", "HDF5_EXTFILE_PREFIX", "HDF5_PLUGIN_PRELOAD")
#: Links and nested virtual datasets followed from one dataset before its read is refused.
MAX_SOURCE_HOPS = 32
#: Plain source datasets remembered (``check_dataset_sources(plain=...)``) before the memory starts afresh.
MAX_PLAIN_SOURCES = 65536


def clear_hdf5_prefixes(environ=os.environ) -> None:
    """HDF5 reads these at each access; without them it looks only where ``confine`` checks."""
    for name in PREFIX_VARIABLES:
        environ.pop(name, None)


def inside_roots(roots: Roots, path: Path) -> bool:
    try:
        roots.to_ref(path)
        return True
    except SandboxError:
        return False


def candidates(linking_file: Path, target_name: str, *, with_cwd: bool) -> list[Path]:
    """Where HDF5 could look for ``target_name`` named in ``linking_file``, in its search order."""
    name = target_name.replace("\\", "/")
    found: list[Path] = []
    if os.path.isabs(name):
        found.append(Path(name))
        name = os.path.basename(name)  # HDF5 then retries the bare file name relative to the file
    found.append(linking_file.parent / name)
    if with_cwd:
        found.append(Path(os.getcwd()) / name)
    return found


def external_link_target(roots: Roots, linking_file: Path, link: h5py.ExternalLink, where: str) -> Path | None:
    """The file an external link leads to, inside the roots; None when it is dangling.

    Raises SandboxError 403 when the target exists outside the user's roots.
    """
    for candidate in candidates(linking_file, link.filename, with_cwd=False):
        if candidate.is_file():
            real = Path(os.path.realpath(candidate))
            if not inside_roots(roots, real):
                raise SandboxError(f"the external link at {where} leads to {link.filename}, which is outside "
                                "your folders; hebi does not follow it", 403)
            return real
    return None


def check_dataset_sources(roots: Roots, file_path: Path, dataset: h5py.Dataset, where: str, *,
                          open_file: Callable[[Path], h5py.File] | None = None,
                          each_dataset: Callable[[Path, h5py.Dataset], None] | None = None,
                          plain: MutableMapping[tuple, bool] | None = None) -> list[Path]:
    """Refuse reading a dataset when any file HDF5 could open to read it lies outside the roots.

    HDF5 opens, by its own search rules: the dataset's external raw files; its VDS source files, where a
    printf-style name (``series_%b.h5``) stands for every file it matches; and in each source file,
    whatever the source dataset's path leads to (soft and external links, a VDS of its own).
    ``open_file`` opens a source file (already checked) for that walk; by default h5py opens it for the
    call. ``each_dataset(file, dataset)`` is called for the dataset and every source dataset reached,
    for checks of the caller's own (e.g. how big their chunks are). ``plain`` is a cache the caller may
    keep (with one ``each_dataset``) of source datasets found plain: reached by hard links only, neither
    virtual nor externally stored. Such a source is not opened again while its file is unchanged (same
    inode, size, mtime and ctime, which no user can set back), so a VDS over many files stays cheap.
    Returns the files found (all inside the roots) so callers can include them in ETags.
    """
    with ExitStack() as stack:
        if open_file is None:
            def open_file(path: Path) -> h5py.File:
                return stack.enter_context(h5py.File(path, "r", locking=False))
        check = _SourceCheck(roots, where, open_file, each_dataset, plain)
        check.dataset(file_path, dataset, 0)
        return list(check.found)


class _SourceCheck:
    """One walk over the files HDF5 would open to read one dataset."""

    def __init__(self, roots: Roots, where: str, open_file: Callable[[Path], h5py.File],
                 each_dataset: Callable[[Path, h5py.Dataset], None] | None,
                 plain: MutableMapping[tuple, bool] | None):
        self.roots = roots
        self.where = where
        self.open_file = open_file
        self.each_dataset = each_dataset
        self.plain = plain
        self.found: dict[Path, None] = {}
        self.walked: set[tuple[Path, str]] = set()

    def _deeper(self, depth: int) -> None:
        if depth > MAX_SOURCE_HOPS:
            raise SandboxError(f"{self.where} reads its values through more than {MAX_SOURCE_HOPS} links and "
                               "virtual datasets in a row; hebi does not read it", 403)

    def dataset(self, file_path: Path, dataset: h5py.Dataset, depth: int) -> None:
        self._deeper(depth)
        if self.each_dataset is not None:
            self.each_dataset(file_path, dataset)
        if dataset.external:
            for entry in dataset.external:
                self.files(file_path, entry[0])
        if dataset.is_virtual:
            sources = {(source.file_name, source.dset_name) for source in dataset.virtual_sources()}
            for file_name, dset_name in sorted(sources):
                for source_file in [file_path] if file_name == "." else self.files(file_path, file_name):
                    self.source(source_file, dset_name, depth + 1)

    def files(self, linking_file: Path, name: str) -> list[Path]:
        """The files HDF5 could open for ``name`` (named in ``linking_file``); any outside refuses."""
        found: list[Path] = []
        for candidate in candidates(linking_file, name, with_cwd=True):
            for path in _printf_matches(candidate) if "%" in name else [candidate]:
                if not path.exists():
                    continue
                real = Path(os.path.realpath(path))
                if not inside_roots(self.roots, real):
                    which = "" if path.name == os.path.basename(name) else f" (as {path.name})"
                    raise SandboxError(f"{self.where} reads its values from {name}{which}, which is outside "
                                       "your folders; hebi does not read it", 403)
                found.append(real)
                self.found[real] = None
        return list(dict.fromkeys(found))

    def source(self, file_path: Path, dset_name: str, depth: int) -> None:
        if (file_path, dset_name) in self.walked:
            return
        self.walked.add((file_path, dset_name))
        key = None
        if self.plain is not None:
            try:
                stat = os.stat(file_path)
            except OSError:
                return  # HDF5 cannot open it either
            key = (str(file_path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
                   dset_name)
            if key in self.plain:
                return
        try:
            h5 = self.open_file(file_path)
        except (OSError, UserError):  # HDF5 cannot open it either, and reads the fill value instead
            return
        if self.walk(file_path, h5, dset_name, depth) and key is not None:
            if len(self.plain) >= MAX_PLAIN_SOURCES:
                self.plain.clear()
            self.plain[key] = True

    def walk(self, file_path: Path, h5: h5py.File, path: str, depth: int) -> bool:
        """Follow ``path`` in ``h5`` one link at a time, as HDF5 will, checking every file it leads to.
        True when the walk stayed plain: hard links only, to no virtual or externally stored dataset."""
        self._deeper(depth)
        group = h5["/"]
        parts = [part for part in path.split("/") if part]
        for index, part in enumerate(parts):
            rest = "/".join(parts[index + 1:])
            if "%" in part:  # HDF5 expands %b in source dataset names too: walk every member it matches
                for name in _printf_members(group, part):
                    self.walk(file_path, h5, posixpath.join(group.name, name, rest), depth + 1)
                return False
            try:
                link = group.get(part, getlink=True)
            except (KeyError, OSError, RuntimeError):
                return True  # nothing HDF5 can follow either
            if isinstance(link, h5py.SoftLink):  # stays in this file: as plain as where it leads
                target = posixpath.join(group.name, link.path)  # an absolute link.path replaces group.name
                return self.walk(file_path, h5, posixpath.join(target, rest), depth + 1)
            if isinstance(link, h5py.ExternalLink):
                for target_file in self.files(file_path, link.filename):
                    self.source(target_file, posixpath.join(link.path, rest), depth + 1)
                return False
            if not isinstance(link, h5py.HardLink):
                return True  # dangling or user-defined: HDF5 reads the fill value
            try:
                obj = group.get(part)
            except (KeyError, OSError, RuntimeError):
                return True
            if isinstance(obj, h5py.Dataset) and not rest:
                self.dataset(file_path, obj, depth + 1)
                return not (obj.is_virtual or obj.external)
            if not isinstance(obj, h5py.Group):
                return True
            group = obj
        return True


_PRINTF = re.compile(r"%(.)", re.DOTALL)


def _printf_parts(text: str) -> tuple[str, str]:
    """A printf-style VDS name as (glob pattern, regular expression): ``%b`` is the block number
    (decimal digits), ``%%`` a literal ``%``. HDF5 refuses other specifiers; they are taken literally."""
    globbed, regex, position = [], [], 0
    for match in _PRINTF.finditer(text):
        literal = text[position:match.start()]
        globbed.append(glob.escape(literal))
        regex.append(re.escape(literal))
        if match.group(1) == "b":
            globbed.append("*")
            regex.append("[0-9]+")
        else:
            kept = "%" if match.group(1) == "%" else match.group(0)
            globbed.append(glob.escape(kept))
            regex.append(re.escape(kept))
        position = match.end()
    globbed.append(glob.escape(text[position:]))
    regex.append(re.escape(text[position:]))
    return "".join(globbed), "".join(regex)


def _printf_matches(pattern: Path) -> list[Path]:
    """Every existing file a printf-style source name can stand for, and the name as written."""
    globbed, regex = _printf_parts(str(pattern))
    expression = re.compile(regex)
    return [pattern, *(Path(path) for path in sorted(glob.glob(globbed)) if expression.fullmatch(path))]


def _printf_members(group: h5py.Group, part: str) -> list[str]:
    expression = re.compile(_printf_parts(part)[1])
    literal = [part] if part in group else []  # what an external link's path names (never expanded)
    return literal + [name for name in group.keys() if expression.fullmatch(name) and name != part]


# -- for programs that run on a user's files (the runner) ------------------------------------------

def missing_sources(file_path: Path, dataset: h5py.Dataset) -> list[str]:
    """The files a dataset's values come from (its VDS sources, its external raw files) that HDF5 will not
    find. Reading it then gives the fill value where they are missing (VDS), or fails (external raw files):
    a viewer may show that, but a job given such a dataset has not got its input."""
    names = [entry[0] for entry in dataset.external or ()]
    if dataset.is_virtual:
        names += [source.file_name for source in dataset.virtual_sources() if source.file_name != "."]
    missing = []
    for name in dict.fromkeys(names):
        places = candidates(file_path, name, with_cwd=True)
        if not any(p.exists() for place in places for p in (_printf_matches(place) if "%" in name else [place])):
            missing.append(name)
    return missing


JOB_ROOTS_VARIABLE = "HEBI_JOB_ROOTS"


def job_roots(environ, reads: list[Path], writes: Path) -> Roots:
    """The roots a job may use: ``HEBI_JOB_ROOTS`` (JSON ``{"data": {"path": "/abs", "writable": false},
    ...}``, set by the API for every job) or, when it is absent (someone running the program by hand),
    the folders in ``reads`` read-only and ``writes`` writable. ValueError when the variable is malformed."""
    import json

    from .sandbox import Root
    text = environ.get(JOB_ROOTS_VARIABLE)
    if text is None:
        made = [Root(f"read{index}", Path(os.path.realpath(folder)), False) for index, folder in enumerate(reads)]
        return Roots([Root("output", Path(os.path.realpath(writes)), True), *made])
    try:
        described = json.loads(text)
        made = [Root(str(name), Path(os.path.realpath(root["path"])), root.get("writable") is True)
                for name, root in described.items() if os.path.isabs(root["path"])]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ValueError(f"{JOB_ROOTS_VARIABLE} must be a JSON object {{name: {{\"path\": absolute path, "
                         "\"writable\": true/false}}}}") from None
    if len(made) != len(described) or not made:
        raise ValueError(f"{JOB_ROOTS_VARIABLE} must name at least one root, each with an absolute path")
    return Roots(made)


def job_roots_text(roots: Roots) -> str:
    """``HEBI_JOB_ROOTS`` for a job of the user whose roots these are (what ``job_roots`` reads)."""
    import json
    return json.dumps({root.name: {"path": str(root.path), "writable": root.writable} for root in roots})


def confined_path(roots: Roots, path: Path, what: str, *, for_writing: bool = False) -> Path:
    """``path`` with symlinks resolved, refused (SandboxError 403) unless it lies in one of the roots, a
    writable one for writing."""
    real = Path(os.path.realpath(path))
    for root in roots:
        if (real == root.path or root.path in real.parents) and (root.writable or not for_writing):
            return real
    kind = "writable folders" if for_writing else "folders"
    raise SandboxError(f"{what} {path} is outside the job's {kind}; hebi does not "
                       f"{'write' if for_writing else 'read'} it", 403)


class ConfinedFile:
    """An HDF5 file whose objects are found with every link resolved here, inside the roots: soft and
    external links are walked one at a time (HDF5 never follows one), and a dataset is handed out only
    when the files its values come from (VDS sources, external raw files) lie inside the roots too.
    ``locate`` gives the file and link-free path of a dataset, which other processes can then open
    directly without any link left to follow."""

    def __init__(self, roots: Roots, path: Path, what: str):
        self.roots = roots
        self.path = confined_path(roots, path, what)
        #: Why the last ``locate`` found nothing, when it was an external link to no file: its own words for
        #: the user (a link made elsewhere, or to a folder that is not this user's, leads nowhere here).
        self.missing: str = ""
        self._stack = ExitStack()
        self._files: dict[Path, h5py.File] = {}
        self.handle = self._open(self.path)

    def _open(self, path: Path) -> h5py.File:
        if path not in self._files:
            self._files[path] = self._stack.enter_context(h5py.File(path, "r"))
        return self._files[path]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ConfinedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def locate(self, inner: str) -> tuple[Path, str, h5py.HLObject] | None:
        """(real file, path without links, object) for ``inner``; None when nothing is there."""
        self.missing = ""
        file_path, h5, parts, hops = self.path, self.handle, [p for p in inner.split("/") if p], 0
        group, index = h5["/"], 0
        while index < len(parts):
            try:
                link = group.get(parts[index], getlink=True)
            except (KeyError, OSError, RuntimeError):
                return None
            rest = parts[index + 1:]
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                hops += 1
                if hops > MAX_SOURCE_HOPS:
                    raise SandboxError(f"/{inner} in {self.path.name} goes through more than {MAX_SOURCE_HOPS} "
                                       "links; hebi does not follow them", 403)
                if isinstance(link, h5py.SoftLink):
                    target = posixpath.join(group.name, link.path)  # an absolute path replaces it
                else:
                    where = f"/{'/'.join(parts[:index + 1])} in {file_path.name}"
                    found = external_link_target(self.roots, file_path, link, where)
                    if found is None:
                        self.missing = f"the external link at {where} leads to {link.filename}, which is not there"
                        return None
                    file_path, h5, target = found, self._open(found), link.path
                parts, group, index = [p for p in target.split("/") if p] + rest, h5["/"], 0
                continue
            if not isinstance(link, h5py.HardLink):
                return None
            obj = group.get(parts[index])
            index += 1
            if index < len(parts):
                if not isinstance(obj, h5py.Group):
                    return None
                group = obj
            else:
                if isinstance(obj, h5py.Dataset):
                    check_dataset_sources(self.roots, file_path, obj, f"/{inner} in {self.path.name}",
                                          open_file=self._open)
                return file_path, "/" + "/".join(parts), obj
        return file_path, "/", h5["/"]

    def get(self, inner: str) -> h5py.HLObject | None:
        found = self.locate(inner)
        return None if found is None else found[2]


#: Links one whole-file check visits, over all the files it reaches; a scan has hundreds.
MAX_CHECKED_LINKS = 100_000


def check_whole_file(roots: Roots, path: Path, what: str, *, max_links: int = MAX_CHECKED_LINKS) -> None:
    """Refuse (SandboxError 403) a file if anything in it, or in the files it leads to, makes HDF5 open
    a file outside the roots: external links, VDS sources, external raw storage.

    For programs that let HDF5 follow every link (a real Savu reading a job's dataset), where hebi
    cannot walk each link as it is used the way ConfinedFile does. Files reached through external links
    are checked the same way, each once. More than ``max_links`` links in all are refused (413): such a
    file is not a scan, and checking it would take unbounded time.
    """
    pending = [confined_path(roots, path, what)]
    seen: set[Path] = set()
    visited = 0
    with ExitStack() as stack:
        files: dict[Path, h5py.File] = {}

        def open_file(file_path: Path) -> h5py.File:
            if file_path not in files:
                files[file_path] = stack.enter_context(h5py.File(file_path, "r", locking=False))
            return files[file_path]

        while pending:
            file_path = pending.pop()
            if file_path in seen:
                continue
            seen.add(file_path)
            h5 = open_file(file_path)
            names: list[str] = []
            room = max_links - visited
            h5.visit_links(lambda name, names=names, room=room: names.append(name) or (len(names) > room or None))
            visited += len(names)
            if visited > max_links:
                raise SandboxError(f"{what} {path.name} holds more than {max_links} links; hebi does not run "
                                   "on it", 413)
            for name in names:
                where = f"/{name} in {file_path.name}"
                link = h5.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    target = external_link_target(roots, file_path, link, where)
                    if target is not None:
                        pending.append(target)
                elif isinstance(link, h5py.HardLink):
                    obj = h5.get(name)
                    if isinstance(obj, h5py.Dataset) and (obj.is_virtual or obj.external):
                        check_dataset_sources(roots, file_path, obj, where, open_file=open_file)
