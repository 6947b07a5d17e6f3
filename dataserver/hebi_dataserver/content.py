"""What to read from an HDF5 file: an entity's metadata, in the shape h5grove's ``meta`` returns."""
from __future__ import annotations

import h5py
import numpy as np


class ContentError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _dtype_json(dtype: np.dtype):
    if dtype.names:
        return {name: _dtype_json(dtype.fields[name][0]) for name in dtype.names}
    string_info = h5py.check_string_dtype(dtype)
    if string_info is not None:
        return "|O" if string_info.length is None else dtype.str
    return dtype.str


def _attr_meta(attrs: h5py.AttributeManager) -> list[dict]:
    out = []
    for name in attrs:
        try:
            attr_id = attrs.get_id(name)
            out.append({"name": name, "dtype": _dtype_json(attr_id.dtype), "shape": list(attr_id.shape or ())})
        except (KeyError, OSError, TypeError):
            continue
    return out


def entity_meta(h5file: h5py.File, path: str) -> dict:
    """Metadata of the entity at ``path``: kind, name, attributes, and for datasets shape/dtype/chunks."""
    if not path.startswith("/"):
        path = "/" + path
    link = h5file.get(path, getlink=True) if path != "/" else None
    name = path.rstrip("/").rsplit("/", 1)[-1] or "/"
    if isinstance(link, h5py.SoftLink) and path not in h5file:
        return {"name": name, "kind": "soft_link", "target_path": link.path}
    if isinstance(link, h5py.ExternalLink):
        try:
            h5file[path]
        except (KeyError, OSError):
            return {"name": name, "kind": "external_link", "target_file": link.filename, "target_path": link.path}
    try:
        entity = h5file[path]
    except KeyError:
        raise ContentError(f"no entity at {path!r} in this file", 404) from None
    meta = {"name": name, "attributes": _attr_meta(entity.attrs)}
    if isinstance(entity, h5py.Group):
        children = []
        for child_name in entity:
            child_path = f"{path.rstrip('/')}/{child_name}"
            child_link = entity.get(child_name, getlink=True)
            if isinstance(child_link, h5py.ExternalLink):
                children.append({"name": child_name, "kind": "external_link", "target_file": child_link.filename,
                                 "target_path": child_link.path})
                continue
            child = entity.get(child_name)
            if child is None:
                target = getattr(child_link, "path", "")
                children.append({"name": child_name, "kind": "soft_link", "target_path": target})
            elif isinstance(child, h5py.Group):
                children.append({"name": child_name, "kind": "group", "attributes": _attr_meta(child.attrs)})
            else:
                children.append(dict(_dataset_meta(child), name=child_name, kind="dataset",
                                     attributes=_attr_meta(child.attrs)))
        meta.update(kind="group", children=children)
    elif isinstance(entity, h5py.Dataset):
        meta.update(_dataset_meta(entity), kind="dataset")
    else:
        meta["kind"] = "other"
    return meta


def _dataset_meta(dataset: h5py.Dataset) -> dict:
    return {"shape": list(dataset.shape) if dataset.shape is not None else None,
            "dtype": _dtype_json(dataset.dtype),
            "chunks": list(dataset.chunks) if dataset.chunks else None,
            "filters": [{"id": f, "name": f} for f in (dataset._filters or {})]}
