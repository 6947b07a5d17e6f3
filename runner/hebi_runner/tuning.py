"""Parameter tuning as Savu expands it (savu/plugins/utils.py convert_multi_params): a string with ``;``
is a list of values (``"86;87;88"``), and ``"start:stop:step;"`` is ``numpy.arange`` (stop excluded);
every combination of tuned values is run and kept. The values are read by ``hebi_common.savu``, the
code the editor checks them with, so ``"True;False"`` runs True then False and ``"None;1"`` None then 1."""
from __future__ import annotations

import itertools
from typing import Any

from hebi_common.savu.parameters import NOT_TUNABLE, is_tuning, run_values

__all__ = ["NOT_TUNABLE", "combinations", "tuned_values"]


def tuned_values(name: str, value: Any, definition: dict[str, Any] | None = None) -> list[Any] | None:
    """The list of values a tuned parameter takes, or None when ``value`` is a single value."""
    return run_values(name, value, definition) if is_tuning(name, value) else None


def combinations(params: dict[str, Any], definitions: dict[str, dict[str, Any]] | None = None
                 ) -> tuple[list[tuple[str, list[Any]]], list[dict[str, Any]]]:
    """(tuned parameters with their values, one parameter dict per combination) in Savu's order."""
    definitions = definitions or {}
    tuned = [(name, values) for name, value in params.items()
             if (values := tuned_values(name, value, definitions.get(name)))]
    if not tuned:
        return [], [dict(params)]
    combos = []
    for chosen in itertools.product(*(values for _, values in tuned)):
        combo = dict(params)
        combo.update({name: value for (name, _), value in zip(tuned, chosen)})
        combos.append(combo)
    return tuned, combos
