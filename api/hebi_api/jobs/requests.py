"""What every job request is checked for, whatever its kind: text fields, the mode, the resources asked
for against the mode's limits, and paths resolved inside the user's roots. A problem is a
JobRequestError naming the field, and nothing is made before all checks pass."""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from hebi_common.errors import UserError
from hebi_common.sandbox import Roots, SandboxError

MODES = ("preview", "full")
#: Unicode categories refused in every text field: control characters (a line break in a log line, a
#: terminal escape), format characters (a right-to-left override that shows a name backwards),
#: surrogates, private and unassigned characters, line and paragraph separators.
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


class JobRequestError(UserError):
    """A request that cannot become a job; the message names the field."""


def check_text(field: str, value: Any, limit: int = 4096, *, option: bool = False) -> str:
    """Any printable text. ``option``: the value reaches a scheduler's option, where a leading '-'
    would read as another option."""
    if not isinstance(value, str):
        raise JobRequestError(f"'{field}' must be text")
    bad = sorted({char for char in value if unicodedata.category(char) in INVISIBLE})
    if bad:
        shown = " ".join(f"U+{ord(char):04X}" for char in bad)
        raise JobRequestError(f"'{field}' contains control or invisible characters ({shown})")
    if len(value) > limit:
        raise JobRequestError(f"'{field}' is longer than {limit} characters")
    if option and value.startswith("-"):
        raise JobRequestError(f"'{field}' must not start with '-' (the scheduler would read it as an option)")
    return value


def parse_mode(value: Any) -> str:
    mode = check_text("mode", value, 20)
    if mode not in MODES:
        raise JobRequestError(f"unknown mode {mode!r}: a job is either 'preview' or 'full'")
    return mode


def parse_resources(resources: Any, mode: str, mode_config) -> tuple[int, int, int, str]:
    """(time limit in seconds, cores, memory in MB, queue) asked for, within the mode's limits."""
    resources = resources or {}
    if not isinstance(resources, dict):
        raise JobRequestError("'resources' must be an object: {\"time_limit\", \"cores\", \"memory_mb\", \"queue\"}")
    unknown = sorted(set(resources) - {"time_limit", "cores", "memory_mb", "queue"})
    if unknown:
        raise JobRequestError(f"unknown resource '{unknown[0]}' (time_limit, cores, memory_mb, queue)")
    queue = mode_config.queue
    if resources.get("queue") not in (None, ""):
        asked = check_text("resources.queue", resources["queue"], 100, option=True)
        if asked != mode_config.queue:
            shown = f"{mode} jobs go to {mode_config.queue!r}" if mode_config.queue else f"{mode} jobs take no queue"
            raise JobRequestError(f"unknown queue {asked!r}: {shown}")
    time_limit = time_limit_seconds(resources.get("time_limit", mode_config.time_limit))
    if time_limit > mode_config.max_time_limit:
        raise JobRequestError(f"a time limit of {time_limit} s is more than {mode} jobs may ask for "
                              f"({mode_config.max_time_limit} s)")
    cores = whole(resources.get("cores", 1), "resources.cores")
    if cores > mode_config.max_cores:
        raise JobRequestError(f"{cores} cores is more than {mode} jobs may ask for ({mode_config.max_cores})")
    memory = whole(resources.get("memory_mb", mode_config.memory_mb), "resources.memory_mb", minimum=0)
    if memory > mode_config.max_memory_mb:
        raise JobRequestError(f"{memory} MB of memory is more than {mode} jobs may ask for "
                              f"({mode_config.max_memory_mb} MB)")

    return time_limit, cores, memory, queue


def time_limit_seconds(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"\d+:\d{1,2}:\d{1,2}", value):
        hours, minutes, seconds = (int(part) for part in value.split(":"))
        value = hours * 3600 + minutes * 60 + seconds
    return whole(value, "resources.time_limit")


def whole(value: Any, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < minimum:
        raise JobRequestError(f"'{field}' must be a whole number of at least {minimum}")
    return int(value)


def resolve(roots: Roots, ref: str, *, for_writing: bool = False) -> Path:
    try:
        return roots.resolve_ref(ref, for_writing=for_writing)[1]
    except SandboxError as error:
        raise JobRequestError(f"{ref}: {error.message}", error.status) from None


def existing(roots: Roots, ref: str, what: str) -> Path:
    path = resolve(roots, ref)
    if not path.exists():
        raise JobRequestError(f"the {what} {ref} does not exist", 404)
    if not os.access(path, os.R_OK):
        raise JobRequestError(f"the {what} {ref} cannot be read (permission denied)", 403)
    return path


def existing_file(roots: Roots, ref: str, what: str) -> Path:
    path = existing(roots, ref, what)
    if not path.is_file():
        raise JobRequestError(f"the {what} {ref} is a folder, not a file")
    return path


def output_folder(roots: Roots, ref: str) -> Path:
    path = resolve(roots, ref, for_writing=True)
    if path.exists() and not path.is_dir():
        raise JobRequestError(f"the output {ref} is a file; name a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise JobRequestError(f"cannot create the output folder {ref}: {error.strerror}", 403) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise JobRequestError(f"the output folder {ref} is not writable", 403)
    return path
