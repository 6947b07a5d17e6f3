"""Renders the session's nginx config (web/nginx/session.conf.template): the one renderer that the local
launcher, the podman launcher and the web image all use, so every session runs the same file. Standard
library only, so the web image can run it without hebi's other dependencies:

    python3 -m hebi_common.nginx_conf TEMPLATE OUT LISTEN=8080 API=127.0.0.1:8081 ...
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
REQUIRED = ("LISTEN", "API", "DATA", "WEB_ROOT", "PREFIX", "MIME_TYPES")
DEFAULTS = {"BODY_TIMEOUT": "60"}
MIME_TYPES_CANDIDATES = ("/etc/nginx/mime.types", "/usr/local/etc/nginx/mime.types",
                         "/opt/homebrew/etc/nginx/mime.types")


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


def find_mime_types() -> str | None:
    return next((p for p in MIME_TYPES_CANDIDATES if Path(p).is_file()), None)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not all("=" in a for a in argv[2:]):
        print("usage: python -m hebi_common.nginx_conf TEMPLATE OUT NAME=VALUE...", file=sys.stderr)
        return 2
    values = dict(a.split("=", 1) for a in argv[2:])
    try:
        Path(argv[1]).write_text(render_session_config(Path(argv[0]).read_text(), values))
    except (OSError, ValueError) as err:
        print(f"nginx_conf: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
