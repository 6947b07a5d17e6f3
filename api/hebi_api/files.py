"""The Files area's API inside the session's roots (data, processing, output): list, upload, download
(a file, or a folder as a streamed zip), new folder, rename/move, copy, delete into a per-user trash
that can be emptied, a text tail for logs, and a PNG preview of TIFF images.

Every path goes through the sandbox (hebi_common.sandbox); every change is checked whole before it is
made, so a refused request changes nothing. hebi's own folders (names starting with ``.hebi``: job
folders, the trash, unfinished uploads) are never listed, zipped, moved or deleted through here.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, request, send_file, stream_with_context

from hebi_common.atomic import atomic_write
from hebi_common.errors import UserError
from hebi_common.sandbox import Root, SandboxError

from .bodies import ANY, accepts, json_body
from .quota import tree_bytes
from .state import hebi

blueprint = Blueprint("files", __name__)
CHUNK = 1024 * 1024
#: Names of hebi's own folders in a root: job folders (.hebi), the trash, unfinished uploads.
INTERNAL_PREFIX = ".hebi"
TRASH = ".hebi-trash"
#: A copy or a zip looks at no more entries than this (a bound on one request's work).
MAX_TREE_ENTRIES = 100_000
TEXT_BYTES = 1024 * 1024
#: A preview decodes one image whole: bounded by its decoded size, not the file's.
PREVIEW_MAX_BYTES = 512 * 1024 * 1024
PREVIEW_EDGE = 1024


def is_internal(name: str) -> bool:
    return name.startswith(INTERNAL_PREFIX)


def _root_and_path() -> tuple[str, str]:
    root = request.args.get("root")
    if not root:
        abort(400, description="the 'root' parameter is required (data, processing or output)")
    return root, request.args.get("path", "")


def check_visible(root: Root, target: Path) -> None:
    """Refuse hebi's own folders (and what is inside them) as a user's file."""
    if target != root.path and any(is_internal(part) for part in target.relative_to(root.path).parts):
        raise UserError("that folder is hebi's own (job records, trash, unfinished uploads); it cannot be used here", 403)


def _existing(ref_root: str, user_path: str, *, for_writing: bool = False) -> tuple[Root, Path]:
    roots = hebi("context").roots
    root = roots.get(ref_root)
    target = roots.resolve(ref_root, user_path, for_writing=for_writing)
    check_visible(root, target)
    if not target.exists():
        raise UserError(f"no such file or folder: {ref_root}/{user_path.strip('/')}", 404)
    return root, target


def _ref(ref: object, what: str, *, for_writing: bool) -> tuple[Root, Path]:
    if not isinstance(ref, str) or not ref.strip("/"):
        raise UserError(f"'{what}' must be a path such as processing/folder/name")
    root, target = hebi("context").roots.resolve_ref(ref, for_writing=for_writing)
    check_visible(root, target)
    return root, target


def check_file_name(name: str) -> None:
    """A name a user may give a file or folder (uploads, renames, new folders): no hebi folder, no control characters."""
    if not name or name in (".", "..") or len(name.encode()) > 255:
        raise UserError(f"{name!r} is not a usable name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UserError("a name may not hold control characters (tabs, newlines, ...)")
    if is_internal(name):
        raise UserError(f"names starting with {INTERNAL_PREFIX!r} are kept for hebi's own folders")


def _entry(name: str, st: os.stat_result, is_link: bool) -> dict:
    kind = "folder" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return {"name": name, "type": kind, "size": st.st_size if kind == "file" else None,
            "modified": int(st.st_mtime), "symlink": is_link}


def _inside(root: Root, path: str) -> bool:
    target = os.path.realpath(path)
    return target == str(root.path) or target.startswith(str(root.path) + "/")


@blueprint.get("/files")
def list_folder():
    roots = hebi("context").roots
    root_name, user_path = _root_and_path()
    folder = roots.resolve(root_name, user_path)
    root = roots.get(root_name)
    check_visible(root, folder)
    if not folder.exists():
        abort(404, description=f"no such folder: {root_name}/{user_path}")
    if not folder.is_dir():
        abort(400, description=f"not a folder: {root_name}/{user_path}")
    entries = []
    with os.scandir(folder) as scan:
        for item in scan:
            if is_internal(item.name):
                continue
            try:
                # A symlink that leads out of the root is not shown: following it would be refused anyway.
                if not _inside(root, item.path):
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
    check_visible(context.roots.get(root_name), target)
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


# -- reading: download, zip, text, preview ---------------------------------------------------------------

@blueprint.get("/files/content")
def download_file():
    """The file's bytes, always as an attachment of a neutral type: a user's .html or .svg is never run
    as a page of hebi's origin. Ranges and conditional requests come from send_file."""
    root, target = _existing(*_root_and_path())
    if not target.is_file():
        raise UserError(f"{target.name} is a folder: download it as a zip", 400)
    return send_file(target, mimetype="application/octet-stream", as_attachment=True, download_name=target.name,
                     conditional=True, etag=True, max_age=0)


class _Pipe:
    """A write-only stream that zipfile writes into and the response reads from, a piece at a time."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.pieces = b"".join(self.pieces), []
        return out


def _walk(root: Root, folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Files under ``folder`` (no symlink followed out of the root, hebi's folders skipped), bounded."""
    seen, pending = 0, [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as scan:
                items = sorted(scan, key=lambda e: e.name)
        except OSError:
            continue
        for item in items:
            seen += 1
            if seen > MAX_TREE_ENTRIES:
                raise UserError(f"the folder holds more than {MAX_TREE_ENTRIES} entries; take a smaller part", 413)
            if is_internal(item.name) or not _inside(root, item.path):
                continue
            try:
                st = os.stat(item.path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not item.is_symlink():  # a linked folder could loop; its files are reached by their own path
                    pending.append(Path(item.path))
            elif stat.S_ISREG(st.st_mode):
                yield Path(item.path), st


@blueprint.get("/files/zip")
def download_zip():
    """A folder as a zip made while it is sent: memory holds one chunk, never the archive."""
    root, folder = _existing(*_root_and_path())
    if not folder.is_dir():
        raise UserError(f"{folder.name} is a file: download it directly", 400)
    name = folder.name if folder != root.path else root.name
    files = list(_walk(root, folder))  # walked first, so a folder too large is refused before sending anything

    def generate() -> Iterator[bytes]:
        pipe = _Pipe()
        with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, st in files:
                info = zipfile.ZipInfo(f"{name}/{path.relative_to(folder).as_posix()}",
                                       time.localtime(max(st.st_mtime, 315532800))[:6])
                info.file_size = st.st_size
                try:
                    source = open(path, "rb")
                except OSError:
                    continue  # vanished since the walk
                with source, archive.open(info, "w", force_zip64=True) as member:
                    while chunk := source.read(CHUNK):
                        member.write(chunk)
                        yield pipe.take()
                yield pipe.take()
        yield pipe.take()

    def nonempty() -> Iterator[bytes]:
        yield from (piece for piece in generate() if piece)

    response = Response(stream_with_context(nonempty()), mimetype="application/zip")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(name)}.zip"
    return response


def _quote(name: str) -> str:
    from urllib.parse import quote
    return quote(name, safe="")


@blueprint.get("/files/text")
def read_text():
    """The end of a text file (a log grows at its end), at most ``bytes`` of it (1 MiB)."""
    root, target = _existing(*_root_and_path())
    if not target.is_file():
        raise UserError(f"{target.name} is a folder", 400)
    try:
        want = int(request.args.get("bytes", TEXT_BYTES))
    except ValueError:
        raise UserError("'bytes' must be a whole number") from None
    if not 1 <= want <= TEXT_BYTES:
        raise UserError(f"'bytes' must be between 1 and {TEXT_BYTES}")
    size = target.stat().st_size
    with open(target, "rb") as source:
        source.seek(max(0, size - want))
        raw = source.read(want)
    if b"\x00" in raw[:8192]:
        raise UserError(f"{target.name} is not a text file", 415)
    return jsonify(text=raw.decode("utf-8", errors="replace"), size=size, truncated=size > want)


def _png(gray: bytes, width: int, height: int) -> bytes:
    """An 8-bit greyscale PNG (what a browser shows of a TIFF it cannot read itself)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    rows = b"".join(b"\x00" + gray[y * width:(y + 1) * width] for y in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


@blueprint.get("/files/preview")
def preview_image():
    """A TIFF's first image as a PNG at most 1024 pixels a side, its contrast stretched to the 0.5-99.5
    percentiles (detector images are 16-bit or float: shown raw they are black)."""
    import numpy as np
    import tifffile

    root, target = _existing(*_root_and_path())
    if not target.is_file() or target.suffix.lower() not in (".tif", ".tiff"):
        raise UserError("a preview is made of .tif and .tiff files only", 415)
    try:
        with tifffile.TiffFile(target) as tiff:
            page = tiff.pages[0]
            decoded = int(np.prod(page.shape)) * np.dtype(page.dtype).itemsize
            if decoded > PREVIEW_MAX_BYTES:
                raise UserError(f"{target.name}'s image is {decoded} bytes decoded; previews are made of images up to "
                                f"{PREVIEW_MAX_BYTES} bytes: open it in a tool of its own", 413)
            image = page.asarray()
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoding failure is the file's, said to its owner
        raise UserError(f"{target.name} could not be read as a TIFF image: {err}", 415) from None
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3].mean(axis=-1)
    while image.ndim > 2:
        image = image[0]
    if image.ndim != 2 or not image.size:
        raise UserError(f"{target.name} holds no two-dimensional image", 415)
    step = max(1, -(-max(image.shape) // PREVIEW_EDGE))
    image = np.asarray(image[::step, ::step], dtype=np.float64)
    finite = image[np.isfinite(image)]
    low, high = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    scaled = np.clip((np.nan_to_num(image, nan=low) - low) / ((high - low) or 1.0), 0, 1)
    gray = (scaled * 255).astype(np.uint8)
    response = Response(_png(gray.tobytes(), gray.shape[1], gray.shape[0]), mimetype="image/png")
    response.headers["Cache-Control"] = "no-cache"
    return response


# -- changing: new folder, move, copy, delete, trash --------------------------------------------------------

def _body() -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise UserError("send a JSON object")
    return body


@blueprint.post("/files/folder")
def make_folder():
    body = _body()
    root, target = _ref(body.get("path"), "path", for_writing=True)
    if target == root.path:
        raise UserError("name the new folder, e.g. processing/scans")
    check_file_name(target.name)
    if target.exists():
        raise UserError(f"{hebi('context').roots.to_ref(target)} already exists", 409)
    if not target.parent.is_dir():
        raise UserError("the folder to create it in does not exist", 404)
    target.mkdir()
    return jsonify(path=hebi("context").roots.to_ref(target)), 201


def _source_and_target(body: dict, *, moving: bool) -> tuple[Root, Path, Root, Path]:
    from_root, source = _ref(body.get("from"), "from", for_writing=moving)  # a move takes it from its root
    to_root, target = _ref(body.get("to"), "to", for_writing=True)
    if source == from_root.path:
        raise UserError("a root itself cannot be moved or copied")
    if not source.exists() and not source.is_symlink():
        raise UserError(f"no such file or folder: {body['from']}", 404)
    check_file_name(target.name)
    if target.exists() or target.is_symlink():
        raise UserError(f"{body['to']} already exists: choose another name, or delete it first", 409)
    if not target.parent.is_dir():
        raise UserError("the folder to put it in does not exist", 404)
    if source.is_dir() and (target == source or source in target.parents):
        raise UserError("a folder cannot be put inside itself")
    return from_root, source, to_root, target


@blueprint.post("/files/move")
def move():
    """Rename or move (``from`` and ``to`` are ``<root>/<path>``); never replaces what is there."""
    from_root, source, to_root, target = _source_and_target(_body(), moving=True)
    try:
        os.rename(source, target)
    except OSError as err:
        if err.errno == 18:  # EXDEV: the roots are on different filesystems
            raise UserError("these two folders are on different disks: copy, then delete the original", 409) from None
        raise
    return jsonify(path=hebi("context").roots.to_ref(target))


@blueprint.post("/files/copy")
def copy():
    """Copy a file or folder; made under a temporary name and renamed when whole, within the quota."""
    from_root, source, to_root, target = _source_and_target(_body(), moving=False)
    files = [(source, source.stat())] if source.is_file() else list(_walk(from_root, source))
    size = sum(st.st_size for _, st in files)
    temp = target.parent / f".hebi-copy-{secrets.token_hex(8)}"
    with hebi("quota").upload(temp, size) as take:
        try:
            if source.is_file():
                take(size)
                shutil.copy2(source, temp)
            else:
                temp.mkdir()
                for path, st in files:
                    take(st.st_size)
                    out = temp / path.relative_to(source)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, out)
            os.rename(temp, target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True) if temp.is_dir() else temp.unlink(missing_ok=True)
            raise
    return jsonify(path=hebi("context").roots.to_ref(target), size=size), 201


@blueprint.delete("/files")
def delete():
    """Move into the root's trash (``.hebi-trash``), from where it can be restored or emptied."""
    root_name, user_path = _root_and_path()
    root, target = _existing(root_name, user_path, for_writing=True)
    if target == root.path:
        raise UserError("a root itself cannot be deleted")
    # A symlink is deleted as the link, never as what it leads to (which the sandbox resolved to).
    folder_path, _, name = user_path.strip("/").rpartition("/")
    link = hebi("context").roots.resolve(root_name, folder_path) / name
    if link.is_symlink():
        target = link
    item = root.path / TRASH / f"{int(time.time())}-{secrets.token_hex(6)}"
    item.mkdir(parents=True)
    original = hebi("context").roots.to_ref(target.parent) + "/" + target.name
    with atomic_write(item / "info.json", text=True) as out:
        json.dump({"path": original, "deleted": time.time(), "folder": target.is_dir() and not target.is_symlink()}, out)
    os.rename(target, item / "item")
    return jsonify(trashed=original, id=f"{root.name}:{item.name}")


def _trash_items() -> Iterator[tuple[Root, Path, dict]]:
    for root in hebi("context").roots:
        folder = root.path / TRASH
        if not root.writable or not folder.is_dir():
            continue
        for item in sorted(folder.iterdir(), reverse=True):
            try:
                info = json.loads((item / "info.json").read_text())
            except (OSError, ValueError):
                continue
            yield root, item, info


@blueprint.get("/files/trash")
def list_trash():
    items = []
    for root, item, info in _trash_items():
        content = item / "item"
        size = content.stat().st_size if content.is_file() else tree_bytes(content, MAX_TREE_ENTRIES)
        items.append({"id": f"{root.name}:{item.name}", "path": info.get("path"), "deleted": info.get("deleted"),
                      "folder": bool(info.get("folder")), "size": size})
    return jsonify(items=items, total_bytes=sum(i["size"] for i in items))


def _trash_item(item_id: object) -> tuple[Root, Path, dict]:
    if not isinstance(item_id, str):
        raise UserError("'id' must name an item of the trash")
    for root, item, info in _trash_items():
        if f"{root.name}:{item.name}" == item_id:
            return root, item, info
    raise UserError("no such item in the trash", 404)


@blueprint.post("/files/trash/restore")
def restore():
    """Put an item back where it was; refused (409) when something else has taken its place."""
    root, item, info = _trash_item(_body().get("id"))
    _, target = hebi("context").roots.resolve_ref(info["path"], for_writing=True)
    if target.exists() or target.is_symlink():
        raise UserError(f"{info['path']} exists again: move it away first", 409)
    if not target.parent.is_dir():
        raise UserError(f"the folder {info['path'].rpartition('/')[0]} no longer exists", 409)
    os.rename(item / "item", target)
    shutil.rmtree(item)
    return jsonify(path=info["path"])


@blueprint.delete("/files/trash")
def empty_trash():
    """Delete for good: one item (``?id=``) or everything in the trash."""
    only = request.args.get("id")
    removed = 0
    items = [_trash_item(only)] if only is not None else list(_trash_items())
    for _, item, _ in items:
        shutil.rmtree(item)
        removed += 1
    return jsonify(removed=removed)
