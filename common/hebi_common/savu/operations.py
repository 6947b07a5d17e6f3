"""savu_config's editing commands as operations on a ProcessList.

Each command of Savu 4.2's configurator (add, dupl, rem, move, mod, set, ref, replace, iterate, expand,
coll, level, disp, cite, plus list) is a method of ``Editor``; ``apply_operations`` runs a batch of them
given as JSON objects (``{"op": "add", "name": "MedianFilter", "pos": "3a"}``) on a copy of the list, so a
batch is all or nothing. Positions, letter positions, loop shifting and validation follow savu_config
(scripts/config_generator/content.py, parameter_utils.py); where hebi deliberately differs it says so
here and in docs/process-lists.md.
"""
from __future__ import annotations

import copy
from typing import Any

from ..errors import UserError
from .catalogue import LEVELS, Catalogue, Plugin
from .parameters import (
    dependency_met,
    dependency_text,
    expand_tuning,
    is_tuning,
    looks_like_tuning_range,
    numbered_parameters,
    parse_value_text,
    preview_entry_problem,
    savu_value,
    split_preview_entry,
    value_problem,
)
from .process_list import Citation, Loop, PluginEntry, ProcessList, complete_params, split_position


class OperationError(UserError):
    """A command that cannot be done; ``status`` is the HTTP answer (400 bad input, 404 no such
    position/plugin, 409 conflicts with the list as it is)."""


def describe(entry: PluginEntry) -> str:
    return f"plugin {entry.pos} ({entry.name})"


def looks_like_loader(entry: PluginEntry, catalogue: Catalogue) -> bool:
    """Loaders by the catalogue; a plugin the catalogue lacks counts as a loader when its module sits in
    Savu's loaders package or its name ends in Loader (how Savu's own plugins are laid out)."""
    definition = catalogue.get(entry.name)
    if definition is not None:
        return definition.is_loader
    return ".loaders." in entry.module or entry.name.endswith("Loader")


def loader_problem(process_list: ProcessList, catalogue: Catalogue) -> str | None:
    """Savu's ``_check_loaders``: the loaders come first and together."""
    if not process_list.plugins:
        return None
    flags = [looks_like_loader(entry, catalogue) for entry in process_list.plugins]
    if not flags[0]:
        first = process_list.plugins[0]
        return (f"The first plugin in the process list must be a loader plugin; position {first.pos} is "
                f"{first.name}.")
    seen_other = False
    for entry, is_loader in zip(process_list.plugins, flags):
        if not is_loader:
            seen_other = True
        elif seen_other:
            return (f"All loader plugins must be at the beginning of the process list; {entry.name} is at "
                    f"position {entry.pos}.")
    return None


class Editor:
    """Applies savu_config commands to ``process_list`` in place (callers pass a copy)."""

    def __init__(self, process_list: ProcessList, catalogue: Catalogue, level: str = "basic"):
        self.list = process_list
        self.catalogue = catalogue
        self.level = level

    # -- helpers ----------------------------------------------------------------------------------
    def _definition(self, name: str) -> Plugin:
        if not isinstance(name, str) or not name.strip():
            raise OperationError("name the plugin, e.g. \"MedianFilter\"")
        definition = self.catalogue.get(name.strip())
        if definition is None:
            hint = self.catalogue.suggest(name)
            more = f"; did you mean {' or '.join(hint)}?" if hint else "; see GET /api/plugins for the list"
            raise OperationError(f"Unknown plugin {name!r}: it is not in the plugin catalogue{more}", 404)
        return definition

    def _index(self, pos: Any) -> int:
        text = str(pos).strip() if pos is not None else ""
        if not text:
            raise OperationError("name the plugin position, e.g. \"3\" or \"3a\"")
        split_position_or_error(text)
        return self.list.find(text)

    def _new_entry(self, definition: Plugin) -> PluginEntry:
        return PluginEntry(pos="", name=definition.name, module=definition.module, active=True,
                           params=definition.defaults(), known=True,
                           citations=[Citation(f"citation{i}", **c) for i, c in
                                      enumerate(definition.citations, start=1)])

    # positions and loops ----------------------------------------------------------------------
    def _insert_slot(self, str_pos: Any) -> tuple[int, str]:
        """savu_config's ``convert_pos``: where a plugin added at ``str_pos`` goes and its position,
        renaming the others as Savu does (adding at 3a turns the existing 3 into 3b)."""
        text = str(str_pos).strip()
        number, letter = split_position_or_error(text)
        plugins = self.list.plugins
        count = len(plugins)
        numbers = [split_position(p.pos)[0] for p in plugins]
        last = max(numbers) if numbers else 0
        if number < 1 or number > last + 1:
            raise OperationError(f"Position {text} is out of range: the list has {count} plugin(s), so a "
                                 f"plugin can be added at 1 to {last + 1} (a letter such as {min(number, last) or 1}a "
                                 "makes a sub-position)", 400)
        split = [split_position(p.pos) for p in plugins]
        if (number, letter) in split:  # the exact position exists: push it and its followers along
            index = split.index((number, letter))
            if not letter:
                for i in range(index, count):
                    self._renumber(i, +1, 0)
            else:
                for i in range(index, count):
                    if split[i][0] == number:
                        self._renumber(i, 0, +1)
            return index, text
        if number in numbers:
            start = numbers.index(number)
            same = [i for i in range(count) if numbers[i] == number]
            if letter:
                if split[start][1]:  # 3a, 3b exist and 3d asked: the next free letter after them
                    nxt = chr(ord(split[same[-1]][1]) + 1)
                    return same[-1] + 1, f"{number}{nxt}"
                if letter == "a":
                    plugins[start].pos = f"{number}b"
                    return start, f"{number}a"
                plugins[start].pos = f"{number}a"
                return start + 1, f"{number}b"
            for i in range(start, count):  # plain 3 asked while 3a, 3b exist: they move to 4a, 4b
                self._renumber(i, +1, 0)
            return start, text
        # a new number at the end
        return count, f"{last + 1}{'a' if letter else ''}"

    def _renumber(self, index: int, number_step: int, letter_step: int) -> None:
        number, letter = split_position(self.list.plugins[index].pos)
        if letter_step and letter:
            letter = chr(ord(letter) + letter_step)
        self.list.plugins[index].pos = f"{number + number_step}{letter}"

    def _remove_index(self, index: int) -> tuple[PluginEntry, list[str]]:
        plugins = self.list.plugins
        removed = plugins.pop(index)
        number, letter = split_position(removed.pos)
        same_number_left = any(split_position(p.pos)[0] == number for p in plugins)
        for i in range(index, len(plugins)):
            other_number, other_letter = split_position(plugins[i].pos)
            if letter and same_number_left:
                if other_number == number:
                    self._renumber(i, 0, -1)
            else:
                self._renumber(i, -1, 0)
        notes = self._loops_after_remove(index + 1)
        return removed, notes

    def _insert(self, entry: PluginEntry, pos: Any | None) -> tuple[PluginEntry, list[str]]:
        if pos is None or str(pos).strip() == "":
            numbers = [split_position(p.pos)[0] for p in self.list.plugins]
            index, text = len(self.list.plugins), str((max(numbers) if numbers else 0) + 1)
        else:
            index, text = self._insert_slot(pos)
        entry.pos = text
        self.list.plugins.insert(index, entry)
        return entry, self._loops_after_insert(index + 1)

    def _loops_after_insert(self, place: int) -> list[str]:
        notes, kept = [], []
        for loop in self.list.loops:
            if loop.start >= place:
                kept.append(Loop(loop.start + 1, loop.end + 1, loop.iterations))
            elif loop.start < place <= loop.end:
                notes.append(f"the loop over plugins {loop.start}-{loop.end} was removed because a plugin was "
                             "inserted inside it")
            else:
                kept.append(loop)
        self.list.loops = kept
        return notes

    def _loops_after_remove(self, place: int) -> list[str]:
        notes, kept = [], []
        for loop in self.list.loops:
            if loop.start <= place <= loop.end:
                notes.append(f"the loop over plugins {loop.start}-{loop.end} was removed because a plugin "
                             "inside it was removed or moved")
            elif loop.start > place:
                kept.append(Loop(loop.start - 1, loop.end - 1, loop.iterations))
            else:
                kept.append(loop)
        self.list.loops = kept
        return notes

    # -- the commands -------------------------------------------------------------------------------
    def add(self, name: str, pos: Any = None) -> dict[str, Any]:
        entry, notes = self._insert(self._new_entry(self._definition(name)), pos)
        return {"pos": entry.pos, "name": entry.name, "notes": notes}

    def dupl(self, pos: Any, new_pos: Any = None) -> dict[str, Any]:
        original = self.list.plugins[self._index(pos)]
        entry, notes = self._insert(original.copy(), new_pos)
        return {"pos": entry.pos, "name": entry.name, "notes": notes}

    def rem(self, positions: Any) -> dict[str, Any]:
        positions = positions if isinstance(positions, list) else [positions]
        if not positions:
            raise OperationError("name at least one position to remove")
        indices = sorted({self._index(p) for p in positions}, reverse=True)
        removed, notes = [], []
        for index in indices:
            entry, more = self._remove_index(index)
            removed.append(f"{entry.name}")
            notes += more
        return {"removed": removed[::-1], "notes": notes}

    def move(self, old: Any, new: Any) -> dict[str, Any]:
        index = self._index(old)
        if new is None or str(new).strip() == "":
            raise OperationError("name the new position, e.g. {\"op\": \"move\", \"pos\": \"5\", \"new_pos\": \"2\"}")
        split_position_or_error(str(new).strip())
        entry, notes = self._remove_index(index)
        entry, more = self._insert(entry, new)
        return {"pos": entry.pos, "name": entry.name, "notes": notes + more}

    def set(self, positions: Any, state: Any) -> dict[str, Any]:
        positions = positions if isinstance(positions, list) else [positions]
        text = str(state).strip().lower() if not isinstance(state, bool) else ("on" if state else "off")
        if text not in ("on", "off"):
            raise OperationError(f"set takes on or off, not {state!r}")
        indices = [self._index(p) for p in positions]
        for index in indices:
            self.list.plugins[index].active = text == "on"
        return {"switched": [self.list.plugins[i].pos for i in indices], "state": text}

    def replace(self, pos: Any, name: str) -> dict[str, Any]:
        index = self._index(pos)
        old = self.list.plugins[index]
        entry = self._new_entry(self._definition(name))
        entry.pos, entry.active = old.pos, old.active
        self.list.plugins[index] = entry
        return {"pos": entry.pos, "replaced": old.name, "name": entry.name}

    def ref(self, positions: Any = "*", defaults: bool = False) -> dict[str, Any]:
        if positions in ("*", None, [], ["*"]):
            indices = list(range(len(self.list.plugins)))
        else:
            positions = positions if isinstance(positions, list) else [positions]
            indices = [self._index(p) for p in positions]
        refreshed, skipped, dropped = [], [], []
        for index in indices:
            entry = self.list.plugins[index]
            definition = self.catalogue.get(entry.name)
            if definition is None:
                skipped.append(f"{describe(entry)} is not in the catalogue and was left as it is")
                continue
            params = definition.defaults()
            if not defaults:
                for key, value in entry.params.items():
                    parameter = definition.parameter(key)
                    if parameter is None:
                        dropped.append(f"{describe(entry)}: parameter '{key}' no longer exists and was removed")
                    elif value_problem(key, value, parameter) is None:
                        params[key] = value
                    else:
                        dropped.append(f"{describe(entry)}: the value {value!r} of '{key}' is not valid any more; "
                                       "the default was restored")
            entry.params, entry.filled_defaults = complete_params(definition, params)
            entry.module, entry.known, entry.raw_data = definition.module, True, None
            if definition.citations:
                entry.citations = [Citation(f"citation{i}", **c) for i, c in enumerate(definition.citations, 1)]
            refreshed.append(entry.pos)
        return {"refreshed": refreshed, "notes": skipped + dropped}

    def _parameter(self, entry: PluginEntry, definition: Plugin, param: Any) -> dict[str, Any]:
        """A parameter by name, or by savu_config's number (basic, intermediate, advanced, datasets)."""
        numbered = numbered_parameters(definition.parameters, entry.params)
        if isinstance(param, bool) or param is None or str(param).strip() == "":
            raise OperationError(f"name the parameter of {describe(entry)} to change, by name or number")
        if isinstance(param, int) or str(param).strip().isdigit():
            number = int(param)
            if not 1 <= number <= len(numbered):
                raise OperationError(f"{describe(entry)} has parameters 1 to {len(numbered)}; there is no "
                                     f"parameter number {number}", 400)
            return numbered[number - 1]
        name = str(param).strip()
        parameter = definition.parameter(name)
        if parameter is None:
            names = ", ".join(definition.parameter_names())
            raise OperationError(f"{describe(entry)} has no parameter {name!r}; its parameters are: {names}", 400)
        if parameter.get("visibility") == "hidden":
            raise OperationError(f"Parameter '{name}' of {describe(entry)} is hidden; Savu's configurator does "
                                 "not let it be changed", 409)
        if not dependency_met(parameter, entry.params):
            raise OperationError(f"Parameter '{name}' of {describe(entry)} is {dependency_text(parameter)} "
                                 f"(it is {entry.params.get(parameter['dependency']['parent'])!r}), so it "
                                 "cannot be set now", 409)
        return parameter

    def mod(self, pos: Any, param: Any, value: Any = None, *, text: Any = None, default: bool = False,
            dim: Any = None, part: Any = None, has_value: bool = True) -> dict[str, Any]:
        entry = self.list.plugins[self._index(pos)]
        definition = self.catalogue.get(entry.name)
        if definition is None:
            raise OperationError(f"{describe(entry)} is not in the plugin catalogue, so hebi cannot check its "
                                 "parameters; it is kept exactly as it was read", 409)
        parameter = self._parameter(entry, definition, param)
        name = parameter["name"]
        if default:
            new = definition.default_for(name, entry.params)
        else:
            if text is not None:
                if not isinstance(text, str):
                    raise OperationError(f"'text' for {describe(entry)}.{name} must be the value as typed, a string")
                new = parse_value_text(text)
            elif has_value:
                new = savu_value(value) if isinstance(value, str) else value
            else:
                raise OperationError(f"give a value for {describe(entry)}.{name} ('value' as JSON or 'text' as "
                                     "typed in savu_config), or \"default\": true")
            if dim is not None:
                if name != "preview":
                    raise OperationError("Please only use the dimension syntax (dim) when modifying the preview "
                                         f"parameter, not '{name}'")
                new = self._preview_with(entry.params.get(name), dim, part, new)
            elif name not in ("preview", "indices") and looks_like_tuning_range(new):
                new = f"{new};"  # savu_config: "Parameter tuning syntax applied"
        problem = value_problem(name, new, parameter)
        if problem:
            shown = repr(new) if len(repr(new)) < 80 else repr(new)[:77] + "..."
            raise OperationError(f"The value {shown} for {describe(entry)}, parameter '{name}', is not correct. "
                                 f"{problem}", 400)
        entry.params[name] = new
        entry.raw_data = None
        return {"pos": entry.pos, "param": name, "value": new}

    def mod_all(self, param: Any, value: Any = None, *, text: Any = None, default: bool = False,
                has_value: bool = True) -> dict[str, Any]:
        """savu_config's ``mod -g NAME VALUE``: the parameter in every plugin that has it. Unlike
        savu_config (which stores the raw text unchecked) each change is checked like ``mod``."""
        if not isinstance(param, str) or not param.strip():
            raise OperationError("mod with \"all\": true needs the parameter's name")
        changed = []
        for entry in self.list.plugins:
            definition = self.catalogue.get(entry.name)
            parameter = definition.parameter(param) if definition else None
            if parameter is None or parameter.get("visibility") == "hidden" or \
                    not dependency_met(parameter, entry.params):
                continue
            changed.append(self.mod(entry.pos, param, value, text=text, default=default, has_value=has_value)["pos"])
        if not changed:
            raise OperationError(f"no plugin in the list has a parameter {param!r} that can be set now", 404)
        return {"param": param, "changed": changed}

    def _preview_with(self, current: Any, dim: Any, part: Any, value: Any) -> list:
        current = copy.deepcopy(current) if isinstance(current, list) else []
        try:
            dim = int(str(dim).replace("dim", ""))
        except ValueError:
            raise OperationError(f"dim must be a dimension number (1, 2, ...), not {dim!r}") from None
        if not (1 <= dim <= len(current) or (not current and dim == 1)):
            raise OperationError(f"The preview has {len(current)} dimension(s); dimension {dim} does not exist "
                                 "(use expand to change the number of dimensions)")
        slices = {"start": 0, "stop": 1, "step": 2, "chunk": 3}
        if part is None:
            problem = preview_entry_problem(value)
            if problem:
                raise OperationError(f"Invalid preview dimension value: {problem}")
            if not current:
                return [value]
            current[dim - 1] = value
            return current
        if part not in slices:
            raise OperationError(f"part must be start, stop, step or chunk, not {part!r}")
        index = slices[part]
        problem = preview_entry_problem(value) if not isinstance(value, str) or ":" not in value else "has ':'"
        if problem:
            raise OperationError(f"Invalid preview dimension slice value {value!r}: enter a number or an "
                                 "expression using start, mid and end")
        if not current:
            return [index * ":" + str(value)]
        old = str(current[dim - 1])
        if old != ":" and ":" not in old and index != 0:
            raise OperationError("There is no existing slice notation to modify in that dimension.")
        while old.count(":") < index:
            old += ":"
        pieces = old.split(":")
        if all(p == "" for p in pieces):
            current[dim - 1] = index * ":" + str(value)
        else:
            pieces[index] = str(value)
            current[dim - 1] = ":".join(pieces)
        return current

    def iterate(self, set_loop: Any = None, remove: Any = None) -> dict[str, Any]:
        if set_loop is not None:
            if not isinstance(set_loop, dict):
                raise OperationError("iterate 'set' takes {\"start\": S, \"end\": E, \"iterations\": N}")
            try:
                start, end, iterations = (set_loop[key] for key in ("start", "end", "iterations"))
            except KeyError as err:
                raise OperationError(f"iterate 'set' needs {err.args[0]!r}") from None
            for key, number in (("start", start), ("end", end), ("iterations", iterations)):
                if isinstance(number, bool) or not isinstance(number, int):
                    raise OperationError(f"iterate {key} must be a whole number, not {number!r}")
            count = len(self.list.plugins)
            if not 1 <= start <= end <= count:
                raise OperationError(f"A loop must run from a start to an end plugin with 1 <= start <= end <= "
                                     f"{count}; got {start}-{end}")
            if iterations < 1:
                raise OperationError(f"A loop needs at least 1 iteration; got {iterations}")
            for loop in self.list.loops:
                if (loop.start, loop.end) == (start, end):
                    loop.iterations = iterations  # Savu: the same start/end again changes the count
                    return {"loops": [l.to_json() for l in self.list.loops]}
                if start <= loop.end and loop.start <= end:
                    raise OperationError(f"The loop {start}-{end} overlaps the loop over plugins "
                                         f"{loop.start}-{loop.end}; loops may not overlap", 409)
            self.list.loops.append(Loop(start, end, iterations))
            self.list.loops.sort(key=lambda l: l.start)
        elif remove is not None:
            if remove in ("all", "*", True):
                self.list.loops = []
            else:
                numbers = remove if isinstance(remove, list) else [remove]
                for number in numbers:
                    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(self.list.loops):
                        raise OperationError(f"There is no loop number {number!r}; the list has "
                                             f"{len(self.list.loops)} loop(s), numbered from 1")
                self.list.loops = [l for i, l in enumerate(self.list.loops, 1) if i not in numbers]
        return {"loops": [l.to_json() for l in self.list.loops]}

    def expand(self, pos: Any, param: Any = None, dims: Any = None, value: Any = None) -> dict[str, Any]:
        entry = self.list.plugins[self._index(pos)]
        if param not in (None, "preview"):
            definition = self.catalogue.get(entry.name)
            name = str(param)
            if definition is not None and definition.parameter(name) is None and not str(param).isdigit():
                raise OperationError(f"{describe(entry)} has no parameter {name!r}")
            if definition is not None and str(param).isdigit():
                name = self._parameter(entry, definition, param)["name"]
            text = value if value is not None else entry.params.get(name)
            if not is_tuning(name, text):
                return {"pos": entry.pos, "param": name, "tuned": False, "values": [text]}
            try:
                values = expand_tuning(name, text)
            except ValueError as err:
                raise OperationError(str(err)) from None
            return {"pos": entry.pos, "param": name, "tuned": True, "text": text, "values": values}
        if "preview" not in entry.params:
            raise OperationError(f"You can only use expand with plugins that have a preview parameter; "
                                 f"{describe(entry)} has none")
        preview = entry.params["preview"]
        if not isinstance(preview, list):
            raise OperationError("expand works only for previews given as a list")
        if dims is not None:
            if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 10:
                raise OperationError(f"dims must be a number of dimensions from 1 to 10, not {dims!r}")
            preview = (preview + [":"] * dims)[:dims]
            entry.params["preview"] = preview
            entry.raw_data = None
        return {"pos": entry.pos, "param": "preview", "preview": preview,
                "dimensions": [dict(split_preview_entry(e), dim=i) for i, e in enumerate(preview, 1)]}

    def set_level(self, level: Any = None) -> dict[str, Any]:
        if level is not None:
            if level not in LEVELS:
                raise OperationError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
            self.level = level
        return {"level": self.level}

    def coll(self) -> dict[str, Any]:
        return {"collections": self.catalogue.collections()}

    def list_plugins(self, q: str = "") -> dict[str, Any]:
        return {"plugins": [p.summary_json() for p in self.catalogue.search(q or "")]}

    def _range(self, start: Any, stop: Any) -> list[PluginEntry]:
        if start in (None, ""):
            return list(self.list.plugins)
        first = self._index(start)
        last = self._index(stop) if stop not in (None, "") else first
        if last < first:
            raise OperationError(f"the range {start} to {stop} is backwards")
        return self.list.plugins[first:last + 1]

    def disp(self, start: Any = None, stop: Any = None, level: Any = None, verbose: bool = False,
             datasets_only: bool = False) -> dict[str, Any]:
        level = level or self.level
        if level not in LEVELS:
            raise OperationError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        return {"level": level, "plugins": [display_entry(e, self.catalogue, level, verbose, datasets_only)
                                            for e in self._range(start, stop)]}

    def cite(self, start: Any = None, stop: Any = None) -> dict[str, Any]:
        framework = self.catalogue.framework_citations or self.list.framework_citations
        return {"framework": [c.to_json() for c in framework],
                "plugins": [{"pos": e.pos, "name": e.name, "citations": [c.to_json() for c in e.citations]}
                            for e in self._range(start, stop)]}

    # -- one JSON operation ---------------------------------------------------------------------------
    def apply(self, operation: Any) -> dict[str, Any]:
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise OperationError("each operation is an object with an \"op\" naming a savu_config command, "
                                 "e.g. {\"op\": \"add\", \"name\": \"MedianFilter\"}")
        op = operation["op"].strip().lower()
        get = operation.get
        allowed = ALLOWED_KEYS.get(op)
        if allowed is None:
            raise OperationError(f"{operation['op']!r} is not a savu_config command hebi knows; the commands are "
                                 f"{', '.join(sorted(ALLOWED_KEYS))}")
        unknown = sorted(set(operation) - allowed - {"op"})
        if unknown:
            raise OperationError(f"{op} does not take {', '.join(map(repr, unknown))}; it takes "
                                 f"{', '.join(sorted(allowed)) or 'nothing else'}")
        if op == "add":
            return self.add(get("name"), get("pos"))
        if op == "dupl":
            return self.dupl(get("pos"), get("new_pos"))
        if op == "rem":
            return self.rem(get("pos"))
        if op == "move":
            return self.move(get("pos"), get("new_pos"))
        if op == "set":
            return self.set(get("pos"), get("state"))
        if op == "replace":
            return self.replace(get("pos"), get("name"))
        if op == "ref":
            return self.ref(get("pos", "*"), bool(get("defaults", False)))
        if op == "mod" and get("all"):
            return self.mod_all(get("param"), get("value"), text=get("text"), default=bool(get("default", False)),
                                has_value="value" in operation)
        if op == "mod":
            return self.mod(get("pos"), get("param"), get("value"), text=get("text"),
                            default=bool(get("default", False)), dim=get("dim"), part=get("part"),
                            has_value="value" in operation)
        if op == "iterate":
            return self.iterate(get("set"), get("remove"))
        if op == "expand":
            return self.expand(get("pos"), get("param"), get("dims"), get("value"))
        if op == "level":
            return self.set_level(get("level"))
        if op == "coll":
            return self.coll()
        if op == "list":
            return self.list_plugins(get("q", ""))
        if op == "disp":
            return self.disp(get("start"), get("stop"), get("level"), bool(get("verbose", False)),
                             bool(get("datasets_only", False)))
        return self.cite(get("start"), get("stop"))


ALLOWED_KEYS = {
    "add": {"name", "pos"}, "dupl": {"pos", "new_pos"}, "rem": {"pos"}, "move": {"pos", "new_pos"},
    "set": {"pos", "state"}, "replace": {"pos", "name"}, "ref": {"pos", "defaults"},
    "mod": {"pos", "param", "value", "text", "default", "dim", "part", "all"}, "iterate": {"set", "remove"},
    "expand": {"pos", "param", "dims", "value"}, "level": {"level"}, "coll": set(), "list": {"q"},
    "disp": {"start", "stop", "level", "verbose", "datasets_only"}, "cite": {"start", "stop"},
}
#: Commands that only look at the list.
QUERY_COMMANDS = {"level", "coll", "list", "disp", "cite"}


def split_position_or_error(text: str) -> tuple[int, str]:
    try:
        return split_position(text)
    except Exception:  # noqa: BLE001 - any failure to parse is the same user error
        raise OperationError(f"{text!r} is not a plugin position: use a number with an optional lowercase "
                             "letter, e.g. 3 or 3a") from None


def display_entry(entry: PluginEntry, catalogue: Catalogue, level: str, verbose: bool = False,
                  datasets_only: bool = False) -> dict[str, Any]:
    """savu_config's ``disp`` for one plugin, as JSON: the parameters shown at ``level`` with the
    numbers ``disp`` prints (which differ from ``mod``'s for datasets at the intermediate level)."""
    definition = catalogue.get(entry.name)
    shown: dict[str, Any] = {"pos": entry.pos, "name": entry.name, "id": entry.module, "active": entry.active,
                             "known": entry.known}
    if definition is None:
        shown["parameters"] = [{"name": k, "value": v} for k, v in entry.params.items()]
        return shown
    mod_numbers = {p["name"]: p["number"] for p in numbered_parameters(definition.parameters, entry.params)}
    parameters = []
    for parameter in numbered_parameters(definition.parameters, entry.params, level):
        if datasets_only and parameter.get("visibility") != "datasets":
            continue
        item = {"number": parameter["number"], "mod_number": mod_numbers[parameter["name"]],
                "name": parameter["name"], "value": entry.params.get(parameter["name"]),
                "visibility": parameter.get("visibility")}
        if verbose:
            item.update(dtype=parameter["dtype"], default=parameter.get("default"),
                        options=parameter.get("options"), description=parameter.get("description", ""))
        parameters.append(item)
    shown["parameters"] = parameters
    if verbose:
        shown["summary"] = definition.summary
    return shown


def apply_operations(process_list: ProcessList, operations: Any, catalogue: Catalogue,
                     level: str = "basic") -> tuple[ProcessList, list[dict[str, Any]], bool]:
    """Run a batch on a copy: (new list, one result per operation, whether the list changed).
    The first failing operation raises OperationError naming its number; nothing is changed then."""
    if not isinstance(operations, list) or not operations:
        raise OperationError("send {\"operations\": [...]} with at least one operation")
    if len(operations) > 1000:
        raise OperationError("at most 1000 operations per request")
    working = process_list.copy()
    editor = Editor(working, catalogue, level)
    results = []
    for number, operation in enumerate(operations, start=1):
        try:
            results.append(editor.apply(operation))
        except OperationError as err:
            op = operation.get("op") if isinstance(operation, dict) else None
            raise OperationError(f"operation {number}{f' ({op})' if op else ''}: {err.message}", err.status) from None
    changed = working != process_list  # views (disp, expand without dims...) and no-op changes save nothing
    if changed:
        problem = loader_problem(working, catalogue)
        if problem:
            raise OperationError(problem, 409)
    return working, results, changed
