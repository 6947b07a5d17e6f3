"""Errors the runner reports to the person who started the run: each names the plugin, parameter or
file at fault and what was expected. They are raised while the run is checked, before any work."""
from __future__ import annotations


class RunnerError(Exception):
    """A run cannot start or cannot go on; the message is meant for the scientist."""


class PluginRefused(RunnerError):
    """A plugin (or one of its parameter values) the runner does not implement, or one needing a GPU."""


class DataError(RunnerError):
    """The input data are missing, unreadable, or not what the loader expects."""


class Killed(RunnerError):
    """A ``killsignal`` file appeared in the output folder."""
