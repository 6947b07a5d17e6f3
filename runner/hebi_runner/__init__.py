"""hebi's Savu-compatible runner: runs a Savu process list on tomography data with the field's own
libraries (algotom, scipy, optionally astra-toolbox) on CPU, and writes Savu's output layout and
progress log. The job backend calls :func:`run_process_list`; the console script is ``hebi-runner``.
"""
from hebi_runner.errors import DataError, PluginRefused, RunnerError
from hebi_runner.pipeline import PluginSpec, RunOptions, RunResult, run_pipeline, run_process_list

__all__ = ["DataError", "PluginRefused", "PluginSpec", "RunOptions", "RunResult", "RunnerError",
           "run_pipeline", "run_process_list"]
