"""What the session's HTTP services (API, dataserver) share: who the session is for, its roots, and a
Flask guard that lets in only requests the gateway signed for that user, with errors always as JSON."""
from __future__ import annotations

import os
from dataclasses import dataclass

from .config import HebiConfig
from .identity import HEADER, Identity, IdentityError, check_username, verify_identity
from .sandbox import Roots, SandboxError


@dataclass(frozen=True)
class SessionContext:
    user: str
    home: str
    secret: str
    roots: Roots

    @classmethod
    def from_environment(cls, config: HebiConfig, environ=os.environ) -> "SessionContext":
        """The launcher starts each session service with HEBI_SESSION_USER/_HOME/_SECRET set."""
        user = environ.get("HEBI_SESSION_USER", "")
        secret = environ.get("HEBI_SESSION_SECRET", "")
        if not user or not secret:
            raise RuntimeError("HEBI_SESSION_USER and HEBI_SESSION_SECRET must be set: "
                               "session services are started by the launcher")
        check_username(user)
        home = environ.get("HEBI_SESSION_HOME", "")
        return cls(user, home, secret, Roots.from_config(config.session.roots, user, home))


def install_flask_session_guard(app, context: SessionContext) -> None:
    """Every request must carry the gateway's identity for this session's user; errors are JSON."""
    from flask import g, jsonify, request
    from werkzeug.exceptions import HTTPException

    @app.before_request
    def _check_identity():
        try:
            g.identity = verify_identity(request.headers.get(HEADER), context.secret, context.user)
        except IdentityError as err:
            return jsonify(error=str(err)), 401

    @app.errorhandler(SandboxError)
    def _sandbox_error(err: SandboxError):
        return jsonify(error=err.message), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return jsonify(error=err.description or err.name), err.code

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error="internal error; the session log has the details"), 500


def current_identity() -> Identity:
    from flask import g
    return g.identity
