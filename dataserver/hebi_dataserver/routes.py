"""The routes under /data/, in h5grove's vocabulary: ``file`` is ``<root>/<path in root>``."""
from __future__ import annotations

import h5py
from flask import Blueprint, abort, current_app, jsonify, request

from .content import ContentError, entity_meta

blueprint = Blueprint("data", __name__)


def _open_requested_file() -> tuple[str, h5py.File]:
    ref = request.args.get("file")
    if not ref:
        abort(400, description="the 'file' parameter is required, as <root>/<path in root>")
    roots = current_app.extensions["hebi"]["context"].roots
    _, path = roots.resolve_ref(ref)
    if not path.is_file():
        abort(404, description=f"no such file: {ref}")
    try:
        return ref, h5py.File(path, "r", locking=False)
    except OSError:
        abort(422, description=f"{ref} is not a readable HDF5 file (corrupt, truncated, or another format)")


@blueprint.errorhandler(ContentError)
def _content_error(err: ContentError):
    return jsonify(error=err.message), err.status


@blueprint.get("/meta")
@blueprint.get("/meta/")
def meta():
    _, h5file = _open_requested_file()
    with h5file:
        return jsonify(entity_meta(h5file, request.args.get("path", "/")))
