"""savu_config's command line: one typed line (``mod 4.1 86``) read into the JSON operations of
operations.py, and operations written back as the line savu_config would take (for the history).

The syntax is savu_config 4.2's (scripts/config_generator/arg_parsers.py); hebi adds ``undo``, ``redo``
and ``params NAME`` (a plugin's parameters before it is added), and answers ``open``, ``save``, ``clear``
and ``exit`` with what to do instead, since the editor opens and saves lists itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .operations import OperationError

MAX_LINE = 4000
#: Commands that are not operations on the list: the API answers them itself.
SPECIAL = {"undo", "redo", "history", "params", "help"}
HELP = [
    ("add NAME [POS]", "add a plugin at the end, or at POS (3 or 3a)"),
    ("mod POS.PARAM VALUE", "change a parameter by name or number: mod 4.1 86, mod 4.preview.dim1 0:10"),
    ("mod -d POS.PARAM", "set a parameter back to its default"),
    ("mod -g NAME VALUE", "set NAME in every plugin that has it"),
    ("rem POS [POS ...]", "remove plugins"),
    ("move OLD NEW", "move a plugin"),
    ("dupl POS [NEW]", "duplicate a plugin"),
    ("replace POS NAME", "swap in another plugin with its defaults"),
    ("set POS [POS ...] on|off", "switch plugins on or off"),
    ("ref [POS ...|*] [-d]", "refresh plugins to the current definitions (-d: defaults)"),
    ("iterate [--set S E N | --remove [N ...]]", "show, set or remove loops"),
    ("expand POS [DIMS] | expand POS.PARAM", "a preview per dimension, or the values of a tuned parameter"),
    ("disp [START [STOP]] [-v] [-a] [-d]", "show the list (-v descriptions, -a all levels, -d datasets)"),
    ("list [TEXT]", "plugins in the catalogue"),
    ("params NAME", "a plugin's description, parameters and citations"),
    ("cite [START [STOP]]", "citations"),
    ("coll", "plugin collections"),
    ("level [basic|intermediate|advanced]", "which parameters are shown"),
    ("undo, redo, history", "step back and forth through the saved versions"),
]
INSTEAD = {
    "open": "open a list from the panel on the left",
    "save": "every change is saved at once; use undo to take one back, or 'Save as…' for a copy",
    "clear": "remove the plugins with rem, or make a new list",
    "exit": "there is nothing to exit: close the page when you are done",
}


@dataclass
class Command:
    """A line read: the operations to run, or a special command with its argument."""
    line: str
    operations: list[dict[str, Any]] = field(default_factory=list)
    special: str | None = None
    argument: str = ""


def _fail(message: str) -> None:
    raise OperationError(f"{message} (type help for the commands)")


def _position_and_param(key: str) -> tuple[str, list[str]]:
    pos, _, rest = key.partition(".")
    return pos, [p for p in rest.split(".")] if rest else []


def _flags(words: list[str], known: set[str]) -> tuple[list[str], set[str]]:
    plain, flags = [], set()
    for word in words:
        if word.startswith("-") and not re.fullmatch(r"-\d.*", word):
            if word not in known:
                _fail(f"unknown option {word}")
            flags.add(word)
        else:
            plain.append(word)
    return plain, flags


def parse(line: Any) -> Command:
    if not isinstance(line, str) or not line.strip():
        _fail("type a savu_config command, e.g. mod 4.1 86")
    if len(line) > MAX_LINE:
        _fail(f"the line is longer than {MAX_LINE} characters")
    text = line.strip()
    name, _, rest = text.partition(" ")
    name, rest = name.lower(), rest.strip()
    words = rest.split()
    if name in INSTEAD:
        raise OperationError(f"{name}: not needed in hebi, {INSTEAD[name]}")
    if name in SPECIAL:
        return Command(text, special=name, argument=rest)
    operation = _operation(name, rest, words)
    return Command(text, operations=[operation])


def _operation(name: str, rest: str, words: list[str]) -> dict[str, Any]:
    if name == "add":
        if len(words) not in (1, 2):
            _fail("add takes a plugin name and an optional position: add MedianFilter 3")
        return {"op": "add", "name": words[0], **({"pos": words[1]} if len(words) == 2 else {})}
    if name == "dupl":
        if len(words) not in (1, 2):
            _fail("dupl takes a position and an optional new position: dupl 3 5")
        return {"op": "dupl", "pos": words[0], **({"new_pos": words[1]} if len(words) == 2 else {})}
    if name == "rem":
        if not words:
            _fail("rem takes one or more positions: rem 3 4")
        return {"op": "rem", "pos": words}
    if name == "move":
        if len(words) != 2:
            _fail("move takes the old and the new position: move 5 2")
        return {"op": "move", "pos": words[0], "new_pos": words[1]}
    if name == "replace":
        if len(words) != 2:
            _fail("replace takes a position and a plugin name: replace 4 AstraReconGpu")
        return {"op": "replace", "pos": words[0], "name": words[1]}
    if name == "set":
        if len(words) < 2 or words[-1].lower() not in ("on", "off"):
            _fail("set takes positions then on or off: set 3 4 off")
        return {"op": "set", "pos": words[:-1], "state": words[-1].lower()}
    if name == "ref":
        plain, flags = _flags(words, {"-d", "-n"})
        return {"op": "ref", "pos": plain if plain and plain != ["*"] else "*", "defaults": "-d" in flags}
    if name == "mod":
        return _mod(rest, words)
    if name == "iterate":
        if not words:
            return {"op": "iterate"}
        if words[0] == "--set":
            if len(words) != 4 or not all(w.isdigit() for w in words[1:]):
                _fail("iterate --set takes the start and end positions and the iterations: iterate --set 3 4 5")
            return {"op": "iterate", "set": {"start": int(words[1]), "end": int(words[2]), "iterations": int(words[3])}}
        if words[0] == "--remove":
            if not all(w.isdigit() for w in words[1:]):
                _fail("iterate --remove takes loop numbers (or none, for all)")
            return {"op": "iterate", "remove": [int(w) for w in words[1:]] or "all"}
        _fail("iterate takes nothing, --set START END ITERATIONS, or --remove [N ...]")
    if name == "expand":
        plain, _flags_seen = _flags(words, {"--off"})
        if not plain or len(plain) > 2:
            _fail("expand takes a position and an optional number of dimensions: expand 1 4, or expand 5.centre_of_rotation")
        pos, params = _position_and_param(plain[0])
        operation: dict[str, Any] = {"op": "expand", "pos": pos}
        if params:
            operation["param"] = ".".join(params)
        if len(plain) == 2:
            if not plain[1].isdigit():
                _fail(f"the number of dimensions must be a number, not {plain[1]!r}")
            operation["dims"] = int(plain[1])
        return operation
    if name == "disp":
        plain, flags = _flags(words, {"-q", "-v", "-vv", "-a", "-l", "-d"})
        if len(plain) > 2:
            _fail("disp takes at most a start and a stop position")
        operation = {"op": "disp", "verbose": bool(flags & {"-v", "-vv"}), "datasets_only": "-d" in flags}
        if "-a" in flags:
            operation["level"] = "advanced"
        if plain:
            operation["start"] = plain[0].partition(".")[0]
        if len(plain) == 2:
            operation["stop"] = plain[1]
        return operation
    if name == "list":
        plain, _ = _flags(words, {"-q", "-v", "-vv"})
        return {"op": "list", "q": " ".join(plain)}
    if name == "cite":
        if len(words) > 2:
            _fail("cite takes at most a start and a stop position")
        return {"op": "cite", **({"start": words[0]} if words else {}), **({"stop": words[1]} if len(words) == 2 else {})}
    if name == "coll":
        return {"op": "coll"}
    if name == "level":
        if len(words) > 1:
            _fail("level takes basic, intermediate or advanced")
        return {"op": "level", **({"level": words[0]} if words else {})}
    raise OperationError(f"I'm sorry, {name!r} is not a command I recognise. Type help for the commands.")


def _mod(rest: str, words: list[str]) -> dict[str, Any]:
    if words and words[0] == "-d":
        if len(words) != 2:
            _fail("mod -d takes one POS.PARAM: mod -d 4.centre_of_rotation")
        pos, params = _position_and_param(words[1])
        if len(params) != 1:
            _fail("mod -d takes POS.PARAM, e.g. mod -d 4.1")
        return {"op": "mod", "pos": pos, "param": params[0], "default": True}
    if words and words[0] == "-g":
        if len(words) < 3:
            _fail("mod -g takes a parameter name and a value: mod -g ratio 2.5")
        value = rest.split(None, 2)[2]
        return {"op": "mod", "all": True, "param": words[1], "text": value}
    if len(words) < 2:
        _fail("mod takes POS.PARAM and a value: mod 4.1 86, or mod 4.centre_of_rotation 86")
    key, value = words[0], rest.split(None, 1)[1]
    pos, params = _position_and_param(key)
    if not params:
        _fail(f"{key}: name the parameter too, as POS.PARAM (e.g. {key}.1)")
    operation: dict[str, Any] = {"op": "mod", "pos": pos, "param": params[0], "text": value}
    if len(params) >= 2:
        dim = params[1]
        if not re.fullmatch(r"dim\d+", dim):
            _fail(f"{key}: after the parameter comes dimN (preview dimensions), not {dim!r}")
        operation["dim"] = int(dim[3:])
        if len(params) == 3:
            operation["part"] = params[2]
        elif len(params) > 3:
            _fail(f"{key}: too many parts")
    return operation


def command_text(operation: Any) -> str:
    """The savu_config line for an operation, as the history shows it."""
    if not isinstance(operation, dict):
        return "?"
    get = operation.get
    op = str(get("op", "?"))

    def many(value: Any) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value if value is not None else "")

    if op == "add":
        return f"add {get('name')}{' ' + str(get('pos')) if get('pos') else ''}"
    if op in ("dupl", "move"):
        return f"{op} {get('pos')}{' ' + str(get('new_pos')) if get('new_pos') else ''}"
    if op == "rem":
        return f"rem {many(get('pos'))}"
    if op == "set":
        return f"set {many(get('pos'))} {get('state')}"
    if op == "replace":
        return f"replace {get('pos')} {get('name')}"
    if op == "ref":
        return f"ref {many(get('pos', '*'))}{' -d' if get('defaults') else ''}"
    if op == "mod":
        value = get("text") if get("text") is not None else get("value")
        if get("all"):
            return f"mod -g {get('param')} {value}"
        key = f"{get('pos')}.{get('param')}"
        if get("dim") is not None:
            key += f".dim{get('dim')}" + (f".{get('part')}" if get("part") else "")
        return f"mod -d {key}" if get("default") else f"mod {key} {value}"
    if op == "iterate":
        if get("set"):
            loop = get("set") or {}
            return f"iterate --set {loop.get('start')} {loop.get('end')} {loop.get('iterations')}"
        remove = get("remove")
        return f"iterate --remove{'' if remove in ('all', '*', True) else ' ' + many(remove)}"
    if op == "expand":
        return f"expand {get('pos')}{' ' + str(get('dims')) if get('dims') else ''}"
    return op
