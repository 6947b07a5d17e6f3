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
written (if absolute), relative to the file's folder, and relative to the server's working directory. If
any of those exists outside the roots the read is refused. HDF5_EXT_PREFIX, HDF5_VDS_PREFIX and
HDF5_EXTFILE_PREFIX would add places, so every reader removes them from its environment at start.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py

from .sandbox import Roots, SandboxError

PREFIX_VARIABLES = ("HDF5_EXT_PREFIX", "HDF5_VDS_PREFIX", "HDF5_EXTFILE_PREFIX", "HDF5_PLUGIN_PRELOAD")


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


def check_dataset_sources(roots: Roots, file_path: Path, dataset: h5py.Dataset, where: str) -> list[Path]:
    """Refuse reading a dataset whose VDS sources or external raw files could lie outside the roots.

    Returns the source files found (inside the roots) so callers can include them in ETags.
    """
    names: list[str] = []
    if dataset.is_virtual:
        names += [source.file_name for source in dataset.virtual_sources() if source.file_name != "."]
    if dataset.external:
        names += [entry[0] for entry in dataset.external]
    found: list[Path] = []
    for name in dict.fromkeys(names):
        for candidate in candidates(file_path, name, with_cwd=True):
            if candidate.exists():
                real = Path(os.path.realpath(candidate))
                if not inside_roots(roots, real):
                    raise SandboxError(f"{where} reads its values from {name}, which is outside your folders; "
                                    "hebi does not read it", 403)
                found.append(real)
    return found
