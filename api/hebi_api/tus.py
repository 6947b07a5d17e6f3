"""Resumable uploads by the tus protocol 1.0.0 (https://tus.io/protocols/resumable-upload): core,
creation and termination, at /api/tus. The browser's tus-js-client sends a file in pieces; a cut
connection loses nothing already received, and the upload goes on from the offset the server reports.

Where the bytes go: ``<root>/.hebi-uploads/<id>.part`` in the writable root the file is for (so the
finished file is renamed into place on the same disk, never copied), beside ``<id>.json`` with what was
asked for. The target is checked by the sandbox when the upload is created and again when it is
finished; the part file becomes the target only when its last byte has arrived, so a reader never sees
a half-uploaded file. Each PATCH takes its bytes from the user's quota as they arrive.

Creation metadata (tus ``Upload-Metadata``, base64 values): ``root`` (a writable root), ``folder`` (a
folder in it, '' for the root), ``name`` (the file's path below that folder: ``scan.tif``, or
``run/scan.tif`` for a file of an uploaded folder, whose missing folders are made when it completes),
and ``overwrite`` (``1`` to replace an existing file; otherwise an existing file is a 409).
"""
from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, Response, request
from werkzeug.exceptions import ClientDisconnected

from hebi_common.atomic import atomic_write
from hebi_common.errors import UserError
from hebi_common.sandbox import Root

from .bodies import accepts
from .files import CHUNK, check_file_name, check_visible
from .state import hebi

blueprint = Blueprint("tus", __name__)
VERSION = "1.0.0"
EXTENSIONS = "creation,termination"
UPLOADS = ".hebi-uploads"
OFFSET_TYPE = "application/offset+octet-stream"
#: Unfinished uploads a user may hold at once, and how long an untouched one is kept.
MAX_UNFINISHED = 64
STALE_SECONDS = 7 * 24 * 3600
_ID = re.compile(r"^[0-9a-f]{32}$")


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Tus-Resumable": VERSION, "Cache-Control": "no-store", **(extra or {})}


def _answer(status: int, **headers: str) -> Response:
    return Response(status=status, headers=_headers(headers))


@blueprint.after_request
def _tus_headers(response: Response) -> Response:
    response.headers.setdefault("Tus-Resumable", VERSION)  # on error answers too, as the protocol asks
    return response


@blueprint.before_request
def _check_version():
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != VERSION:
        raise UserError(f"this is a tus {VERSION} server: send the header Tus-Resumable: {VERSION}", 412,
                        tus_version=VERSION)


@blueprint.route("/tus", methods=["OPTIONS"])
def options():
    limit = hebi("config").session.max_upload_bytes
    return _answer(204, **{"Tus-Version": VERSION, "Tus-Extension": EXTENSIONS, "Tus-Max-Size": str(limit)})


def _metadata(header: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UserError(f"the upload's metadata {key!r} is not base64-encoded UTF-8 text") from None
    return values


def _target(root: Root, folder: str, name: str) -> Path:
    """The file an upload writes: ``name`` below ``folder``, each part a usable name, inside the root."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        raise UserError("the upload needs a file name (metadata 'name')")
    for part in parts:
        check_file_name(part)
    base = hebi("context").roots.resolve(root.name, folder, for_writing=True)
    if not base.is_dir():
        raise UserError(f"the folder {root.name}/{folder.strip('/')} does not exist", 404)
    target = hebi("context").roots.resolve(root.name, "/".join([folder, *parts]), for_writing=True)
    check_visible(root, target)
    return target


def _uploads(root: Root) -> Path:
    return root.path / UPLOADS


def _tidy(root: Root) -> int:
    """Removes uploads untouched for STALE_SECONDS; returns how many unfinished ones remain."""
    folder = _uploads(root)
    if not folder.is_dir():
        return 0
    now, left = time.time(), 0
    for info in folder.glob("*.json"):
        part = info.with_suffix(".part")
        try:
            touched = max(info.stat().st_mtime, part.stat().st_mtime if part.exists() else 0)
        except OSError:
            continue
        if now - touched > STALE_SECONDS:
            part.unlink(missing_ok=True)
            info.unlink(missing_ok=True)
        else:
            left += 1
    return left


@blueprint.post("/tus")
def create():
    config, roots = hebi("config"), hebi("context").roots
    raw_length = request.headers.get("Upload-Length")
    if raw_length is None:
        raise UserError("send Upload-Length, the file's size in bytes (deferred lengths are not supported)")
    if not raw_length.isdigit():
        raise UserError("Upload-Length must be a whole number of bytes")
    length = int(raw_length)
    limit = config.session.max_upload_bytes
    if length > limit:
        raise UserError(f"the file is {length} bytes; uploads are limited to {limit} bytes", 413)
    meta = _metadata(request.headers.get("Upload-Metadata", ""))
    root = roots.get(meta.get("root", ""))
    if not root.writable:
        raise UserError(f"the {root.name!r} root is read-only", 403)
    target = _target(root, meta.get("folder", ""), meta.get("name", meta.get("filename", "")))
    overwrite = meta.get("overwrite") == "1"
    if target.is_dir():
        raise UserError(f"{roots.to_ref(target)} is a folder", 409)
    if target.exists() and not overwrite:
        raise UserError(f"{roots.to_ref(target)} already exists", 409, exists=True)
    with hebi("quota").upload(target, length):
        pass  # refused here (413) when the whole file would not fit
    if _tidy(root) >= MAX_UNFINISHED:
        raise UserError(f"you have {MAX_UNFINISHED} unfinished uploads; finish or cancel some first", 429)

    upload_id = secrets.token_hex(16)
    folder = _uploads(root)
    folder.mkdir(exist_ok=True)
    (folder / f"{upload_id}.part").touch(mode=0o600)
    with atomic_write(folder / f"{upload_id}.json", text=True) as out:
        json.dump({"root": root.name, "path": roots.to_ref(target).partition("/")[2], "length": length,
                   "overwrite": overwrite, "created": time.time()}, out)
    answer = _answer(201, Location=f"/api/tus/{upload_id}")
    if length == 0:
        _finish(root, folder / f"{upload_id}.part", json.loads((folder / f"{upload_id}.json").read_text()))
    return answer


def _find(upload_id: str) -> tuple[Root, Path, dict]:
    if not _ID.match(upload_id):
        raise UserError("no such upload", 404)
    for root in hebi("context").roots:
        info = _uploads(root) / f"{upload_id}.json"
        if root.writable and info.is_file():
            try:
                return root, info.with_suffix(".part"), json.loads(info.read_text())
            except (OSError, ValueError):
                break
    raise UserError("no such upload (finished, cancelled, or kept too long unfinished)", 404)


@blueprint.route("/tus/<upload_id>", methods=["HEAD"])
def status(upload_id: str):
    _, part, info = _find(upload_id)
    return _answer(200, **{"Upload-Offset": str(part.stat().st_size), "Upload-Length": str(info["length"])})


def _finish(root: Root, part: Path, info: dict) -> None:
    """The last byte is in: the part file becomes the target (folders made as needed), atomically."""
    roots = hebi("context").roots
    target = roots.resolve(root.name, info["path"], for_writing=True)  # checked again: links may have changed
    check_visible(root, target)
    for parent in reversed(target.relative_to(root.path).parents[:-1]):
        folder = root.path / parent
        if not folder.is_dir():
            roots.resolve(root.name, parent.as_posix(), for_writing=True)
            folder.mkdir()
    if target.is_dir() or (target.exists() and not info.get("overwrite")):
        raise UserError(f"{root.name}/{info['path']} appeared while uploading; the upload is kept, not placed", 409)
    os.chmod(part, 0o644)
    os.replace(part, target)
    part.with_suffix(".json").unlink(missing_ok=True)


@blueprint.patch("/tus/<upload_id>")
@accepts(OFFSET_TYPE)
def append(upload_id: str):
    if request.mimetype != OFFSET_TYPE:
        raise UserError(f"send the bytes as {OFFSET_TYPE}", 415)
    root, part, info = _find(upload_id)
    raw_offset = request.headers.get("Upload-Offset", "")
    if not raw_offset.isdigit():
        raise UserError("send Upload-Offset, the offset in bytes this piece starts at")
    length = info["length"]
    with open(part, "r+b") as out:
        try:
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError("this upload is being written by another request", 409) from None
        offset = os.fstat(out.fileno()).st_size
        if int(raw_offset) != offset:
            raise UserError(f"the upload is at byte {offset}, not {raw_offset}: ask with HEAD and go on from there",
                            409, offset=offset)
        if request.content_length is not None and offset + request.content_length > length:
            raise UserError(f"this piece would take the file past its declared {length} bytes", 413)
        target = hebi("context").roots.resolve(root.name, info["path"], for_writing=True)
        out.seek(offset)
        try:
            with hebi("quota").upload(target, length - offset) as take:
                try:
                    while offset < length and (chunk := request.stream.read(min(CHUNK, length - offset))):
                        take(len(chunk))
                        out.write(chunk)
                        offset += len(chunk)
                except ClientDisconnected:
                    pass  # what arrived is kept: the client asks for the offset and sends the rest
        finally:
            out.flush()
            os.fsync(out.fileno())
            out.truncate(offset)  # a refused chunk is never half-kept
    if offset == length:
        _finish(root, part, info)
    return _answer(204, **{"Upload-Offset": str(offset)})


@blueprint.delete("/tus/<upload_id>")
def terminate(upload_id: str):
    _, part, _ = _find(upload_id)
    part.unlink(missing_ok=True)
    part.with_suffix(".json").unlink(missing_ok=True)
    return _answer(204)
