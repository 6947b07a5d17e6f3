"""Parameter tuning as Savu expands it (savu/plugins/utils.py convert_multi_params): a string with ``;``
is a list of values (``"86;87;88"``), and ``"start:stop:step;"`` is ``numpy.arange`` (stop excluded);
every combination of tuned values is run and kept."""
from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np

NOT_TUNABLE = {"preview", "in_datasets", "out_datasets", "log_func", "angles"}


def _literal(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def tuned_values(name: str, value: Any) -> list[Any] | None:
    """The list of values a tuned parameter takes, or None when ``value`` is a single value."""
    if name in NOT_TUNABLE or not isinstance(value, str) or ";" not in value:
        return None
    pieces = [p for p in value.split(";") if p.strip()]
    if pieces and ":" in pieces[0] and "{" not in pieces[0]:
        bounds = [float(_literal(p)) for p in pieces[0].split(":")]
        values = np.arange(*bounds)
        return [int(v) if float(v).is_integer() and all(float(b).is_integer() for b in bounds) else float(v)
                for v in values]
    return [_literal(p) for p in pieces]


def combinations(params: dict[str, Any]) -> tuple[list[tuple[str, list[Any]]], list[dict[str, Any]]]:
    """(tuned parameters with their values, one parameter dict per combination) in Savu's order."""
    tuned = [(name, values) for name, value in params.items() if (values := tuned_values(name, value))]
    if not tuned:
        return [], [dict(params)]
    combos = []
    for chosen in itertools.product(*(values for _, values in tuned)):
        combo = dict(params)
        combo.update({name: value for (name, _), value in zip(tuned, chosen)})
        combos.append(combo)
    return tuned, combos
