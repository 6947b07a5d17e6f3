"""Undo, redo and history of one process list, kept in the user's state folder.

savu_config keeps its command history in ``~/.savuhist`` and has no undo; hebi saves every change at
once, so it keeps every saved version instead: an ``index.json`` (the versions' digests, the command that
led to each, when) and the versions themselves, named by digest. Undo writes the previous version back,
redo the next one, and both survive a reload or a new session because they live on disk, not in the page.

A version written by something that does not record here (the Files area, a copy made on the command
line) is noticed at the next record or undo: it is added as a step of its own ("changed outside the
editor"), so undo never silently drops it. The caller holds the list's folder lock around each call.
"""
from __future__ import annotations

import hashlib
import json
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..errors import UserError

#: Versions kept per list, and their total size: the oldest go first.
MAX_VERSIONS = 100
MAX_BYTES = 64 * 1024 * 1024
OUTSIDE = "(changed outside the editor)"


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class ListHistory:
    def __init__(self, state_dir: Path, list_ref: str):
        key = hashlib.sha256(list_ref.encode()).hexdigest()[:32]
        self.folder = Path(state_dir) / "process-list-history" / key
        self.ref = list_ref

    # -- storage ----------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            index = json.loads((self.folder / "index.json").read_text())
            if index.get("path") == self.ref and isinstance(index.get("steps"), list):
                return index
        except (OSError, ValueError):
            pass  # none yet, or unreadable: start again rather than fail the user's change
        return {"path": self.ref, "steps": [], "cursor": -1}

    def _save(self, index: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        keep = {step["digest"] for step in index["steps"]}
        with atomic_write(self.folder / "index.json", 0o600, text=True) as out:
            json.dump(index, out)
        for blob in self.folder.glob("*.nxs"):
            if blob.stem not in keep:
                with suppress(OSError):
                    blob.unlink()

    def _store(self, content: bytes) -> str:
        digest = _digest(content)
        blob = self.folder / f"{digest}.nxs"
        if not blob.exists():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            with atomic_write(blob, 0o600) as out:
                out.write(content)
        return digest

    def _append(self, index: dict[str, Any], content: bytes, command: str) -> None:
        del index["steps"][index["cursor"] + 1:]  # a new change ends the redo branch, as in any editor
        index["steps"].append({"digest": self._store(content), "command": command, "time": int(time.time()),
                               "size": len(content)})
        index["cursor"] = len(index["steps"]) - 1
        while len(index["steps"]) > 1 and (len(index["steps"]) > MAX_VERSIONS or
                                           sum(s.get("size", 0) for s in index["steps"]) > MAX_BYTES):
            index["steps"].pop(0)
            index["cursor"] -= 1

    def _catch_up(self, index: dict[str, Any], current: bytes) -> None:
        """Make the cursor's version the file as it is now."""
        steps, cursor = index["steps"], index["cursor"]
        if not steps:
            self._append(index, current, "opened")
        elif steps[cursor]["digest"] != _digest(current):
            self._append(index, current, OUTSIDE)

    # -- what the API calls -----------------------------------------------------------------------
    def record(self, before: bytes, after: bytes, command: str) -> None:
        if before == after:
            return
        index = self._load()
        self._catch_up(index, before)
        self._append(index, after, command)
        self._save(index)

    def step(self, current: bytes, direction: int) -> tuple[bytes, str, dict[str, Any]]:
        """The version undo (-1) or redo (+1) goes to, the command it undoes or redoes, and the index to
        commit (``commit``) once the file is written."""
        index = self._load()
        self._catch_up(index, current)
        target = index["cursor"] + direction
        if direction < 0 and target < 0:
            raise UserError("Nothing to undo: this is the oldest version hebi kept of the list.", 409)
        if direction > 0 and target >= len(index["steps"]):
            raise UserError("Nothing to redo: this is the newest version of the list.", 409)
        done = index["steps"][index["cursor"] if direction < 0 else target]["command"]
        try:
            content = (self.folder / f"{index['steps'][target]['digest']}.nxs").read_bytes()
        except OSError:
            raise UserError("That version of the list is no longer kept, so it cannot be restored.", 409) from None
        index["cursor"] = target
        return content, done, index

    def commit(self, index: dict[str, Any]) -> None:
        self._save(index)

    def describe(self, current: bytes | None) -> dict[str, Any]:
        index = self._load()
        steps, cursor = index["steps"], index["cursor"]
        if current is not None and steps and steps[cursor]["digest"] != _digest(current):
            steps, cursor = steps[:cursor + 1] + [{"command": OUTSIDE, "time": None}], cursor + 1
        return {"entries": [{"number": i + 1, "command": s["command"], "time": s.get("time"), "current": i == cursor}
                            for i, s in enumerate(steps)],
                "can_undo": cursor > 0, "can_redo": 0 <= cursor < len(steps) - 1}

    def forget(self) -> None:
        with suppress(OSError):
            for blob in self.folder.iterdir():
                blob.unlink()
            self.folder.rmdir()
