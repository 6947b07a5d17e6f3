"""Savu plugin parameters: the dtype grammar, value checks, parameter tuning, previews, dependencies and
savu_config's parameter numbering — the rules of Savu 4.2's configurator (parameter_utils.py,
plugins/utils.py), written once so the API, the runner and the editor agree.

Every check returns an error *message* (``None`` when the value is fine) worded like Savu's own:
"The parameter 'kernel_size' does not match the type: 'integer'."
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

from . import expressions as _expressions
from . import preview as _preview

# numpy is imported inside the functions that use it: a session's API that never evaluates an
# expression does not carry numpy's memory (bench/session).

BASIC_TYPES = ("int", "float", "str", "bool", "list", "dict", "None", "filepath", "dir", "h5path",
               "yamlfilepath", "nptype", "preview", "filename")
TYPE_WORDS = {"int": "integer", "float": "float/integer", "str": "string", "bool": "boolean", "list": "list",
              "dict": "dict", "None": "None", "filepath": "filepath", "dir": "directory", "h5path": "hdf5 path",
              "yamlfilepath": "yaml file path", "nptype": "numpy data type", "preview": "preview slices",
              "filename": "file name"}
VISIBILITY_GROUPS = ("basic", "intermediate", "advanced", "datasets")


class DtypeError(ValueError):
    """A dtype expression the grammar does not accept (a catalogue bug, not a user error)."""


# -- the dtype grammar ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Dtype:
    """One node of a parsed dtype: ``basic`` (name), ``any`` (items), ``list`` (items: None = any
    list, () = empty list, one item = list of that, several = exactly those), ``dict`` (items: () =
    empty dict, (key, value))."""

    kind: str
    name: str = ""
    items: tuple[Dtype, ...] | None = None
    homogeneous: bool = False

    def describe(self) -> str:
        if self.kind == "basic":
            return TYPE_WORDS.get(self.name, self.name)
        if self.kind == "any":
            return " or ".join(item.describe() for item in self.items)
        if self.kind == "list":
            if self.items is None:
                return "list"
            if not self.items:
                return "empty list"
            if self.homogeneous:
                return f"list of {self.items[0].describe()}"
            return "list [" + ", ".join(item.describe() for item in self.items) + "]"
        if not self.items:
            return "empty dict"
        return f"dict {{{self.items[0].describe()}: {self.items[1].describe()}}}"


def parse_dtype(text: str) -> Dtype:
    """Parse a Savu dtype expression such as ``[None,float]`` or ``list[filepath, h5path, float]``."""
    source = re.sub(r"\s+", "", str(text))
    node, rest = _parse(source, source)
    if rest:
        raise DtypeError(f"unexpected {rest!r} at the end of dtype {text!r}")
    return node


def _parse(text: str, whole: str) -> tuple[Dtype, str]:
    if text.startswith("["):
        items, rest = _parse_items(text[1:], "]", whole)
        return Dtype("any", items=tuple(items)), rest
    if text.startswith("list["):
        items, rest = _parse_items(text[5:], "]", whole)
        return Dtype("list", items=tuple(items), homogeneous=len(items) == 1), rest
    if text.startswith("dict{"):
        rest = text[5:]
        if rest.startswith("}"):
            return Dtype("dict", items=()), rest[1:]
        key, rest = _parse(rest, whole)
        if not rest.startswith(":"):
            raise DtypeError(f"dict in dtype {whole!r} needs key:value")
        value, rest = _parse(rest[1:], whole)
        if not rest.startswith("}"):
            raise DtypeError(f"unclosed dict in dtype {whole!r}")
        return Dtype("dict", items=(key, value)), rest[1:]
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text)
    if not match:
        raise DtypeError(f"cannot read dtype {whole!r} at {text!r}")
    name = match.group(0)
    if name not in BASIC_TYPES:
        raise DtypeError(f"unknown type {name!r} in dtype {whole!r}")
    rest = text[len(name):]
    if name == "list":
        return Dtype("list", items=None), rest
    if name == "dict":
        return Dtype("basic", name="dict"), rest
    return Dtype("basic", name=name), rest


def _parse_items(text: str, close: str, whole: str) -> tuple[list[Dtype], str]:
    items: list[Dtype] = []
    if text.startswith(close):
        return items, text[1:]
    while True:
        node, text = _parse(text, whole)
        items.append(node)
        if text.startswith(","):
            text = text[1:]
            continue
        if text.startswith(close):
            return items, text[1:]
        raise DtypeError(f"expected ',' or '{close}' in dtype {whole!r} at {text!r}")


# -- value coercion (Savu's _dumps and savu_config's way of reading typed text) ------------------

def savu_value(value: Any) -> Any:
    """What Savu stores for ``value``: strings that read as Python literals become those values
    (``"5"`` -> 5, ``"[1, 2]"`` -> [1, 2], ``"None"`` -> None); tuning strings (with ``;``) and plain
    words stay strings. Lists and dicts are converted item by item."""
    if isinstance(value, str):
        text = value.strip()
        if ";" in text or not text:
            return value
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered in ("none", "null"):
                return None
            return value
        if isinstance(parsed, tuple):
            parsed = list(parsed)
        if isinstance(parsed, (set, frozenset, bytes, complex)):
            return value
        return parsed
    if isinstance(value, list):
        return [savu_value(item) if not isinstance(item, str) or item == "None" else item for item in value]
    return value


def parse_value_text(text: str) -> Any:
    """A value typed the way savu_config's ``mod`` reads it: evaluated as a Python literal when
    there is no ``;`` (``[1,2]``, ``None``, ``True``, ``1e-5``), else kept as text (``FBP``,
    ``86;87``); a value with two or more ``:`` and no ``;`` is taken as a tuning range (``;`` added)."""
    text = str(text).strip()
    if ";" in text:
        return text
    try:
        value = ast.literal_eval(text)
        return list(value) if isinstance(value, tuple) else value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def looks_like_tuning_range(value: Any) -> bool:
    """savu_config's "Parameter tuning syntax applied": ``a:b:c`` without ``;`` or braces."""
    return isinstance(value, str) and value.count(":") >= 2 and ";" not in value and not re.search(r"[{}]", value)


# -- parameter tuning -----------------------------------------------------------------------------

#: Parameters whose ``;`` is never tuning: previews, dataset names and Savu's expressions.
NOT_TUNABLE = ("preview", "in_datasets", "out_datasets", "log_func", "angles")


def is_tuning(name: str, value: Any) -> bool:
    return name not in NOT_TUNABLE and isinstance(value, str) and ";" in value


def expand_tuning(name: str, text: str) -> list[Any]:
    """``a;b;c`` -> [a, b, c] (each read as a value, empty pieces dropped); ``start:stop[:step];`` ->
    ``numpy.arange(start, stop, step)`` (stop excluded; everything after the first ``;`` ignored).
    ValueError with a message naming the parameter when the text is malformed."""
    import numpy as np
    pieces = [piece.strip() for piece in text.split(";") if piece.strip()]
    if not pieces:
        raise ValueError(f"The tuning value {text!r} for '{name}' holds no values: write e.g. 1;2;3 or "
                         "start:stop:step;")
    first = pieces[0]
    if ":" in first and not re.search(r"[{}\[\]]", first):
        parts = first.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"The tuning range {first!r} for '{name}' must be start:stop or start:stop:step")
        numbers = []
        for part in parts:
            number = savu_value(part)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise ValueError(f"The tuning range {first!r} for '{name}' must hold numbers, not {part!r}")
            numbers.append(number)
        if len(numbers) == 3 and numbers[2] == 0:
            raise ValueError(f"The tuning range {first!r} for '{name}' has a step of 0")
        values = np.arange(*numbers)
        if values.size == 0:
            raise ValueError(f"The tuning range {first!r} for '{name}' gives no values (numpy.arange "
                             "excludes the stop value)")
        if values.size > 10000:
            raise ValueError(f"The tuning range {first!r} for '{name}' gives {values.size} values; "
                             "at most 10000 are allowed")
        return [value.item() for value in values]
    return [savu_value(piece) for piece in pieces]


# -- previews: one grammar (preview.py) for the editor, job submission and the runner -------------

def preview_entry_problem(entry: Any) -> str | None:
    return _preview.entry_problem(entry)


def preview_problem(value: Any) -> str | None:
    return _preview.preview_problem(value)


# -- dataset names ----------------------------------------------------------------------------------

#: Savu names datasets with plain identifiers, and the runner and Savu make file names of them.
DATASET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
DATASET_PARAMETERS = ("in_datasets", "out_datasets", "datasets_to_populate")
#: A loader's name for the dataset it makes (NxtomoLoader's ``name``, ImageLoader's ``dataset_name``).
LOADER_DATASET_PARAMETERS = ("name", "dataset_name")


def dataset_name_problem(name: str, value: Any) -> str | None:
    """Why a dataset name (or list of them) in ``name`` is refused; None when every one is a plain
    identifier such as ``tomo`` or ``cor_preview``."""
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str) or not DATASET_NAME.fullmatch(item):
            return (f"The parameter '{name}' holds {item!r}, which is not a dataset name: use letters, digits "
                    "and '_', starting with a letter or '_' (e.g. tomo, cor_preview).")
    return None


def split_preview_entry(entry: Any) -> dict[str, str]:
    """``expand``'s view of one preview dimension: start/stop/step/chunk (":" means everything)."""
    text = str(entry).replace(" ", "")
    if text == ":" or text == "":
        return {"start": "0", "stop": "end", "step": "1", "chunk": "1"}
    parts = text.split(":")
    if len(parts) == 1:
        return {"start": parts[0], "stop": f"{parts[0]}+1", "step": "1", "chunk": "1"}
    parts += [""] * (4 - len(parts))
    return {"start": parts[0] or "0", "stop": parts[1] or "end", "step": parts[2] or "1", "chunk": parts[3] or "1"}


# -- type checks ----------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, float) or _is_int(value))


def _check_basic(name: str, value: Any) -> bool:
    if name == "int":
        return _is_int(value)
    if name == "float":
        return _is_number(value)
    if name == "str":
        return isinstance(value, str)
    if name == "bool":
        return isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))
    if name == "None":
        return value is None or value == "None"
    if name == "dict":
        return isinstance(value, dict)
    if name in ("filepath", "dir", "h5path", "filename"):
        # Paths are resolved on the machine that runs Savu, not in the user's session; hebi checks
        # only that a path is given (see docs/process-lists.md).
        return isinstance(value, str) and value.strip() != ""
    if name == "yamlfilepath":
        return isinstance(value, str) and value.lower().endswith((".yml", ".yaml"))
    if name == "nptype":
        if not isinstance(value, str):
            return False
        import numpy as np
        try:
            np.dtype(value)
            return True
        except TypeError:
            return value in np.typecodes.get("All", "")
    if name == "preview":
        return preview_problem(value) is None
    return False


def matches(dtype: Dtype, value: Any) -> bool:
    if dtype.kind == "basic":
        return _check_basic(dtype.name, value)
    if dtype.kind == "any":
        return any(matches(item, value) for item in dtype.items)
    if dtype.kind == "list":
        if not isinstance(value, list):
            return False
        if dtype.items is None:
            return True
        if not dtype.items:
            return not value
        if dtype.homogeneous:
            return bool(value) and all(matches(dtype.items[0], item) for item in value)
        return len(value) == len(dtype.items) and all(matches(t, v) for t, v in zip(dtype.items, value))
    if not isinstance(value, dict):
        return False
    if not dtype.items:
        return not value
    key_type, value_type = dtype.items
    return bool(value) and all(_key_matches(key_type, k) and matches(value_type, v) for k, v in value.items())


def _key_matches(dtype: Dtype, key: Any) -> bool:
    # JSON object keys are always strings; Savu's {int: float} mappings come back as {"12": 86.5}.
    if matches(dtype, key):
        return True
    if isinstance(key, str):
        try:
            return matches(dtype, int(key))
        except ValueError:
            return False
    return False


def _options_problem(name: str, value: Any, options: list | None) -> str | None:
    if not options or isinstance(value, (list, dict)):
        return None
    if value in options or str(value) in [str(option) for option in options]:
        return None
    shown = " or ".join(repr(option) if option is not None else "None" for option in options)
    return f"The parameter '{name}' does not match the options: {shown}."


def _single_problem(name: str, value: Any, definition: dict[str, Any]) -> str | None:
    dtype = parse_dtype(definition["dtype"])
    if not matches(dtype, value):
        return f"The parameter '{name}' does not match the type: '{dtype.describe()}'."
    return _options_problem(name, value, definition.get("options"))


def value_problem(name: str, value: Any, definition: dict[str, Any]) -> str | None:
    """Savu's ``is_valid``: the default is always accepted (compared as text), tuning strings are
    checked value by value, everything else against the dtype and the options."""
    if str(value) == str(definition.get("default")):
        return None
    if is_tuning(name, value):
        try:
            values = expand_tuning(name, value)
        except ValueError as err:
            return str(err)
        for item in values:
            problem = _single_problem(name, item, definition)
            if problem:
                return f"{problem} (tuning value {item!r} of {value!r})"
        return None
    if name in NOT_TUNABLE and isinstance(value, str) and ";" in value:
        return f"The parameter '{name}' cannot be tuned (no ';' values)."
    problem = _single_problem(name, value, definition)
    if problem is None and name in DATASET_PARAMETERS:
        return dataset_name_problem(name, value)
    if problem is None and name in EXPRESSION_PARAMETERS:
        return expression_problem(name, value)
    return problem


#: Parameters Savu evaluates as Python (with these names bound); the runner evaluates them in the bounded
#: grammar of expressions.py, so the editor checks them with it.
EXPRESSION_PARAMETERS = {"angles": (), "log_func": ("sino",)}
_LOOKS_LIKE_CODE = re.compile(r"\bnp\.|\bnumpy\.|\*\*|[()\[\]]")
#: The most angles an editor check evaluates (the runner allows as many as the data hold).
MAX_CHECKED_ANGLES = 1_000_000


def expression_problem(name: str, value: Any) -> str | None:
    """Why an expression parameter is refused: outside the grammar, or (angles, which need no data)
    beyond its bounds when evaluated. Text that is not code (Savu also takes a file of angles) passes."""
    if not isinstance(value, str) or not _LOOKS_LIKE_CODE.search(value):
        return None
    names = EXPRESSION_PARAMETERS[name]
    try:
        if names:
            _expressions.parse(value, frozenset(names), numpy=True)
        else:
            _expressions.evaluate(value, numpy=True, max_elements=MAX_CHECKED_ANGLES)
    except _expressions.ExpressionError as exc:
        return f"The parameter '{name}' is not an expression hebi evaluates: {exc}"
    return None


# -- what a run receives ------------------------------------------------------------------------------

def run_value(value: Any, definition: dict[str, Any] | None = None) -> Any:
    """The value a plugin runs with for a stored (or tuned) value the editor accepts: "None" is None
    and "true"/"false" on a boolean parameter are booleans, as the editor's type check reads them."""
    if value == "None":
        return None
    if isinstance(value, list):
        return [None if item == "None" else item for item in value]
    if isinstance(value, str) and value.strip().lower() in ("true", "false") and definition is not None:
        dtype = parse_dtype(definition["dtype"])
        if matches(dtype, True) and not matches(dtype, "text"):
            return value.strip().lower() == "true"
    return value


def run_values(name: str, value: Any, definition: dict[str, Any] | None = None) -> list[Any]:
    """Every value a run takes for one parameter: one value, or each tuned value, as run_value reads it.
    ValueError (naming the parameter) for a tuning text the editor would refuse."""
    if is_tuning(name, value):
        return [run_value(item, definition) for item in expand_tuning(name, value)]
    return [run_value(value, definition)]


# -- display: dependencies, levels and numbering --------------------------------------------------

def dependency_met(definition: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether savu_config shows the parameter given the current values of the others."""
    dependency = definition.get("dependency")
    if not dependency:
        return True
    parent = dependency["parent"]
    if parent not in params:  # upstream quirk: a condition on a parameter the plugin lacks always shows
        return True
    parent_value = params[parent]
    values = dependency.get("values")
    if values is None:
        return parent_value is not None
    if "raw" in dependency and isinstance(dependency["raw"], str):
        return str(parent_value) in dependency["raw"]  # Savu's substring test on a plain string
    return str(parent_value) in [str(v) for v in values]


def dependency_text(definition: dict[str, Any]) -> str:
    dependency = definition.get("dependency") or {}
    values = dependency.get("values")
    if values is None:
        return f"only used when '{dependency.get('parent')}' is set (not None)"
    return f"only used when '{dependency.get('parent')}' is " + " or ".join(repr(v) for v in values)


def shown_at(visibility: str, level: str | None) -> bool:
    if visibility in ("hidden", "ignore"):
        return False
    if level is None or level == "advanced":
        return True
    if level == "basic":
        return visibility == "basic"
    return visibility in ("basic", "intermediate", "datasets")


def numbered_parameters(parameters, params: dict[str, Any], level: str | None = None) -> list[dict[str, Any]]:
    """Parameters in savu_config's numbering: basic, intermediate, advanced, then datasets, each in
    definition order, hidden ones and ones whose dependency is not met left out, numbered from 1.
    ``level=None`` is the numbering ``mod P.n`` uses; a level gives what ``disp`` shows at it."""
    shown = [p for p in parameters if dependency_met(p, params)]
    ordered = [p for group in VISIBILITY_GROUPS for p in shown if p.get("visibility") == group]
    ordered = [p for p in ordered if shown_at(p.get("visibility", "basic"), level)]
    return [dict(p, number=number) for number, p in enumerate(ordered, start=1)]
