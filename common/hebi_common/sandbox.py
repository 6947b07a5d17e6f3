"""The path sandbox: every path a user names is resolved inside one of their roots, or refused.

Users name files as ``<root>/<path in root>`` (``data/scan/1.nxs``) or as a root plus a path. A path is
refused, never silently repaired, when it holds a NUL, a ``..`` component, or resolves (symlinks
included) outside its root. Absolute paths are read relative to the root, which confines them too.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import RootConfig
from .errors import UserError


class SandboxError(UserError):
    """A path the user may not have."""


@dataclass(frozen=True)
class Root:
    name: str
    path: Path  # already resolved (realpath)
    writable: bool


class Roots:
    """A user's roots, by name."""

    def __init__(self, roots: Iterable[Root]):
        self._roots = {root.name: root for root in roots}

    @classmethod
    def from_config(cls, roots: Mapping[str, RootConfig], user: str, home: str = "") -> Roots:
        made = []
        for name, root in roots.items():
            folder = root.path.replace("{user}", user).replace("{home}", home or "")
            made.append(Root(name, Path(os.path.realpath(folder)), root.writable))
        return cls(made)

    def names(self) -> list[str]:
        return sorted(self._roots)

    def __iter__(self):
        return iter(self._roots.values())

    def get(self, name: str) -> Root:
        root = self._roots.get(name)
        if root is None:
            known = ", ".join(self.names()) or "none configured"
            raise SandboxError(f"unknown root {name!r} (the roots are: {known})", 404)
        return root

    def resolve(self, root_name: str, user_path: str, *, for_writing: bool = False) -> Path:
        """Resolve ``user_path`` inside the named root; refuse anything that would leave it."""
        root = self.get(root_name)
        if for_writing and not root.writable:
            raise SandboxError(f"the {root.name!r} root is read-only", 403)
        return resolve_in_root(root.path, user_path)

    def resolve_ref(self, ref: str, *, for_writing: bool = False) -> tuple[Root, Path]:
        """Resolve ``<root>/<path in root>``, the form every API parameter naming a file uses."""
        _check_text(ref)
        name, _, rest = ref.lstrip("/").partition("/")
        if not name:
            raise SandboxError("the path must start with a root name: data/..., processing/... or output/...")
        return self.get(name), self.resolve(name, rest, for_writing=for_writing)

    def to_ref(self, path: Path) -> str:
        """The ``<root>/<path>`` form of a resolved path (the inverse of resolve_ref)."""
        real = Path(os.path.realpath(path))
        for root in self._roots.values():
            if real == root.path or root.path in real.parents:
                rel = real.relative_to(root.path).as_posix()
                return root.name if rel == "." else f"{root.name}/{rel}"
        raise SandboxError("path is outside every root", 403)


def _check_text(user_path: str) -> None:
    if not isinstance(user_path, str):
        raise SandboxError("the path must be text")
    if "\x00" in user_path:
        raise SandboxError("the path contains a NUL character")
    if len(user_path) > 4096:
        raise SandboxError("the path is longer than 4096 characters")


def resolve_in_root(root: Path, user_path: str) -> Path:
    """``root`` joined with ``user_path``, fully resolved, guaranteed to lie inside ``root``.

    ``root`` must already be resolved. The result need not exist (so it can be created), but every
    existing part of it, symlinks followed, lies inside ``root``.
    """
    _check_text(user_path)
    parts = [part for part in user_path.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise SandboxError("'..' is not allowed in a path")
    candidate = os.path.realpath(os.path.join(root, *parts))
    if candidate != str(root) and not candidate.startswith(str(root).rstrip("/") + "/"):
        raise SandboxError("the path leads outside its root", 403)
    return Path(candidate)
