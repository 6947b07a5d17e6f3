"""Whether a process list can run: the checks Savu makes before and while it starts a run.

``check_runnable(process_list)`` returns a list of ``Problem`` (empty = runnable). The jobs code calls it
before submitting; the API shows the same problems with every list so the editor can point at them.
Opening and editing never refuse a list for these reasons: unknown plugins, stale parameters and old
values stay as they were read until the user changes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalogue import Catalogue, default_catalogue
from .operations import describe, loader_problem
from .parameters import LOADER_DATASET_PARAMETERS, dataset_name_problem, is_tuning, value_problem
from .process_list import ProcessList


@dataclass(frozen=True)
class Problem:
    message: str
    pos: str | None = None
    plugin: str | None = None
    parameter: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "pos": self.pos, "plugin": self.plugin, "parameter": self.parameter}


def check_runnable(process_list: ProcessList, catalogue: Catalogue | None = None) -> list[Problem]:
    catalogue = catalogue or default_catalogue()
    problems: list[Problem] = []
    if not process_list.plugins:
        return [Problem("The process list is empty: add a loader and the processing steps first.")]
    loaders = loader_problem(process_list, catalogue)
    if loaders:
        problems.append(Problem(loaders))
    if not process_list.plugins[0].active:
        first = process_list.plugins[0]
        problems.append(Problem(f"The loader {describe(first)} is switched off; a run needs its loader.",
                                first.pos, first.name))
    for entry in process_list.plugins:
        if not entry.active:
            continue
        definition = catalogue.get(entry.name)
        if definition is None:
            problems.append(Problem(
                f"{describe(entry)} is not available in this Savu (catalogue: {catalogue.source} "
                f"{catalogue.savu_version}); switch it off or remove it before running.", entry.pos, entry.name))
            continue
        for key, value in entry.params.items():
            parameter = definition.parameter(key)
            if parameter is None:
                problems.append(Problem(
                    f"Parameter '{key}' is not valid for {describe(entry)}; refresh the plugin (ref) to drop it.",
                    entry.pos, entry.name, key))
                continue
            problem = value_problem(key, value, parameter)
            if problem is None and definition.kind == "loader" and is_tuning(key, value):
                problem = f"The loader's parameter '{key}' cannot be tuned (tuning is for processing plugins)."
            if problem is None and definition.kind == "loader" and key in LOADER_DATASET_PARAMETERS:
                problem = dataset_name_problem(key, value)
            if problem:
                problems.append(Problem(f"{describe(entry)}: {problem}", entry.pos, entry.name, key))
    count = len(process_list.plugins)
    previous_end = 0
    for loop in sorted(process_list.loops, key=lambda l: l.start):
        if not 1 <= loop.start <= loop.end <= count or loop.iterations < 1:
            problems.append(Problem(f"The loop {loop.start}-{loop.end} x{loop.iterations} does not fit a list of "
                                    f"{count} plugins (1 <= start <= end <= {count}, iterations >= 1)."))
        elif loop.start <= previous_end:
            problems.append(Problem(f"The loop {loop.start}-{loop.end} overlaps the loop before it."))
        previous_end = max(previous_end, loop.end)
    return problems


def needs_gpu(process_list: ProcessList, catalogue: Catalogue | None = None) -> bool:
    """True when an active plugin needs a GPU (Savu runs those only on GPU ranks)."""
    catalogue = catalogue or default_catalogue()
    return any(entry.active and (catalogue.get(entry.name) is not None and catalogue.get(entry.name).needs_gpu)
               for entry in process_list.plugins)
