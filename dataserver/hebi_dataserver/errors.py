"""Errors of the dataserver as values: a message for the scientist, the HTTP status, and any extra fields.

Every error leaves the server as JSON ``{"error": ..., "message": ...}`` with a 4xx status. ``message`` is
the key h5web's H5GroveProvider reads (h5grove's own error body), ``error`` the one the rest of hebi uses.
"""
from __future__ import annotations


class DataError(Exception):
    def __init__(self, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict:
        return {"error": self.message, "message": self.message, **self.extra}
