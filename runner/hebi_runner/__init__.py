"""hebi's Savu-compatible runner: runs a Savu process list on tomography data with the field's own
libraries (algotom, scipy, optionally astra-toolbox) on CPU, and writes Savu's output layout and
progress log. The job backend calls :func:`run_process_list`; the console script is ``hebi-runner``.

The names below are imported when first used: ``python -m hebi_runner.code`` (a user's own code job)
must not pay for the reconstruction libraries (~0.8 s) before the user's program starts.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"DataError": "errors", "PluginRefused": "errors", "RunnerError": "errors", "PluginSpec": "pipeline",
          "RunOptions": "pipeline", "RunResult": "pipeline", "run_pipeline": "pipeline",
          "run_process_list": "pipeline"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'hebi_runner' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hebi_runner.{_WHERE[name]}"), name)
