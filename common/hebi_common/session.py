"""What the session's HTTP services (API, dataserver) share: who the session is for, its roots, its own
state folder, and a Flask guard that lets in only requests the gateway signed for that user, with errors
always as JSON."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import HebiConfig
from .errors import UserError
from .identity import HEADER, Identity, IdentityError, check_username, verify_identity
from .sandbox import Roots

#: Written into a state folder on first use; a folder naming another user is never used.
OWNER_FILE = "owner"


class StateFolderError(Exception):
    """A state folder that would not be the user's alone; the message is for the admin."""


def session_state_dir(config: HebiConfig, user: str, home: str, launcher_folder: Path) -> Path:
    """Where the session of ``user`` keeps its job registry and other state.

    ``session.state_dir`` when set (``{user}``/``{home}`` expanded), else ``{home}/.hebi`` for a user with
    a home, else ``state`` inside ``launcher_folder``, the launcher's own folder for this user. Raises
    StateFolderError when the result would be shared with other users (check_state_dir).
    """
    template = config.session.state_dir or ("{home}/.hebi" if _real_home(home) else "")
    if template:
        if "{home}" in template and not _real_home(home):
            raise StateFolderError(f"session.state_dir ({template}) names {{home}}, but {user} has no home folder")
        path = Path(template.replace("{user}", user).replace("{home}", home))
    else:
        path = Path(launcher_folder) / "state"
    check_state_dir(path, user, home)
    return path


def check_state_dir(path: Path, user: str, home: str) -> Path:
    """Refuse a state folder that is not the user's alone.

    It must be absolute and lie inside the user's home or below a folder named for the user (a path
    template without ``{user}`` or ``{home}`` would give every user the same registry), and a folder
    already claimed by another user (its ``owner`` file) is never taken over.
    """
    if not path.is_absolute():
        raise StateFolderError(f"the state folder of {user} ({path}) is not an absolute path")
    real = Path(os.path.realpath(path))
    in_home = _real_home(home) and (real == Path(os.path.realpath(home)) or
                                    Path(os.path.realpath(home)) in real.parents)
    if not in_home and user not in real.parts:
        raise StateFolderError(
            f"the state folder of {user} ({real}) is neither in their home nor in a folder named for them, "
            "so other users would share it: put {user} or {home} in session.state_dir")
    owner_file = real / OWNER_FILE
    try:
        owner = owner_file.read_text().strip()
    except FileNotFoundError:
        owner = ""
    except OSError as err:
        raise StateFolderError(f"the state folder of {user} ({real}) cannot be read: {err.strerror}") from None
    if owner and owner != user:
        raise StateFolderError(f"the state folder {real} belongs to {owner}, not {user}")
    return real


def claim_state_dir(path: Path, user: str) -> None:
    """Create the state folder (0700) and mark it as ``user``'s."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    owner_file = path / OWNER_FILE
    if not owner_file.exists():
        owner_file.write_text(user + "\n")


def _real_home(home: str) -> bool:
    return bool(home) and os.path.realpath(home) != "/"


@dataclass(frozen=True)
class SessionContext:
    user: str
    home: str
    secret: str
    roots: Roots
    #: The user's own state folder (job registry, ...): see session_state_dir.
    state_dir: Path
    #: The launcher runs this session as the user's own uid, in its own container, with only the user's
    #: folders mounted (podman, kubernetes); the local launcher runs it as the service account.
    isolated: bool = False

    @classmethod
    def from_environment(cls, config: HebiConfig, environ=os.environ) -> SessionContext:
        """The launcher starts each session service with HEBI_SESSION_USER/_HOME/_SECRET/_STATE_DIR set
        (pod_launcher.spec); in a container the secret is a file (_SECRET_FILE), so inspecting the
        container does not show it."""
        user = environ.get("HEBI_SESSION_USER", "")
        secret = environ.get("HEBI_SESSION_SECRET", "")
        if not secret and environ.get("HEBI_SESSION_SECRET_FILE"):
            secret = Path(environ["HEBI_SESSION_SECRET_FILE"]).read_text().strip()
        state = environ.get("HEBI_SESSION_STATE_DIR", "")
        if not user or not secret or not state:
            raise RuntimeError("HEBI_SESSION_USER, HEBI_SESSION_SECRET and HEBI_SESSION_STATE_DIR must be set: "
                               "session services are started by the launcher")
        check_username(user)
        home = environ.get("HEBI_SESSION_HOME", "")
        state_dir = check_state_dir(Path(state), user, home)  # again here: the kernel's view, not the launcher's
        claim_state_dir(state_dir, user)
        return cls(user, home, secret, Roots.from_config(config.session.roots, user, home), state_dir,
                   environ.get("HEBI_SESSION_ISOLATED") == "1")


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

    @app.errorhandler(UserError)
    def _user_error(err: UserError):
        return jsonify(err.body()), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        message = err.description or err.name
        return jsonify(error=message, message=message), err.code

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error="internal error; the session log has the details"), 500


def current_identity() -> Identity:
    from flask import g
    return g.identity
