"""The API server's errors as the real one writes them: a ``Status`` object with code, reason, message and
details, so clients (the official ``kubernetes`` client's ApiException, kubectl) see what they would see
against a cluster."""
from __future__ import annotations


class ApiError(Exception):
    """A failed request; ``status()`` is the body the real API server sends."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists', {"name": name, "kind": resource})


def conflict(resource: str, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "kind": resource})


def invalid(kind: str, name: str, causes: list[dict]) -> ApiError:
    """422 Invalid: ``causes`` as the real server lists them: {reason, message, field}."""
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes) or "invalid object"
    if len(causes) > 1:
        summary = f"[{summary}]"
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}',
                    {"name": name, "kind": kind, "causes": causes})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
