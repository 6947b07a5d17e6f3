"""One Savu grammar (issue 9 #15): every value the editor accepts runs with the same meaning.

The editor (``Editor.mod``), job submission (``preview_entry``) and the runner (``plan``, the loader's
preview) each read values through ``hebi_common.savu``. This test generates many values, puts each
through the editor as a user would type it, and checks that the runner runs exactly what savu_config's
own reading gives (a reference written here from Savu's rules: ``;`` splits tuned values, each piece is
a Python literal or else text, ``start:stop:step;`` is numpy.arange, "true"/"false" on a boolean
parameter are booleans, previews are ``int(eval(field))`` with start/mid/end)."""
from __future__ import annotations

import ast
import math
import random

import numpy as np
import pytest

from hebi_api.jobs.savu import JobRequestError, preview_entry
from hebi_common.savu.catalogue import bundled_catalogue
from hebi_common.savu.operations import Editor, OperationError
from hebi_common.savu.parameters import NOT_TUNABLE, parse_dtype
from hebi_common.savu.preview import PreviewError, entry_problem
from hebi_common.savu.process_list import PluginEntry, ProcessList
from hebi_common.savu.validation import check_runnable
from hebi_runner.pipeline import PluginSpec, plan
from hebi_runner.plugins import ADAPTERS
from hebi_runner.preview import preview_indices

CATALOGUE = bundled_catalogue()
TEXTS = ["True;False", "false;true", "None;1", "None", "1;2.5", "86;87;88", "80:83:1;", "0:1:0.25;", "[1, 2];[3, 4]",
         "FBP;SIRT", "gridrec;fbp", "True", "false", "3", "2.5", "[0.5, 0.9]", "1e-3;2e-3", "PROJECTION;SINOGRAM",
         "1;None;x", "[None, None];[1.0, 2.0]", "{0: 85.5}", "5:7;", "a;b"]


def _typed(value):
    """A value with its types spelt out, so True and 1 (equal in Python) differ."""
    if isinstance(value, list):
        return ["list", [_typed(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", {str(k): _typed(v) for k, v in value.items()}]
    return [type(value).__name__, value]


def _literal(text: str):
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()
    return list(value) if isinstance(value, tuple) else value


def savu_meaning(name: str, stored, definition: dict) -> list:
    """The values Savu runs for a stored value (reference, from Savu's rules)."""
    def one(value):
        if value == "None":
            return None
        if isinstance(value, list):
            return [None if v == "None" else v for v in value]
        dtype = parse_dtype(definition["dtype"])
        boolean = dtype.kind == "basic" and dtype.name == "bool" or \
            dtype.kind == "any" and any(i.kind == "basic" and i.name == "bool" for i in dtype.items) and \
            not any(i.kind == "basic" and i.name == "str" for i in dtype.items)
        if boolean and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value
    if not isinstance(stored, str) or ";" not in stored or name in NOT_TUNABLE:
        return [one(stored)]
    pieces = [p.strip() for p in stored.split(";") if p.strip()]
    if ":" in pieces[0] and not any(c in pieces[0] for c in "{}[]"):
        return [v.item() for v in np.arange(*[_literal(p) for p in pieces[0].split(":")])]
    values = []
    for piece in pieces:
        value = _literal(piece)
        if isinstance(value, str) and value.lower() in ("true", "false", "none"):
            value = {"true": True, "false": False, "none": None}[value.lower()]
        values.append(one(value))
    return values


def _processing_parameters():
    for name in sorted(ADAPTERS):
        plugin = CATALOGUE.get(name)
        if plugin is None or plugin.kind == "loader":
            continue
        for parameter in plugin.parameters:
            if parameter.get("visibility") not in ("hidden",) and parameter["name"] != "preview":
                yield name, parameter


def test_every_value_the_editor_accepts_runs_with_the_same_meaning():
    checked = 0
    for plugin, parameter in _processing_parameters():
        for text in TEXTS:
            entries = [PluginEntry("1", "NxtomoLoader", CATALOGUE.get("NxtomoLoader").module),
                       PluginEntry("2", plugin, CATALOGUE.get(plugin).module)]
            editor = Editor(ProcessList(plugins=entries), CATALOGUE)
            try:
                stored = editor.mod("2", parameter["name"], text=text)["value"]
            except OperationError:
                continue  # refused by the editor: nothing to run
            assert not [p for p in check_runnable(editor.list) if p.parameter == parameter["name"]], (plugin, text)
            _, steps, _ = plan([PluginSpec("NxtomoLoader", {}), PluginSpec(plugin, {parameter["name"]: stored})], [])
            ran = [combo[parameter["name"]] for combo in steps[0].combos]
            assert _typed(ran) == _typed(savu_meaning(parameter["name"], stored, parameter)), (plugin, parameter["name"],
                                                                                                 text, stored, ran)
            checked += 1
    assert checked > 200


@pytest.mark.parametrize("text, values", [("True;False", [True, False]), ("None;1", [None, 1]),
                                          ("false;true", [False, True])])
def test_the_issue_examples_run_as_typed(text, values):
    parameter = "residual" if "e" in text.lower() and "None" not in text else "size"
    plugin = "RemoveUnresponsiveAndFluctuatingRings"
    if text == "None;1":
        plugin, parameter = "DarkFlatFieldCorrection", "lower_bound"
    definition = CATALOGUE.get(plugin).parameter(parameter)
    assert definition is not None
    _, steps, _ = plan([PluginSpec("NxtomoLoader", {}), PluginSpec(plugin, {parameter: text})], [])
    assert _typed([combo[parameter] for combo in steps[0].combos]) == _typed(values)


def _savu_preview(entry: str, n: int):
    """Savu's preview of one dimension (reference): fields are int(eval(...)) with start/mid/end."""
    names = {"start": 0, "mid": max(math.ceil(n / 2) - 1, 0), "end": n}
    fields = [f.strip() for f in entry.split(":")]

    def value(i, default):
        if i >= len(fields) or not fields[i]:
            return default
        v = int(eval(fields[i], {"__builtins__": {}}, names))  # test-made texts only
        return v + n if v < 0 else v
    start = value(0, 0)
    stop = value(1, start + 1) if len(fields) == 1 else value(1, n)
    step, chunk = value(2, 1), value(3, 1)
    if step < 1 or chunk < 1 or stop <= start or start >= n or stop > n or chunk > n:
        return None
    picked = np.arange(start, stop, step)
    if chunk > 1:
        picked = np.unique((picked[:, None] + np.arange(chunk) - chunk // 2).ravel())
        picked = picked[(picked >= 0) & (picked < n)]
    return list(picked)


def _preview_texts() -> list[str]:
    fixed = [":", "::", ":::", "::::", "1.5", "mid%2", "mid", "mid-1:mid+2", "0:end:2", "end-1", "-1", "start:end:2:3",
             "mid//2", "end/2", "(mid+1)*2-3", "1.9", "-2:", ":mid", "mid:mid+1:1:5", "end/3:end", "0:end:0"]
    rng = random.Random(9)
    atoms = ["start", "mid", "end", "0", "1", "2", "3", "1.5"]
    fields = [f"{rng.choice(atoms)}{rng.choice(['+', '-', '*', '//', '%', '/'])}{rng.choice(atoms)}" for _ in range(60)]
    made = [":".join(rng.choice(fields + atoms + [""]) for _ in range(rng.randint(1, 4))) for _ in range(200)]
    return fixed + made


def test_every_preview_the_editor_accepts_is_accepted_at_submission_and_runs_as_savu_reads_it():
    compared = 0
    for text in _preview_texts():
        accepted = entry_problem(text) is None
        try:
            preview_entry(text, 3)
            submitted = True
        except JobRequestError:
            submitted = False
        assert submitted == accepted, text
        if not accepted:
            continue
        for n in (1, 2, 7, 100):
            try:
                expected = _savu_preview(text, n)
            except ZeroDivisionError:
                expected = None
            try:
                ran = list(preview_indices([text], (n,))[0])
            except PreviewError:
                ran = None
            assert ran == expected, (text, n, ran, expected)
            compared += 1
    assert compared > 400


def test_power_and_names_are_refused_by_all_three():
    for text in ("mid:mid+9**9**9**9", "mid**2", "__import__('os')", "len(end)", "mid;1"):
        assert entry_problem(text) is not None
        with pytest.raises(JobRequestError):
            preview_entry(text, 3)
        with pytest.raises(PreviewError):
            preview_indices([text], (10,))


def test_tuning_a_loader_parameter_is_refused_at_submission_and_by_the_runner():
    entries = [PluginEntry("1", "NxtomoLoader", CATALOGUE.get("NxtomoLoader").module, params={"name": "a;b"}),
               PluginEntry("2", "DarkFlatFieldCorrection", CATALOGUE.get("DarkFlatFieldCorrection").module)]
    assert any("cannot be tuned" in p.message for p in check_runnable(ProcessList(plugins=entries)))
    from hebi_runner.errors import RunnerError
    with pytest.raises(RunnerError, match="cannot be tuned"):
        plan([PluginSpec("NxtomoLoader", {"name": "a;b"}), PluginSpec("DarkFlatFieldCorrection", {})], [])
