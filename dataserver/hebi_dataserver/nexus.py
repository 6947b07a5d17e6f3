"""NeXus default-plot discovery: which dataset should a viewer show first for this file?

It follows the NeXus ``default`` attributes from the root (relative or absolute, as far as they lead)
to an NXdata group and its ``signal``, exactly what h5web does, and never assumes ``/entry``: the DAWN
server's hard-coded ``/entry`` broke on Diamond files that use ``/entry1``. Without ``default`` it uses
NeXus's implicit rule (the first NXdata child, else the first NXentry, NXsubentry or NXprocess, looked
into in turn); failing that, the first NXdata group anywhere whose signal can be read (Savu's output
sets no NX_class on its entries); failing that, the largest dataset of two or more dimensions, so that plain HDF5 files
(a detector's frames under ``/entry/data/data``, or anywhere else) open on their image stack too.
"""
from __future__ import annotations

import posixpath

import h5py
import numpy as np

from hebi_common.errors import UserError

from .content import Entity, Resolver, read_attribute

CONTAINERS = ("NXentry", "NXsubentry", "NXprocess")
MAX_STEPS = 16
MAX_SCAN = 20000
ATTR_BYTES = 1 << 20


def _small_attr(obj, name: str):
    """A NeXus attribute (NX_class, signal, axes, default...); none of them is big, so a big one is
    taken as absent rather than read."""
    try:
        if name not in obj.attrs:
            return None
        return read_attribute(obj.attrs, name, ATTR_BYTES, name)
    except (UserError, OSError, RuntimeError, TypeError):
        return None


def text_attr(obj, name: str) -> str | None:
    value = _small_attr(obj, name)
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def list_attr(obj, name: str) -> list[str]:
    value = _small_attr(obj, name)
    if value is None:
        return []
    values = np.atleast_1d(value).reshape(-1).tolist()
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def find_default_plot(resolver: Resolver) -> dict:
    chain: list[str] = []
    entity = resolver.locate("/", "all")
    how = "default attributes"
    for _ in range(MAX_STEPS):
        chain.append(entity.path)
        group = entity.obj
        if not isinstance(group, h5py.Group):
            break
        if text_attr(group, "NX_class") == "NXdata" and text_attr(group, "signal"):
            return _describe(resolver, entity, chain, how)
        default = text_attr(group, "default")
        step = None
        if default:
            target = default if default.startswith("/") else posixpath.join(entity.path, default)
            try:
                step = resolver.locate(target, "all")
            except UserError:
                step = None
        if step is None:
            how = "implicit NeXus rule" if not default else "implicit NeXus rule (a default led nowhere)"
            step = _implicit_child(resolver, entity)
        if step is None:
            break
        entity = step
    searched = _search_nxdata(resolver, chain)
    if searched is not None:
        return searched
    largest = _largest_dataset(resolver, resolver.locate("/", "all"))
    if largest is None:
        return {"found": False, "how": "nothing to plot: no NXdata and no dataset of 2 or more dimensions",
                "chain": chain}
    return {"found": True, "how": "largest dataset (no NeXus default)", "chain": chain, "nxdata": None,
            "signal": largest.path, "shape": list(largest.obj.shape), "axes": [], "interpretation": None}


def _implicit_child(resolver: Resolver, entity: Entity) -> Entity | None:
    group = entity.obj
    by_class: dict[str, Entity] = {}
    for name in resolver.first_names(group):  # as many as /meta lists, in one pass
        try:
            child = resolver.child(entity, name)
        except UserError:
            continue
        if isinstance(child.obj, h5py.Group):
            nx_class = text_attr(child.obj, "NX_class") or ""
            if nx_class == "NXdata" and text_attr(child.obj, "signal"):
                return child
            by_class.setdefault(nx_class, child)
    for nx_class in CONTAINERS:
        if nx_class in by_class:
            return by_class[nx_class]
    return None


def _describe(resolver: Resolver, nxdata: Entity, chain: list[str], how: str) -> dict:
    group = nxdata.obj
    signal_name = text_attr(group, "signal")
    signal_path = posixpath.join(nxdata.path, signal_name)
    shape = None
    try:
        signal = resolver.locate(signal_path, "all")
        if isinstance(signal.obj, h5py.Dataset):
            shape = list(signal.obj.shape or [])
        interpretation = text_attr(signal.obj, "interpretation") if signal.obj is not None else None
    except UserError as err:
        return {"found": False, "how": how, "chain": chain, "nxdata": nxdata.path, "signal": signal_path,
                "problem": err.message}
    return {"found": True, "how": how, "chain": chain, "nxdata": nxdata.path, "signal": signal_path,
            "shape": shape, "axes": list_attr(group, "axes"),
            "interpretation": interpretation or text_attr(group, "interpretation")}


def _search_nxdata(resolver: Resolver, chain: list[str]) -> dict | None:
    """Files without NX_class on their entries (Savu's own output has none on /entry1): any NXdata
    group with a signal, in file order; the first whose signal can be read wins."""
    candidates: list[str] = []
    seen = 0

    def visit(name: str, obj):
        nonlocal seen
        seen += 1
        if len(candidates) > 64 or seen > MAX_SCAN:
            return True
        if isinstance(obj, h5py.Group) and text_attr(obj, "NX_class") == "NXdata" and text_attr(obj, "signal"):
            candidates.append("/" + name)
        return None

    resolver.locate("/", "all").obj.visititems(visit)
    first_problem = None
    for path in candidates:
        described = _describe(resolver, resolver.locate(path, "all"), chain + [path], "search for NXdata")
        if described["found"]:
            return described
        first_problem = first_problem or described
    return first_problem


def _largest_dataset(resolver: Resolver, root: Entity) -> Entity | None:
    best: tuple[int, str] | None = None
    seen = 0

    def visit(name: str, obj):
        nonlocal best, seen
        seen += 1
        if seen > MAX_SCAN:
            return True
        if isinstance(obj, h5py.Dataset) and obj.shape is not None and len(obj.shape) >= 2:
            size = int(np.prod(obj.shape, dtype=np.int64))
            if best is None or size > best[0]:
                best = (size, "/" + name)
        return None

    root.obj.visititems(visit)  # hard links of this file only: nothing outside it is opened
    return resolver.locate(best[1], "all") if best else None
