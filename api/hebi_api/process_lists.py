"""Savu process lists over HTTP, under the user's ``processing`` root.

    GET    /api/process-lists?folder=F            lists (.nxs) and sub-folders of a folder
    GET    /api/process-lists/<path>              the list as JSON (ETag header); Accept: application/x-hdf5
                                                  sends the .nxs file itself
    POST   /api/process-lists/<path>              create (JSON body: optional plugins/loops); 409 if it exists
    PUT    /api/process-lists/<path>              replace with a JSON document, or upload a .nxs with
                                                  Content-Type: application/x-hdf5 (checked before it is stored)
    DELETE /api/process-lists/<path>
    POST   /api/process-lists/<path>/operations   savu_config commands as JSON, all or none
    POST   /api/process-lists/<path>/command      one savu_config command line ("mod 4.1 86", "undo")
    POST   /api/process-lists/<path>/undo|redo    step through the saved versions (If-Match)
    GET    /api/process-lists/<path>/history      the saved versions and the commands that made them
    GET    /api/process-lists/<path>/disp|cite|problems

Every change made here is recorded in the user's state folder (hebi_common.savu.history), so undo, redo
and history survive a reload and a new session.

Changing an existing list needs ``If-Match: <etag>``: a stale tag gets 412 and changes nothing, a missing
one 428. Writes hold a lock on the folder while they check the tag and replace the file, and every save
is a temporary file renamed over the old one, so a crash mid-save leaves the old list intact.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.http import quote_etag

from hebi_common.atomic import atomic_write
from hebi_common.savu.catalogue import Catalogue
from hebi_common.savu.commands import HELP, command_text, parse
from hebi_common.savu.history import ListHistory
from hebi_common.savu.operations import (
    Editor,
    OperationError,
    apply_operations,
    loader_problem,
    split_position_or_error,
)
from hebi_common.savu.parameters import savu_value, value_problem
from hebi_common.savu.process_list import (
    Citation,
    PluginEntry,
    ProcessList,
    complete_params,
    normalise_none,
    read_process_list,
    read_process_list_bytes,
    write_process_list,
)
from hebi_common.savu.validation import check_runnable

from .bodies import accepts, json_body
from .state import hebi

blueprint = Blueprint("process_lists", __name__)
ROOT = "processing"
HDF5 = "application/x-hdf5"
#: A process list is a few hundred kB at most; this bounds what a request makes the API hold.
MAX_LIST_BYTES = 64 * 1024 * 1024


def _fail(message: str, status: int = 400):
    raise OperationError(message, status)


# -- paths, tags and locks --------------------------------------------------------------------------

def _resolve(user_path: str, *, writing: bool = False) -> Path:
    return hebi("context").roots.resolve(ROOT, user_path, for_writing=writing)


def _rel(path: Path) -> str:
    return hebi("context").roots.to_ref(path).partition("/")[2]


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:40]


def _etag_of_bytes(content: bytes) -> str:
    """The JSON representation's ETag (the one the editor holds and sends back in If-Match)."""
    return quote_etag(_digest(content))


#: The .nxs representation's tag is the JSON's with this suffix: one URL, two representations, two tags.
NXS_TAG = ".nxs"


def _read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_LIST_BYTES:  # a big data file in the processing folder is not read into memory
        _fail(f"{path.name} is {size} bytes, too large to be a Savu process list (at most {MAX_LIST_BYTES})", 413)
    return path.read_bytes()


def _etag(path: Path) -> str:
    return _etag_of_bytes(_read_bytes(path))


def _check_name(path: Path, user_path: str) -> None:
    if not user_path.strip("/") or path == hebi("context").roots.get(ROOT).path:
        _fail("name the process list, e.g. my_lists/recon.nxs")
    if not path.name.endswith(".nxs"):
        _fail(f"{path.name}: a Savu process list is a .nxs file; name it e.g. {path.stem or 'list'}.nxs")
    if not path.parent.is_dir():
        _fail(f"the folder {ROOT}/{os.path.dirname(user_path.strip('/'))} does not exist", 404)


def _existing(user_path: str, *, writing: bool = False) -> Path:
    path = _resolve(user_path, writing=writing)
    if not path.exists():
        _fail(f"no process list {ROOT}/{user_path.strip('/')}", 404)
    if path.is_dir():
        _fail(f"{ROOT}/{user_path.strip('/')} is a folder, not a process list", 409)
    return path


def _check_if_match(path: Path, *, required: bool = True) -> None:
    """412 when the client's tag is not the file's (compared strongly, as RFC 9110 asks of If-Match: a
    weak W/ tag never matches); 428 when a change comes with no tag at all. Either representation's
    tag names the same version of the file."""
    if "If-Match" not in request.headers:
        if required:
            _fail(f"{path.name} exists: send If-Match with the ETag you read (GET the list first), so that "
                  "a change made meanwhile is not overwritten", 428)
        return
    asked = request.if_match
    if asked.star_tag:
        return
    digest = _digest(_read_bytes(path))
    if not (asked.contains(digest) or asked.contains(digest + NXS_TAG)):
        _fail(f"{path.name} was changed since you read it (your ETag {request.headers['If-Match']} is stale or "
              f"weak; it is now {quote_etag(digest)}). Reload it and apply your change again.", 412)


@contextmanager
def _folder_lock(folder: Path):
    """One writer at a time per folder, across the API's worker processes (flock on the directory)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_bytes_atomically(content: bytes, target: Path) -> None:
    with atomic_write(target) as out:
        out.write(content)


def _history(path: Path) -> ListHistory:
    return ListHistory(hebi("context").state_dir, _rel(path))


def _record(path: Path, before: bytes | None, command: str) -> None:
    """Keep the version just written (and the one it replaced) for undo; call under the folder lock."""
    if before is not None:
        _history(path).record(before, path.read_bytes(), command)


# -- JSON form ----------------------------------------------------------------------------------

def _catalogue() -> Catalogue:
    return hebi("catalogue")


def plugin_json(entry: PluginEntry, catalogue: Catalogue) -> dict[str, Any]:
    definition = catalogue.get(entry.name)
    return {"pos": entry.pos, "name": entry.name, "id": entry.module, "active": entry.active,
            "params": entry.params, "known": entry.known,
            "kind": definition.kind if definition else None,
            "needs_gpu": definition.needs_gpu if definition else None,
            "filled_defaults": entry.filled_defaults, "notices": entry.notices}


def document(process_list: ProcessList, path: Path, etag: str) -> dict[str, Any]:
    catalogue = _catalogue()
    return {"path": _rel(path), "root": ROOT, "version": process_list.version, "etag": etag,
            "plugins": [plugin_json(e, catalogue) for e in process_list.plugins],
            "loops": [loop.to_json() for loop in process_list.loops],
            "problems": [p.to_json() for p in check_runnable(process_list, catalogue)],
            "catalogue": {"source": catalogue.source, "savu_version": catalogue.savu_version}}


def _answer(process_list: ProcessList, path: Path, status: int = 200, **extra):
    etag = _etag(path)
    body = document(process_list, path, etag)
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return response


def _positions(plugins: list[dict[str, Any]]) -> list[str]:
    """Positions from a document: all given (and in Savu's order) or none (numbered 1..N)."""
    given = [p.get("pos") for p in plugins]
    if all(pos in (None, "") for pos in given):
        return [str(i) for i in range(1, len(plugins) + 1)]
    if any(pos in (None, "") for pos in given):
        _fail("give every plugin a position ('pos') or none of them")
    split = [split_position_or_error(str(pos).strip()) for pos in given]
    expected = 1
    for index, (number, letter) in enumerate(split):
        previous = split[index - 1] if index else None
        if previous and number == previous[0]:
            if not (letter and previous[1] and ord(letter) == ord(previous[1]) + 1):
                _fail(f"positions must follow each other as Savu numbers them (1, 2, 3a, 3b, 4...); "
                      f"{given[index - 1]} then {given[index]} does not")
            continue
        if number != expected or letter not in ("", "a"):
            _fail(f"positions must follow each other as Savu numbers them (1, 2, 3a, 3b, 4...); "
                  f"position {given[index]} was not expected at place {index + 1}")
        expected += 1
    return [str(pos).strip() for pos in given]


def from_document(body: Any, current: ProcessList | None, catalogue: Catalogue) -> ProcessList:
    """A ProcessList from the JSON a client sends, checked as savu_config would check each value.
    Values equal to the stored ones are not re-checked, and plugins the catalogue does not know are
    accepted only as they already are in the stored list (they cannot be checked)."""
    if not isinstance(body, dict):
        _fail("send the process list as a JSON object: {\"plugins\": [...], \"loops\": [...]}")
    unknown = sorted(set(body) - {"plugins", "loops", "path", "root", "version", "etag", "problems", "catalogue"})
    if unknown:
        _fail(f"unknown field(s) {', '.join(map(repr, unknown))} in the process list document")
    plugins = body.get("plugins", [])
    loops = body.get("loops", [])
    if not isinstance(plugins, list) or not all(isinstance(p, dict) for p in plugins):
        _fail("'plugins' must be a list of objects {\"name\", \"params\", \"active\"}")
    if not isinstance(loops, list):
        _fail("'loops' must be a list of {\"start\", \"end\", \"iterations\"}")
    positions = _positions(plugins)
    stored = {(e.pos, e.name): e for e in current.plugins} if current else {}
    unused_unknown = [e for e in (current.plugins if current else []) if not e.known]
    entries = []
    for pos, item in zip(positions, plugins):
        extra = sorted(set(item) - {"pos", "name", "id", "active", "params", "known", "kind", "needs_gpu",
                                    "filled_defaults", "notices"})
        if extra:
            _fail(f"plugin at position {pos}: unknown field(s) {', '.join(map(repr, extra))}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            _fail(f"plugin at position {pos}: 'name' must be the plugin's name, e.g. \"MedianFilter\"")
        active = item.get("active", True)
        if not isinstance(active, bool):
            _fail(f"plugin {pos} ({name}): 'active' must be true or false, not {active!r}")
        params = item.get("params", {})
        if not isinstance(params, dict):
            _fail(f"plugin {pos} ({name}): 'params' must be an object of parameter values")
        params = normalise_none(params)
        definition = catalogue.get(name)
        if definition is None:
            match = next((e for e in unused_unknown if e.name == name and
                          (item.get("id") in (None, e.module))), None)
            if match is None:
                hint = catalogue.suggest(name)
                more = f"; did you mean {' or '.join(hint)}?" if hint else ""
                _fail(f"Unknown plugin {name!r} at position {pos}: it is not in the plugin catalogue{more}", 404)
            unused_unknown.remove(match)
            entry = match.copy()
            entry.pos, entry.active = pos, active
            if params != entry.params:
                entry.params, entry.raw_data = params, None
            entries.append(entry)
            continue
        if item.get("id") not in (None, definition.module):
            _fail(f"plugin {pos} ({name}): its id (module) is {definition.module!r}, not {item.get('id')!r}")
        before = stored.get((pos, name))
        same_plugin = [e for e in (current.plugins if current else []) if e.name == name]
        for key, value in list(params.items()):
            parameter = definition.parameter(key)
            if any(key in e.params and e.params[key] == value for e in same_plugin):
                continue  # a value already in the stored list (even if moved) is not checked again
            if parameter is None:
                _fail(f"plugin {pos} ({name}) has no parameter {key!r}; its parameters are: "
                      f"{', '.join(definition.parameter_names())}")
            value = savu_value(value) if isinstance(value, str) else value
            params[key] = value
            problem = value_problem(key, value, parameter)
            if problem:
                _fail(f"The value {value!r} for plugin {pos} ({name}), parameter '{key}', is not correct. {problem}")
        completed, filled = complete_params(definition, params)
        citations = before.citations if before else [Citation(f"citation{i}", **c)
                                                     for i, c in enumerate(definition.citations, 1)]
        entries.append(PluginEntry(pos=pos, name=name, module=definition.module, active=active,
                                   params=completed, known=True, citations=citations, filled_defaults=filled))
    result = ProcessList(plugins=entries, loops=[], version=current.version if current else None,
                         framework_citations=current.framework_citations if current else [])
    editor = Editor(result, catalogue)
    for number, loop in enumerate(loops, start=1):
        if not isinstance(loop, dict) or set(loop) != {"start", "end", "iterations"}:
            _fail(f"loop {number} must be {{\"start\": S, \"end\": E, \"iterations\": N}}")
        try:
            editor.iterate(set_loop=loop)
        except OperationError as err:
            raise OperationError(f"loop {number}: {err.message}", err.status) from None
    problem = loader_problem(result, catalogue)
    if problem:
        _fail(problem, 409)
    return result


# -- routes -----------------------------------------------------------------------------------

def _listing(folder: Path):
    root = hebi("context").roots.get(ROOT)
    folders, lists = [], []
    with os.scandir(folder) as scan:
        for item in scan:
            if item.name.startswith("."):
                continue  # temporary files of saves in progress
            try:
                target = os.path.realpath(item.path)
                if target != str(root.path) and not target.startswith(str(root.path) + "/"):
                    continue
                st = os.stat(item.path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                folders.append({"name": item.name, "path": _rel(Path(item.path))})
            elif stat.S_ISREG(st.st_mode) and item.name.endswith(".nxs"):
                lists.append({"name": item.name, "path": _rel(Path(item.path)), "size": st.st_size,
                              "modified": int(st.st_mtime)})
    folders.sort(key=lambda f: f["name"].lower())
    lists.sort(key=lambda f: f["name"].lower())
    return jsonify(root=ROOT, folder=_rel(folder) if folder != root.path else "", writable=root.writable,
                   folders=folders, lists=lists)


@blueprint.get("/process-lists")
def list_folder():
    folder = _resolve(request.args.get("folder", ""))
    if not folder.is_dir():
        _fail(f"no folder {ROOT}/{request.args.get('folder', '')}", 404)
    return _listing(folder)


def _wants_hdf5() -> bool:
    """``?format=nxs`` (the download link), or asked for by name in Accept: a client that takes anything
    (*/*) gets JSON."""
    asked = request.args.get("format")
    if asked not in (None, "", "json", "nxs"):
        _fail(f"unknown format {asked!r}: json (the editor's document) or nxs (Savu's file)")
    if asked:
        return asked == "nxs"
    return request.accept_mimetypes.best_match(["application/json", HDF5], default="application/json") == HDF5


@blueprint.get("/process-lists/<path:user_path>")
def get_list(user_path: str):
    path = _resolve(user_path)
    if path.is_dir():
        return _listing(path)
    path = _existing(user_path)
    content = _read_bytes(path)
    wants_hdf5 = _wants_hdf5()
    tag = _digest(content) + (NXS_TAG if wants_hdf5 else "")
    if request.if_none_match.contains_weak(tag):  # RFC 9110: If-None-Match compares weakly
        response = Response(status=304)
    elif wants_hdf5:
        response = Response(content, mimetype=HDF5)
        response.headers["Content-Disposition"] = f"attachment; filename=\"{path.name}\""
    else:
        process_list = read_process_list_bytes(content, path.name, _catalogue())
        response = jsonify(document(process_list, path, quote_etag(tag)))
    response.set_etag(tag)
    # Two representations at one URL: caches must key them by Accept, and revalidate before reuse.
    response.vary.add("Accept")
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.post("/process-lists/<path:user_path>")
def create_list(user_path: str):
    path = _resolve(user_path, writing=True)
    _check_name(path, user_path)
    body = json_body()
    source = body.pop("copy_from", None) if isinstance(body, dict) else None
    if source is not None and (not isinstance(source, str) or body):
        _fail("copy_from takes the path of a list in processing, and nothing else may be sent with it")
    with _folder_lock(path.parent):
        if path.exists():
            _fail(f"{ROOT}/{user_path.strip('/')} already exists; PUT with If-Match replaces it", 409)
        if source is not None:  # "save as": the list as it is, unknown plugins included
            original = _existing(source)
            process_list = read_process_list(original, _catalogue())
        else:
            process_list = from_document(body if body is not None else {}, None, _catalogue())
        write_process_list(process_list, path, _catalogue())
        created = read_process_list(path, _catalogue())
        return _answer(created, path, 201)


@blueprint.put("/process-lists/<path:user_path>")
@accepts(HDF5)
def replace_list(user_path: str):
    path = _resolve(user_path, writing=True)
    _check_name(path, user_path)
    if path.is_dir():
        _fail(f"{ROOT}/{user_path.strip('/')} is a folder", 409)
    if request.mimetype == HDF5:
        return _upload(path)
    body = json_body()
    if body is None:
        _fail("the request body is empty: send the process list as JSON")
    with _folder_lock(path.parent):
        current, before = None, None
        if path.exists():
            _check_if_match(path)
            before = _read_bytes(path)
            current = read_process_list(path, _catalogue())
        process_list = from_document(body, current, _catalogue())
        write_process_list(process_list, path, _catalogue())
        _record(path, before, "(the whole list replaced)")
        saved = read_process_list(path, _catalogue())
        return _answer(saved, path, 200 if current else 201)


def _upload(path: Path):
    limit = min(hebi("config").session.max_upload_bytes, MAX_LIST_BYTES)
    if request.content_length is not None and request.content_length > limit:
        _fail(f"the file is {request.content_length} bytes; process lists up to {limit} bytes are accepted", 413)
    content = request.stream.read(limit + 1)
    if len(content) > limit:
        _fail(f"the file is larger than {limit} bytes, the limit for process lists", 413)
    if not content:
        _fail("the upload is empty: send the .nxs file as the request body")
    process_list = read_process_list_bytes(content, path.name, _catalogue())  # refuses non-lists
    with _folder_lock(path.parent):
        existed = path.exists()
        before = None
        if existed:
            _check_if_match(path)
            before = _read_bytes(path)
        with hebi("quota").upload(path, len(content)) as take:
            take(len(content))
            _write_bytes_atomically(content, path)
        _record(path, before, "(a .nxs file uploaded over the list)")
        return _answer(process_list, path, 200 if existed else 201)


@blueprint.delete("/process-lists/<path:user_path>")
def delete_list(user_path: str):
    path = _existing(user_path, writing=True)
    with _folder_lock(path.parent):
        _check_if_match(path)
        path.unlink()
        _history(path).forget()
    return "", 204


def _level(body: dict[str, Any]) -> Any:
    return body.get("level", "basic")


def _run(user_path: str, path: Path, operations: Any, level: Any, label: str | None = None, **extra):
    with _folder_lock(path.parent):
        before = _read_bytes(path)
        current = read_process_list_bytes(before, path.name, _catalogue())
        changed, results, modified = apply_operations(current, operations, _catalogue(), level)
        if not modified:
            return _answer(current, path, results=results, **extra)
        _resolve(user_path, writing=True)  # a read-only root refuses changes
        _check_if_match(path)
        write_process_list(changed, path, _catalogue())
        _record(path, before, label or "; ".join(command_text(op) for op in operations))
        saved = read_process_list(path, _catalogue())
        return _answer(saved, path, results=results, **extra)


@blueprint.post("/process-lists/<path:user_path>/operations")
def run_operations(user_path: str):
    path = _existing(user_path)
    body = json_body()
    if not isinstance(body, dict):
        _fail("send {\"operations\": [{\"op\": \"add\", \"name\": \"MedianFilter\"}, ...]}")
    extra = sorted(set(body) - {"operations", "level"})
    if extra:
        _fail(f"unknown field(s) {', '.join(map(repr, extra))}; send {{\"operations\": [...], \"level\": ...}}")
    return _run(user_path, path, body.get("operations"), _level(body))


@blueprint.post("/process-lists/<path:user_path>/command")
def run_command(user_path: str):
    """One line typed as in savu_config. The answer is the list as for /operations, plus ``command``
    (what was understood) and, for undo, redo, history, params and help, their own fields."""
    path = _existing(user_path)
    body = json_body()
    if not isinstance(body, dict) or sorted(set(body) - {"line", "level"}):
        _fail("send {\"line\": \"mod 4.1 86\"} (and optionally \"level\")")
    command = parse(body.get("line"))
    understood = {"line": command.line, "operations": command.operations, "special": command.special}
    if command.special in ("undo", "redo"):
        if command.argument:
            _fail(f"{command.special} takes nothing after it")
        return _step(user_path, path, -1 if command.special == "undo" else 1, command=understood)
    if command.special == "history":
        with _folder_lock(path.parent):
            current = read_process_list(path, _catalogue())
            return _answer(current, path, command=understood, history=_history(path).describe(_read_bytes(path)))
    if command.special == "help":
        current = read_process_list(path, _catalogue())
        return _answer(current, path, command=understood, help=[{"syntax": a, "does": b} for a, b in HELP])
    if command.special == "params":
        return _params(path, command.argument, understood, _level(body))
    return _run(user_path, path, command.operations, _level(body), command.line, command=understood)


def _params(path: Path, argument: str, understood: dict, level: Any):
    """``params NAME``: a catalogue plugin's description, parameters and citations (before adding it);
    ``params POS``: the parameters of the plugin at that position, with descriptions (``disp POS -v``)."""
    current = read_process_list(path, _catalogue())
    name = argument.strip()
    if not name:
        _fail("params takes a plugin name (params AstraReconCpu) or a position (params 3)")
    if name[0].isdigit():
        shown = Editor(current, _catalogue()).disp(name, None, level, True)
        return _answer(current, path, command=understood, results=[shown])
    definition = _catalogue().get(name)
    if definition is None:
        hint = _catalogue().suggest(name)
        _fail(f"Unknown plugin {name!r}: it is not in the plugin catalogue"
              f"{'; did you mean ' + ' or '.join(hint) + '?' if hint else ''}", 404)
    return _answer(current, path, command=understood, plugin=definition.to_json())


def _step(user_path: str, path: Path, direction: int, **extra):
    _resolve(user_path, writing=True)
    with _folder_lock(path.parent):
        _check_if_match(path)
        current = _read_bytes(path)
        history = _history(path)
        content, done, index = history.step(current, direction)
        _write_bytes_atomically(content, path)
        history.commit(index)
        saved = read_process_list(path, _catalogue())
        word = "Undone" if direction < 0 else "Redone"
        return _answer(saved, path, results=[{"notes": [f"{word}: {done}"]}], history=history.describe(content),
                       **extra)


@blueprint.post("/process-lists/<path:user_path>/undo")
def undo(user_path: str):
    return _step(user_path, _existing(user_path), -1)


@blueprint.post("/process-lists/<path:user_path>/redo")
def redo(user_path: str):
    return _step(user_path, _existing(user_path), 1)


@blueprint.get("/process-lists/<path:user_path>/history")
def history(user_path: str):
    path = _existing(user_path)
    return jsonify(_history(path).describe(_read_bytes(path)))


@blueprint.get("/process-lists/<path:user_path>/disp")
def display(user_path: str):
    path = _existing(user_path)
    process_list = read_process_list(path, _catalogue())
    editor = Editor(process_list, _catalogue())
    flag = request.args.get("verbose", "").lower() in ("1", "true", "yes")
    return jsonify(editor.disp(request.args.get("start"), request.args.get("stop"),
                               request.args.get("level", "basic"), flag,
                               request.args.get("datasets", "").lower() in ("1", "true", "yes")))


@blueprint.get("/process-lists/<path:user_path>/cite")
def cite(user_path: str):
    path = _existing(user_path)
    return jsonify(Editor(read_process_list(path, _catalogue()), _catalogue()).cite(
        request.args.get("start"), request.args.get("stop")))


@blueprint.get("/process-lists/<path:user_path>/problems")
def problems(user_path: str):
    path = _existing(user_path)
    found = check_runnable(read_process_list(path, _catalogue()), _catalogue())
    return jsonify(runnable=not found, problems=[p.to_json() for p in found])
