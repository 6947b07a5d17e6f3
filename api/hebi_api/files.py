"""Browsing and uploading files inside the session's roots (data, processing, output)."""
from __future__ import annotations

import os
import stat

from flask import Blueprint, abort, jsonify, request

from hebi_common.atomic import atomic_write
from hebi_common.sandbox import SandboxError

from .bodies import ANY, accepts
from .state import hebi

blueprint = Blueprint("files", __name__)
CHUNK = 1024 * 1024


def _root_and_path() -> tuple[str, str]:
    root = request.args.get("root")
    if not root:
        abort(400, description="the 'root' parameter is required (data, processing or output)")
    return root, request.args.get("path", "")


def _entry(name: str, st: os.stat_result, is_link: bool) -> dict:
    kind = "folder" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return {"name": name, "type": kind, "size": st.st_size if kind == "file" else None,
            "modified": int(st.st_mtime), "symlink": is_link}


@blueprint.get("/files")
def list_folder():
    roots = hebi("context").roots
    root_name, user_path = _root_and_path()
    folder = roots.resolve(root_name, user_path)
    if not folder.exists():
        abort(404, description=f"no such folder: {root_name}/{user_path}")
    if not folder.is_dir():
        abort(400, description=f"not a folder: {root_name}/{user_path}")
    entries = []
    root = roots.get(root_name)
    with os.scandir(folder) as scan:
        for item in scan:
            try:
                target = os.path.realpath(item.path)
                # A symlink that leads out of the root is not shown: following it would be refused anyway.
                if target != str(root.path) and not target.startswith(str(root.path) + "/"):
                    continue
                entries.append(_entry(item.name, os.stat(item.path), item.is_symlink()))
            except OSError:
                continue  # vanished or dangling while listing
    entries.sort(key=lambda e: (e["type"] != "folder", e["name"].lower()))
    rel = roots.to_ref(folder).partition("/")[2]
    return jsonify(root=root_name, path=rel, writable=root.writable, entries=entries)


@blueprint.put("/files")
@accepts(ANY)  # the file's own bytes, whatever they are
def upload_file():
    context, config = hebi("context"), hebi("config")
    root_name, user_path = _root_and_path()
    target = context.roots.resolve(root_name, user_path, for_writing=True)
    if not user_path.strip("/") or target == context.roots.get(root_name).path:
        abort(400, description="name the file to write, e.g. path=folder/name.nxs")
    if target.is_dir():
        abort(409, description=f"{root_name}/{user_path} is a folder")
    if not target.parent.is_dir():
        abort(404, description=f"the folder {root_name}/{os.path.dirname(user_path.strip('/'))} does not exist")
    limit = config.session.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        abort(413, description=f"the file is {request.content_length} bytes; uploads are limited to {limit} bytes")

    # Streamed into a file beside the target that replaces it only when complete: a failed upload
    # (too large, over the quota, cut short) leaves the old file as it was and no temporary file.
    written = 0
    with hebi("quota").upload(target, request.content_length) as take, atomic_write(target) as out:
        while chunk := request.stream.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise SandboxError(f"the upload passed the limit of {limit} bytes", 413)
            take(len(chunk))
            out.write(chunk)
        if request.content_length is not None and written != request.content_length:
            raise SandboxError(f"the upload ended after {written} of {request.content_length} bytes", 400)
    return jsonify(root=root_name, path=context.roots.to_ref(target).partition("/")[2], size=written), 201
