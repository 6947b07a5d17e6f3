"""Request bodies, checked once for every route: JSON only when sent as ``application/json``, bounded in
size and nesting; a route that takes another type (an upload) names it with ``@accepts``.

Why the type matters: a page on another port or a sibling subdomain is "same site", so its
``<form enctype="text/plain">`` reaches the API with the user's cookie. A form can send only
``text/plain``, ``application/x-www-form-urlencoded`` or ``multipart/form-data``, and never
``application/json`` without a CORS preflight, so refusing those types on JSON routes stops such forms.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, request

from hebi_common.errors import UserError

JSON = "application/json"
#: A process-list document or a job request is a few kB; this bounds what one body makes the API hold.
MAX_JSON_BYTES = 16 * 1024 * 1024
#: Savu's deepest values (a preview of a multi-dataset loader) are 4 levels inside a document of 4.
MAX_DEPTH = 64
ANY = "*/*"


def accepts(*mimetypes: str):
    """Mark a route as taking bodies of ``mimetypes`` besides JSON (``ANY`` for raw uploads)."""
    def mark(view):
        view.body_types = mimetypes
        return view
    return mark


def install_body_check(app: Flask) -> None:
    """Refuse (415) a body whose type the route does not take, before the route runs."""

    @app.before_request
    def _check_body_type():
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        view = current_app.view_functions.get(request.endpoint)
        if view is None:
            return  # no such route: its 404 (or 405) says more than a 415 would
        taken = (JSON, *getattr(view, "body_types", ()))
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
        if not request.mimetype and not has_body:
            return  # nothing sent (a cancel, a delete): nothing to parse
        if ANY in taken or request.mimetype in taken:
            return
        raise UserError(f"send the request body as {' or '.join(taken)} "
                        f"(got {request.mimetype or 'no Content-Type'})", 415, expected=list(taken))


def json_body(limit: int = MAX_JSON_BYTES) -> Any:
    """The request's JSON (None for an empty body); 413 when larger than ``limit``, 400 when it is not
    JSON or is nested deeper than MAX_DEPTH (deeper values would exhaust the stack of whatever walks them)."""
    if request.content_length is not None and request.content_length > limit:
        raise UserError(f"the request body is {request.content_length} bytes; at most {limit} are accepted", 413)
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise UserError(f"the request body is larger than {limit} bytes, the most accepted", 413)
    if not raw.strip():
        return None
    too_deep = UserError(f"the request body is nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"the request body is not valid JSON: {err}") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise too_deep
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit``; iterative, so it cannot overflow itself."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return False
