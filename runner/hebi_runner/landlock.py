"""Keeping a user's program from writing anywhere but where its results go, in the kernel: Landlock
(Linux 5.13 and later), which an unprivileged process applies to itself and every process it starts.

Reading is left to the uid and the mounts (a session pod has only its user's folders). Writing - making,
changing, removing or renaming files and folders - is allowed only beneath the folders given, so a
project cannot overwrite the user's raw data, their other runs or their process lists, whatever it
tries. Files already open (the job's stdout and stderr) stay writable.

The numbers are the kernel's (include/uapi/linux/landlock.h); the system calls are the same on every
architecture (444-446).
"""
from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable

CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

WRITE_FILE = 1 << 1
REMOVE_DIR, REMOVE_FILE = 1 << 4, 1 << 5
MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = (1 << bit for bit in range(6, 13))
REFER = 1 << 13  # ABI 2: moving and linking between folders
TRUNCATE = 1 << 14  # ABI 3
WRITING = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
           | MAKE_BLOCK | MAKE_SYM)


class Unavailable(Exception):
    """This kernel cannot restrict writes (no Landlock, or it is switched off)."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI, 0 when it has none."""
    libc = _libc()
    version = libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(version, 0)


def allow_writes_only_beneath(folders: Iterable[str]) -> int:
    """Restrict this process (and all it will start) to writing beneath ``folders``; the ABI used.
    Raises Unavailable when the kernel cannot, OSError when a folder cannot be opened."""
    version = abi_version()
    if version < 1:
        raise Unavailable("this kernel has no Landlock")
    handled = WRITING | (REFER if version >= 2 else 0) | (TRUNCATE if version >= 3 else 0)
    libc = _libc()
    attribute = struct.pack("=Q", handled)  # handled_access_fs; the later fields (network, scopes) stay unset
    ruleset = libc.syscall(CREATE_RULESET, attribute, ctypes.c_size_t(len(attribute)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise Unavailable(f"Landlock refused a ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for folder in folders:
            fd = os.open(folder, os.O_PATH | os.O_CLOEXEC)
            try:
                beneath = struct.pack("=Qi", handled, fd)  # struct landlock_path_beneath_attr (packed)
                if libc.syscall(ADD_RULE, ruleset, ctypes.c_int(RULE_PATH_BENEATH), beneath, ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"Landlock refused a rule for {folder}")
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return version
