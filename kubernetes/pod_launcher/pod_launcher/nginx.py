"""Finding nginx on this machine for the local launcher; the config renderer itself is
hebi_common.nginx_conf (shared with the web image)."""
from __future__ import annotations

import shutil

from hebi_common.nginx_conf import find_mime_types, render_session_config

__all__ = ["find_mime_types", "find_nginx", "render_session_config"]


def find_nginx(binary: str = "nginx") -> str | None:
    """The nginx binary: on PATH, or in /usr/sbin, which is not on an ordinary user's PATH."""
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")
