"""What to read from an HDF5 file: find an entity by path, describe it, list its attributes and paths.

This is h5grove's *content* layer with one difference that matters for safety: paths are walked one link
at a time, so that no external link is ever followed by HDF5 itself. Hard links are taken as they are,
soft links are resolved within their file, and an external link's target file is checked against the
user's roots (``confine``) and opened through the open-file cache before the walk goes on inside it.
The metadata returned is exactly h5grove 4.0's (its type, attribute and filter descriptions are used
as they are), which is what h5web's H5GroveProvider parses.
"""
from __future__ import annotations

import posixpath
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
from h5grove.utils import attr_metadata, get_filters, get_type_metadata, sorted_dict

from hebi_common.confine import external_link_target
from hebi_common.errors import UserError
from hebi_common.sandbox import Roots

from .errors import DataError
from .files import FileIdentity, OpenFile, OpenFileCache
from .reader import value_bytes

LinkResolution = Literal["only_valid", "none", "all"]
MAX_LINK_HOPS = 32
DESCRIBED_PER_CHILD = 4  # a /meta document describes up to this many entries per child it may list


def parse_resolve_links(raw: str | None) -> LinkResolution:
    """h5grove's ``resolve_links``: only_valid (default), none, all; legacy true/false still accepted."""
    value = (raw or "only_valid").lower()
    if value in ("true", "all"):
        return "all"
    if value in ("false", "none"):
        return "none"
    if value == "only_valid":
        return "only_valid"
    raise DataError(f"{raw} is not a valid value for resolve_links; use only_valid, none or all", 422)


def normalise_path(path: str | None) -> str:
    path = (path or "/").strip() or "/"
    if "\x00" in path:
        raise DataError("the path inside the file contains a NUL character")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


@dataclass
class Entity:
    """What a path leads to: a resolved h5py object, or a link left unresolved (with why)."""

    path: str                 # as the user asked for it, normalised
    file: OpenFile            # the file the final object lives in
    obj: h5py.Group | h5py.Dataset | h5py.Datatype | None = None
    link: h5py.SoftLink | h5py.ExternalLink | None = None

    @property
    def name(self) -> str:
        return self.path.split("/")[-1]

    @property
    def kind(self) -> str:
        if isinstance(self.obj, h5py.Dataset):
            return "dataset"
        if isinstance(self.obj, h5py.Group):
            return "group"
        if isinstance(self.obj, h5py.Datatype):
            return "datatype"
        if isinstance(self.link, h5py.ExternalLink):
            return "external_link"
        if isinstance(self.link, h5py.SoftLink):
            return "soft_link"
        return "other"

    def require_dataset(self) -> h5py.Dataset:
        if isinstance(self.obj, h5py.Dataset):
            return self.obj
        if self.obj is None:
            raise DataError(f"{self.path} is a {self.kind.replace('_', ' ')} that cannot be resolved, "
                            "so it has no values", 404)
        raise DataError(f"{self.path} is a {self.kind}, not a dataset: only datasets have values", 400)


class Resolver:
    """Locates entities in one request's files. Holds leases on every file it opened until closed."""

    def __init__(self, roots: Roots, cache: OpenFileCache, file_path: Path, shown_as: str, *,
                 max_children: int = 10_000):
        self.roots = roots
        self.cache = cache
        self.shown_as = shown_as
        self.max_children = max_children
        self._stack = ExitStack()
        self._files: dict[Path, OpenFile] = {}
        self.root_file = self.open(file_path, shown_as)

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def open(self, path: Path, shown_as: str) -> OpenFile:
        handle = self._files.get(path)
        if handle is None:
            handle = self._stack.enter_context(self.cache.lease(path, shown_as))
            self._files[path] = handle
        return handle

    def identities(self) -> list[tuple[str, FileIdentity]]:
        """Every file this request has read from (for ETags)."""
        return [(str(path), handle.identity) for path, handle in self._files.items()]

    # -- walking ------------------------------------------------------------------------------------

    def locate(self, path: str | None, resolve_links: LinkResolution = "all") -> Entity:
        path = normalise_path(path)
        entity = self._walk(self.root_file, path, resolve_links, hops=0, shown=path)
        entity.path = path
        return entity

    def _walk(self, handle: OpenFile, path: str, mode: LinkResolution, hops: int, shown: str) -> Entity:
        if hops > MAX_LINK_HOPS:
            raise DataError(f"Cannot resolve {shown}: more than {MAX_LINK_HOPS} links in a row (a link loop?)",
                            404)
        group: h5py.Group = handle.h5["/"]
        parts = [part for part in path.split("/") if part]
        if not parts:
            return Entity(path, handle, obj=group)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            here = "/" + "/".join(parts[: index + 1])
            if not isinstance(group, h5py.Group):
                raise DataError(f"{shown} is not a valid path in {self.shown_as}: {group.name} is not a group",
                                404)
            try:
                link = group.get(part, getlink=True)
            except (KeyError, OSError, RuntimeError):
                link = None
            if link is None:
                raise DataError(f"{shown} is not a valid path in {self.shown_as}", 404)
            if isinstance(link, h5py.HardLink):
                target = self._entity(handle, group, part, shown)
            else:
                if last and mode == "none":
                    return Entity(path, handle, link=link)
                rest = "/".join(parts[index + 1:])
                try:
                    target = self._follow(handle, group, here, link, hops, shown)
                except UserError:
                    if last and mode == "only_valid":  # outside the roots, dangling, or unreadable
                        return Entity(path, handle, link=link)
                    raise
                if last:
                    return target
                if target.obj is None:
                    raise DataError(f"Cannot resolve {shown}: the link at {here} leads nowhere", 404)
                # Continue inside wherever the link led (possibly another file).
                return self._walk(target.file, posixpath.join(target.obj.name or "/", rest), "all",
                                  hops + 1, shown)
            if last:
                return target
            group = target.obj
            handle = target.file
        raise AssertionError("unreachable")

    def _entity(self, handle: OpenFile, group: h5py.Group, name: str, shown: str) -> Entity:
        try:
            obj = group.get(name)
        except (OSError, RuntimeError, KeyError) as err:
            raise DataError(f"{shown} cannot be read in {self.shown_as}: the file may be corrupt or "
                            f"truncated ({err})", 422) from None
        if obj is None:
            raise DataError(f"{shown} is not a valid path in {self.shown_as}", 404)
        return Entity(shown, handle, obj=obj)

    def _follow(self, handle: OpenFile, group: h5py.Group, here: str, link, hops: int, shown: str) -> Entity:
        if isinstance(link, h5py.SoftLink):
            target_path = link.path if link.path.startswith("/") else posixpath.join(group.name, link.path)
            try:
                return self._walk(handle, posixpath.normpath(target_path), "all", hops + 1, shown)
            except UserError as err:
                if err.status == 404:
                    raise DataError(f"Cannot resolve {shown}: the soft link at {here} points to "
                                    f"{link.path}, which does not exist", 404) from None
                raise
        if isinstance(link, h5py.ExternalLink):
            target_file = external_link_target(self.roots, handle.path, link, here)
            if target_file is None:
                raise DataError(f"Cannot resolve {shown}: the external link at {here} points to "
                                f"{link.filename}, which does not exist", 404)
            target = self.open(target_file, self.roots.to_ref(target_file))
            try:
                return self._walk(target, link.path, "all", hops + 1, shown)
            except UserError as err:
                if err.status == 404:
                    raise DataError(f"Cannot resolve {shown}: the external link at {here} points to "
                                    f"{link.path} in {link.filename}, which does not exist", 404) from None
                raise
        raise DataError(f"{here} is a user-defined link, which hebi cannot follow", 404)

    # -- describing ---------------------------------------------------------------------------------

    def metadata(self, entity: Entity, depth: int = 1) -> dict:
        """h5grove 4.0's ``/meta`` document for the entity (children one level deep for groups).

        One object lists at most ``max_children`` children and as many attributes, and a group stops
        listing children once ``DESCRIBED_PER_CHILD * max_children`` children and attributes are
        described: the document then says ``truncated`` (children) or ``attributes_truncated``, which
        h5web ignores."""
        return self._metadata(entity, depth, [DESCRIBED_PER_CHILD * self.max_children])

    def _metadata(self, entity: Entity, depth: int, budget: list[int]) -> dict:
        base = {"name": entity.name, "kind": entity.kind}
        if entity.obj is None:
            if isinstance(entity.link, h5py.ExternalLink):
                return sorted_dict(("target_file", entity.link.filename), ("target_path", entity.link.path),
                                   *base.items())
            if isinstance(entity.link, h5py.SoftLink):
                return sorted_dict(("target_path", entity.link.path), *base.items())
            return base
        obj = entity.obj
        try:
            names = sorted(obj.attrs.keys())
            shown = names[:self.max_children]  # whole, so that NX_class & co are never missing
            attributes = [attr_metadata(obj.attrs, name) for name in shown]
        except (OSError, RuntimeError) as err:
            raise DataError(f"the attributes of {entity.path} cannot be read ({err})", 422) from None
        budget[0] -= len(shown)
        base = {**base, "attributes": attributes, **({"attributes_truncated": True} if shown != names else {})}
        if isinstance(obj, h5py.Dataset):
            return sorted_dict(("chunks", obj.chunks), ("filters", get_filters(obj)), ("shape", obj.shape),
                               ("type", get_type_metadata(obj.id.get_type())), *base.items())
        if isinstance(obj, h5py.Datatype):
            return sorted_dict(("type", get_type_metadata(obj.id)), *base.items())
        if isinstance(obj, h5py.Group) and depth > 0:
            names = self.first_names(obj)
            children = []
            by_target: dict[tuple, dict] = {}  # many links often name one target: resolve it once
            for name in names:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                link = self._link(entity, name)
                if isinstance(link, h5py.HardLink):
                    children.append(self._metadata(self.child(entity, name), depth - 1, budget))
                    continue
                key = (type(link), getattr(link, "filename", None),
                       posixpath.join(obj.name, getattr(link, "path", name)))
                if key not in by_target:
                    by_target[key] = self._metadata(self._child(entity, name, link), depth - 1, budget)
                children.append({**by_target[key], "name": name})
            count = len(obj)
            extra = [("truncated", True), ("children_count", count)] if count > len(children) else []
            return sorted_dict(("children", children), *extra, *base.items())
        return sorted_dict(*base.items())

    def first_names(self, group: h5py.Group) -> list[str]:
        """The first ``max_children`` link names in one pass over the group (h5py's ``keys()`` asks for
        each name by its index, which HDF5 answers by sorting the group's links again)."""
        names: list[str] = []

        def take(name: bytes):
            names.append(name.decode("utf-8", "surrogateescape"))
            return 1 if len(names) >= self.max_children else None

        tracked = group.id.get_create_plist().get_link_creation_order() & h5py.h5p.CRT_ORDER_TRACKED
        index = h5py.h5.INDEX_CRT_ORDER if tracked else h5py.h5.INDEX_NAME  # h5py's order for keys()
        group.id.links.iterate(take, idx_type=index, order=h5py.h5.ITER_INC)
        return names

    def child(self, entity: Entity, name: str) -> Entity:
        """A child of a group, as ``locate(path, "only_valid")`` finds it, found from the group itself."""
        link = self._link(entity, name)
        if isinstance(link, h5py.HardLink):
            return self._entity(entity.file, entity.obj, name, posixpath.join(entity.path, name))
        return self._child(entity, name, link)

    def _link(self, entity: Entity, name: str):
        try:
            link = entity.obj.get(name, getlink=True)
        except (KeyError, OSError, RuntimeError):
            link = None
        if link is None:
            raise DataError(f"{posixpath.join(entity.path, name)} is not a valid path in {self.shown_as}", 404)
        return link

    def _child(self, entity: Entity, name: str, link) -> Entity:
        """A soft or external link of a group, as ``locate(path, "only_valid")`` finds it."""
        group: h5py.Group = entity.obj
        path = posixpath.join(entity.path, name)
        try:
            target = self._follow(entity.file, group, posixpath.join(group.name, name), link, 0, path)
        except UserError:  # outside the roots, dangling, or unreadable: shown as the link it is
            return Entity(path, entity.file, link=link)
        target.path = path
        return target

    def attributes(self, entity: Entity, keys: list[str] | None, limit: int) -> dict:
        """The attributes' values; together they may hold at most ``limit`` bytes (413 beyond)."""
        if entity.obj is None:
            raise DataError(f"{entity.path} is a {entity.kind.replace('_', ' ')} that cannot be resolved, "
                            "so it has no attributes", 404)
        attrs = entity.obj.attrs
        names = list(attrs.keys()) if keys is None else keys
        values = {}
        used = 0
        for name in names:
            if name not in attrs:
                raise DataError(f"{entity.path} has no attribute {name!r}", 404)
            values[name] = read_attribute(attrs, name, limit - used, f"the attribute {name!r} of {entity.path}")
            used += value_bytes(values[name])
        return values

    def paths(self, entity: Entity, limit: int) -> list[str]:
        """Every path under a group (h5grove's ``/paths``). Walks hard links of this file only."""
        if not isinstance(entity.obj, h5py.Group):
            raise DataError(f"{entity.path} is a {entity.kind}, not a group: only groups have paths under them",
                            400)
        names = [entity.path]
        prefix = entity.path.rstrip("/")

        def visit(name: bytes):
            names.append(f"{prefix}/{name.decode('utf-8', 'replace')}")
            if len(names) > limit:
                return 1  # stop visiting
            return None

        entity.obj.id.links.visit(visit)
        if len(names) > limit:
            raise DataError(f"{entity.path} holds more than {limit} paths; ask for a group further down", 413,
                            limit=limit)
        return names


def read_attribute(attrs: h5py.AttributeManager, name: str, limit: int, what: str):
    """An attribute's value, refused (413) when it holds more than ``limit`` bytes. HDF5 reads an
    attribute whole: a fixed-size one is measured before, a variable-length one only once read."""
    try:
        attr = attrs.get_id(name)
        dtype = attr.dtype
        fixed = attr.shape is None or not dtype.hasobject
        count = int(np.prod(attr.shape, dtype=np.int64)) if attr.shape else 1
        if fixed and count * dtype.itemsize > limit:
            raise DataError(f"{what} holds {count * dtype.itemsize} bytes, more than one request may read "
                            f"({max(limit, 0)} bytes)", 413, needed_bytes=count * dtype.itemsize,
                            limit_bytes=max(limit, 0))
        value = attrs[name]
    except (OSError, RuntimeError, TypeError, KeyError) as err:
        raise DataError(f"{what} cannot be read ({err})", 422) from None
    if not fixed and value_bytes(value) > limit:
        raise DataError(f"{what} holds {value_bytes(value)} bytes of variable-length values, more than one "
                        f"request may read ({max(limit, 0)} bytes)", 413, needed_bytes=value_bytes(value),
                        limit_bytes=max(limit, 0))
    return value
