"""One log format for every component, so a session's logs read as one story."""
from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(component: str, level: str = "info") -> logging.Logger:
    """Configure the root logger once for this process and return the component's logger."""
    root = logging.getLogger()
    if not any(getattr(h, "_hebi", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._hebi = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    return logging.getLogger(f"hebi.{component}")
