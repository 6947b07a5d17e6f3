"""hebi's one error for problems a user can fix: a message for the person who caused it, an HTTP status,
and any extra fields the answer carries (``needed_bytes``, ``field``, ...).

Every component raises ``UserError`` (or one of the named kinds below, which add nothing but a name to
catch by) and has exactly one place that turns it into a JSON answer. The body carries the message under
``error`` (what hebi's own clients read) and under ``message`` (what h5web's H5GroveProvider reads).
"""
from __future__ import annotations

from typing import Any


class UserError(Exception):
    def __init__(self, message: str, status: int = 400, **extra: Any):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "message": self.message, **self.extra}
