"""Savu process lists (NeXus/HDF5 ``.nxs``): the in-memory model, the reader and the writer.

The reader opens every readable layout seen in real files: Savu 4.2 and 4.0, 2.4 and unversioned lists
with padded group names (``"   1 "``) and ``desc/hide/user`` datasets, very old zero-based lists, lists
without ``iterate_plugin_groups``, ``null`` and ``"None"`` for None, and the plugin/parameter names
Savu's open-time mutations rename. The writer produces exactly the layout Savu 4.2's
``PluginList._save_plugin_list`` writes (see docs/process-lists.md, "The file format").

Plugins the catalogue does not know are kept as they were read (``data`` text, citations) and written
back unchanged; ``PluginEntry.known`` is False for them. Only job submission refuses them
(``hebi_common.savu.validation.check_runnable``).

Stable interface (the runner imports it): ``read_process_list(path) -> ProcessList`` with
``.plugins: list[PluginEntry]`` (``pos, name, module, active, params, known``) and ``.loops: list[Loop]``
(``start, end, iterations``: 1-based plugin positions, both ends included).
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..errors import UserError
from .catalogue import Catalogue, Plugin, default_catalogue

#: The Savu version whose layout the writer produces (written to ``savu_notes/version``).
WRITTEN_VERSION = "4.2"
CITATION_FIELDS = ("description", "doi", "endnote", "bibtex")
POSITION = re.compile(r"^(\d+)([a-z]?)$")

# Savu's open-time mutations (scripts/config_generator/mutations.py): plugins renamed or replaced.
# ``up_to`` = only for lists saved by a Savu older than that version (or unversioned).
PLUGIN_RENAMES = {
    "TimeseriesFieldCorrections": {"new": "DarkFlatFieldCorrection"},
    "Hdf5TomoSaver": {"new": "Hdf5Saver"},
    "DezingFilter": {"new": "DezingerSimple"},
    "SavuLoader": {"new": "SavuNexusLoader"},
    "DistortionCorrection": {"new": "DistortionCorrectionDeprecated", "up_to": 2.4},
}
# Parameter renames for lists older than 2.4; "reconstruction" = every plugin of that kind (BaseRecon).
PARAMETER_RENAMES = {
    "reconstruction": {"center_of_rotation": "centre_of_rotation", "number_of_iterations": "n_iterations",
                       "sino_pad": "outer_pad"},
    "AstraReconGpu": {"reconstruction_type": "algorithm"},
    "AstraReconCpu": {"reconstruction_type": "algorithm"},
}
PARAMETER_RENAMES_UP_TO = 2.4


class ProcessListError(UserError):
    """A file that is not a readable process list, or a list that cannot be written; worded for users."""


@dataclass
class Citation:
    """One NXcite group: ``name`` is the group name (``citation1``, ``Savu``...)."""

    name: str
    description: str = ""
    doi: str = ""
    endnote: str = ""
    bibtex: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, **{key: getattr(self, key) for key in CITATION_FIELDS}}


@dataclass
class PluginEntry:
    pos: str
    name: str
    module: str
    active: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    known: bool = True
    citations: list[Citation] = field(default_factory=list)
    #: The ``data`` JSON exactly as read; written back unchanged for unknown plugins whose params
    #: were not edited, so a facility's own plugin survives a round trip byte for byte.
    raw_data: str | None = None
    #: Keys the stored data lacked and that were filled with the current defaults (as Savu does).
    filled_defaults: list[str] = field(default_factory=list)
    #: What the reader changed to open the entry (renamed plugin or parameter), for the user to see.
    notices: list[str] = field(default_factory=list)

    @property
    def index_key(self) -> tuple[int, str]:
        return split_position(self.pos)

    def copy(self) -> PluginEntry:
        return copy.deepcopy(self)


@dataclass
class Loop:
    start: int
    end: int
    iterations: int

    def to_json(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end, "iterations": self.iterations}


@dataclass
class ProcessList:
    plugins: list[PluginEntry] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    #: ``savu_notes/version`` as read (None when the file had none); the writer always writes 4.2.
    version: str | None = WRITTEN_VERSION
    framework_citations: list[Citation] = field(default_factory=list)

    def copy(self) -> ProcessList:
        return copy.deepcopy(self)

    def positions(self) -> list[str]:
        return [entry.pos for entry in self.plugins]

    def find(self, pos: str) -> int:
        """Index of the plugin at Savu position ``pos`` ("3", "3a"); ProcessListError when absent."""
        pos = str(pos).strip()
        for index, entry in enumerate(self.plugins):
            if entry.pos == pos:
                return index
        shown = ", ".join(self.positions()) or "none, the list is empty"
        raise ProcessListError(f"there is no plugin at position {pos!r} (positions: {shown})", 404)

    def entry(self, pos: str) -> PluginEntry:
        return self.plugins[self.find(pos)]


def split_position(pos: str) -> tuple[int, str]:
    match = POSITION.match(pos)
    if not match:
        raise ProcessListError(f"{pos!r} is not a plugin position: use a number with an optional "
                               "lowercase letter, e.g. 3 or 3a")
    return int(match.group(1)), match.group(2)


# -- values ---------------------------------------------------------------------------------------

def normalise_none(value: Any) -> Any:
    """Savu writes None as JSON null or, inside lists from YAML defaults, as the string "None"."""
    if value == "None":
        return None
    if isinstance(value, list):
        return [normalise_none(item) for item in value]
    if isinstance(value, dict):
        return {key: normalise_none(item) for key, item in value.items()}
    return value


def _version_number(version: str | None) -> float:
    """Savu's ``_version_to_float``: "4.2" -> 4.2, "2.4.1" -> 2.41, None -> 0."""
    if not version:
        return 0.0
    parts = version.split(".")
    try:
        return float(".".join([parts[0], "".join(parts[1:])]))
    except ValueError:
        return 0.0


# -- reading --------------------------------------------------------------------------------------

def _text(dataset) -> str:
    value = dataset[()]
    if getattr(value, "shape", ()) != () and len(value):
        value = value[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _bool(dataset) -> bool:
    value = dataset[()]
    if getattr(value, "shape", ()) != ():
        value = value[0] if len(value) else True
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _read_citations(group, prefix: str | None) -> list[Citation]:
    import h5py
    found = []
    for name in sorted(group, key=_natural):
        child = group[name]
        if not isinstance(child, h5py.Group) or (prefix and not name.startswith(prefix)):
            continue
        found.append(Citation(name, **{key: _text(child[key]) for key in CITATION_FIELDS if key in child}))
    return found


def _natural(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.strip())]


def read_process_list(path: str | os.PathLike[str], catalogue: Catalogue | None = None) -> ProcessList:
    """Open a Savu process list; ProcessListError (with the file named) when it is not one."""
    import h5py
    path = Path(path)
    try:
        _check_file_size(path.stat().st_size, path.name)
        handle = h5py.File(path, "r")
    except FileNotFoundError:
        raise ProcessListError(f"{path.name}: no such file", 404) from None
    except OSError:
        raise ProcessListError(f"{path.name} is not an HDF5 file, so it cannot be a Savu process list") from None
    with handle:
        return _read_guarded(handle, path.name, catalogue or default_catalogue())


#: What one list may expand to when read: Savu's lists are a few hundred kilobytes.
MAX_LIST_BYTES = 64 * 1024 * 1024
MAX_LIST_OBJECTS = 10_000


def _check_file_size(size: int, label: str) -> None:
    # Variable-length strings live uncompressed in the file, so this bounds what they expand to.
    if size > MAX_LIST_BYTES:
        raise ProcessListError(f"{label} is {size // 2**20} MiB; a Savu process list is far smaller (at most "
                               f"{MAX_LIST_BYTES // 2**20} MiB are read)", 413)


def check_layout(handle, label: str) -> None:
    """Refuse, before any value is read, a file that is not made the way Savu makes lists: a link of any
    kind (an external link would read another file, another user's list even), a dataset whose values
    live in other files (virtual or external storage), or datasets (or chunks) that would expand beyond
    MAX_LIST_BYTES. Walks the links themselves, never following one."""
    import h5py
    total, seen = 0, 0
    groups = [("", handle)]
    while groups:
        where, group = groups.pop()
        for name in group:
            seen += 1
            if seen > MAX_LIST_OBJECTS:
                raise ProcessListError(f"{label} holds more than {MAX_LIST_OBJECTS} objects; a Savu process list "
                                       "holds a few hundred", 413)
            path = f"{where}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ProcessListError(f"{label}: {path} is an external link to {link.filename}; a Savu process "
                                       "list holds no links, so hebi does not follow it", 422)
            if isinstance(link, h5py.SoftLink):
                raise ProcessListError(f"{label}: {path} is a soft link to {link.path}; a Savu process list "
                                       "holds no links", 422)
            child = group[name]
            if isinstance(child, h5py.Group):
                groups.append((path, child))
                continue
            if not isinstance(child, h5py.Dataset):
                continue
            if child.is_virtual or child.external:
                raise ProcessListError(f"{label}: {path} reads its values from other files; a Savu process "
                                       "list holds its own values", 422)
            itemsize = child.dtype.itemsize
            size = (child.size or 0) * itemsize
            chunk = math.prod(child.chunks) * itemsize if child.chunks else 0
            total += size
            if max(size, chunk, total) > MAX_LIST_BYTES:
                raise ProcessListError(f"{label}: {path} would expand to more than {MAX_LIST_BYTES // 2**20} MiB "
                                       "when read; a Savu process list is far smaller, so hebi does not read it",
                                       413)


def _read_guarded(handle, label: str, catalogue: Catalogue) -> ProcessList:
    """Any surprise inside a file (a group where a dataset should be, an unreadable value) is the file's
    problem, said as such, never a crash of the caller."""
    try:
        check_layout(handle, label)
        return _read_open_file(handle, label, catalogue)
    except ProcessListError:
        raise
    except Exception as err:  # noqa: BLE001 - h5py raises many kinds for a file that is not a list
        raise ProcessListError(f"{label} cannot be read as a Savu process list ({type(err).__name__}: {err})") from None


def read_process_list_bytes(content: bytes, label: str, catalogue: Catalogue | None = None) -> ProcessList:
    """Same as read_process_list for a file held in memory (an upload being checked)."""
    import io

    import h5py
    _check_file_size(len(content), label)
    if not content.startswith(b"\x89HDF\r\n\x1a\n"):
        raise ProcessListError(f"{label} is not an HDF5 file, so it cannot be a Savu process list")
    try:
        handle = h5py.File(io.BytesIO(content), "r")
    except OSError:
        raise ProcessListError(f"{label} is not a readable HDF5 file") from None
    with handle:
        return _read_guarded(handle, label, catalogue or default_catalogue())


def _read_open_file(handle, label: str, catalogue: Catalogue) -> ProcessList:
    import h5py
    entry = handle.get("entry")
    plugin_group = entry.get("plugin") if isinstance(entry, h5py.Group) else None
    if not isinstance(plugin_group, h5py.Group):
        raise ProcessListError(f"{label} is an HDF5 file but not a Savu process list: "
                               "it has no /entry/plugin group")
    version = None
    notes = entry.get("savu_notes")
    if isinstance(notes, h5py.Group) and "version" in notes:
        version = _text(notes["version"]).strip() or None
    old = _version_number(version)

    names = sorted((name for name in plugin_group if isinstance(plugin_group[name], h5py.Group)), key=_natural)
    plugins: list[PluginEntry] = []
    for group_name in names:
        group = plugin_group[group_name]
        for required in ("name", "id", "data"):
            if required not in group:
                raise ProcessListError(f"{label}: plugin group {group_name.strip()!r} has no {required!r} "
                                       "dataset, so this is not a Savu process list Savu could run")
        raw = _text(group["data"])
        try:
            params = json.loads(raw)
        except ValueError:
            raise ProcessListError(f"{label}: the parameters of plugin {group_name.strip()} "
                                   f"({_text(group['name'])}) are not valid JSON") from None
        if not isinstance(params, dict):
            raise ProcessListError(f"{label}: the parameters of plugin {group_name.strip()} are not a "
                                   "JSON object")
        plugins.append(PluginEntry(
            pos=group_name.strip(), name=_text(group["name"]).strip(), module=_text(group["id"]).strip(),
            active=_bool(group["active"]) if "active" in group else True,
            params=normalise_none(params), raw_data=raw,
            citations=_read_citations(group, "citation")))
    _renumber(plugins)

    loops = []
    loop_group = entry.get("iterate_plugin_groups")
    if isinstance(loop_group, h5py.Group):
        for name in sorted(loop_group, key=_natural):
            group = loop_group[name]
            try:
                loops.append(Loop(int(group["start"][()]), int(group["end"][()]), int(group["iterations"][()])))
            except (KeyError, TypeError, ValueError):
                raise ProcessListError(f"{label}: iteration loop {name} needs integer start, end and "
                                       "iterations") from None

    framework = entry.get("framework_citations")
    result = ProcessList(plugins=plugins, loops=loops, version=version,
                         framework_citations=_read_citations(framework, None) if isinstance(framework, h5py.Group) else [])
    for plugin in result.plugins:
        _apply_mutations(plugin, old, catalogue)
        _complete(plugin, catalogue)
    return result


def _renumber(plugins: list[PluginEntry]) -> None:
    """Positions as savu_config keeps them: 1-based, numbers contiguous, letters kept.

    Very old lists start at 0 and are shifted (Savu's ``increment_positions``); padded names were
    already stripped. A gap in the numbering (never written by Savu) is closed.
    """
    number, previous = 0, None
    for plugin in plugins:
        try:
            stored, letter = split_position(plugin.pos)
        except ProcessListError:
            stored, letter = -1, ""
        if stored != previous or stored == -1:
            number += 1
            previous = stored
        plugin.pos = f"{number}{letter}"


def _apply_mutations(plugin: PluginEntry, version: float, catalogue: Catalogue) -> None:
    rename = PLUGIN_RENAMES.get(plugin.name)
    if rename and catalogue.get(plugin.name) is None and version < rename.get("up_to", 1e9):
        target = catalogue.get(rename["new"])
        if target is not None:
            plugin.notices.append(f"{plugin.name} has been replaced by {target.name}; please check the parameters")
            plugin.name, plugin.module = target.name, target.module
    if catalogue.get(plugin.name) is None:
        # Savu also accepts a plugin whose name differs only in case.
        for name in catalogue.plugins:
            if name.lower() == plugin.name.lower():
                plugin.name, plugin.module = name, catalogue.get(name).module
                break
    definition = catalogue.get(plugin.name)
    if definition is None or version >= PARAMETER_RENAMES_UP_TO:
        return
    renames = dict(PARAMETER_RENAMES.get(plugin.name, {}))
    if definition.kind == "reconstruction":
        renames.update(PARAMETER_RENAMES["reconstruction"])
    for old, new in renames.items():
        if old in plugin.params and new not in plugin.params:
            plugin.params = {(new if key == old else key): value for key, value in plugin.params.items()}
            plugin.notices.append(f"parameter {old} renamed to {new}")


def _complete(plugin: PluginEntry, catalogue: Catalogue) -> None:
    """Mark known/unknown and fill missing keys with current defaults, in definition order."""
    definition = catalogue.get(plugin.name)
    plugin.known = definition is not None
    if definition is None:
        return
    if not plugin.module:
        plugin.module = definition.module
    plugin.params, plugin.filled_defaults = complete_params(definition, plugin.params)


def complete_params(definition: Plugin, stored: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Stored values in definition order, defaults for missing keys; keys the plugin no longer defines
    are kept at the end (Savu refuses to run with them; validation reports them, ``ref`` drops them)."""
    params: dict[str, Any] = {}
    filled = []
    for parameter in definition.parameters:
        name = parameter["name"]
        if name in stored:
            params[name] = stored[name]
    for parameter in definition.parameters:
        name = parameter["name"]
        if name not in stored:
            params[name] = definition.default_for(name, params)
            filled.append(name)
    ordered = {p["name"]: params[p["name"]] for p in definition.parameters}
    for key, value in stored.items():
        if key not in ordered:
            ordered[key] = value
    return ordered, filled


# -- writing --------------------------------------------------------------------------------------

def _ascii(text: str) -> bytes:
    return text.encode("ascii", errors="backslashreplace")


def _string_dataset(group, name: str, text: str) -> None:
    import numpy as np
    array = np.array([_ascii(text)])
    group.create_dataset(name, array.shape, array.dtype, array)


def _write_citation(parent, citation: Citation) -> None:
    group = parent.require_group(citation.name)
    group.attrs["NX_class"] = "NXcite"  # Savu's citation groups carry a UTF-8 attribute, the others ASCII
    for key in CITATION_FIELDS:
        _string_dataset(group, key, getattr(citation, key))


def data_text(entry: PluginEntry, catalogue: Catalogue | None = None) -> str:
    """The ``data`` dataset's JSON, as Savu writes it: json.dumps of every parameter in definition
    order (missing ones with their defaults). An unknown plugin's text is kept as it was read."""
    definition = catalogue.get(entry.name) if catalogue is not None else None
    if definition is None:
        if entry.raw_data is not None:
            try:
                if normalise_none(json.loads(entry.raw_data)) == entry.params:
                    return entry.raw_data
            except ValueError:
                pass
        return json.dumps(entry.params)
    return json.dumps(complete_params(definition, entry.params)[0])


def write_process_list(process_list: ProcessList, path: str | os.PathLike[str],
                       catalogue: Catalogue | None = None) -> None:
    """Write ``process_list`` in Savu 4.2's layout, atomically: a temporary file beside ``path`` is
    written, flushed to disk and renamed over it, so a crash leaves the old file intact."""
    with atomic_write(path) as out:
        write_to(process_list, out, catalogue)


def write_to(process_list: ProcessList, target, catalogue: Catalogue | None = None) -> None:
    """Write the layout into ``target`` (a path or a file-like object), replacing its content."""
    import h5py
    catalogue = catalogue or default_catalogue()
    with h5py.File(target, "w") as handle:
        entry = handle.require_group("entry")  # Savu adds no NX_class to /entry when it creates it
        framework = entry.require_group("framework_citations")
        framework.attrs["NX_class"] = b"NXcollection"
        for citation in catalogue.framework_citations or process_list.framework_citations:
            _write_citation(framework, citation)
        notes = entry.require_group("savu_notes")
        notes.attrs["NX_class"] = b"NXnote"
        notes["version"] = WRITTEN_VERSION
        plugins = entry.require_group("plugin")
        plugins.attrs["NX_class"] = b"NXprocess"
        for plugin in process_list.plugins:
            group = plugins.require_group(plugin.pos)
            group.attrs["NX_class"] = b"NXnote"
            _string_dataset(group, "name", plugin.name)
            _string_dataset(group, "id", plugin.module)
            _string_dataset(group, "data", data_text(plugin, catalogue))
            import numpy as np
            active = np.array([bool(plugin.active)])
            group.create_dataset("active", active.shape, active.dtype, active)
            for number, citation in enumerate(plugin.citations, start=1):
                _write_citation(group, Citation(f"citation{number}", citation.description, citation.doi,
                                                citation.endnote, citation.bibtex))
        loops = entry.require_group("iterate_plugin_groups")
        loops.attrs["NX_class"] = b"NXnote"
        for number, loop in enumerate(process_list.loops):
            group = loops.require_group(str(number))
            group.create_dataset("start", (), "i", loop.start)
            group.create_dataset("end", (), "i", loop.end)
            group.create_dataset("iterations", (), "i", loop.iterations)


def process_list_bytes(process_list: ProcessList, catalogue: Catalogue | None = None) -> bytes:
    """The ``.nxs`` file as bytes (what a download sends)."""
    import io
    buffer = io.BytesIO()
    write_to(process_list, buffer, catalogue)
    return buffer.getvalue()
