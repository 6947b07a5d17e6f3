"""Renders the session's nginx config (web/nginx/session.conf.template): the one renderer the session
image's entrypoint and the local launcher both use, so both run the same file."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
REQUIRED = ("LISTEN", "API", "DATA", "WEB_ROOT", "PREFIX", "MIME_TYPES")
DEFAULTS = {"BODY_TIMEOUT": "60"}
MIME_TYPES_CANDIDATES = ("/etc/nginx/mime.types", "/usr/local/etc/nginx/mime.types", "/opt/homebrew/etc/nginx/mime.types")


def render_session_config(template: str, values: dict[str, str]) -> str:
    missing = [name for name in REQUIRED if not values.get(name)]
    if missing:
        raise ValueError(f"nginx template values missing: {', '.join(missing)}")
    values = DEFAULTS | values

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"nginx template has an unknown placeholder {{{{{name}}}}}")
        return values[name]

    return PLACEHOLDER.sub(fill, template)


def find_nginx(binary: str = "nginx") -> str | None:
    """The nginx binary: on PATH, or in /usr/sbin, which is not on an ordinary user's PATH."""
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")


def find_mime_types() -> str | None:
    return next((p for p in MIME_TYPES_CANDIDATES if Path(p).is_file()), None)
