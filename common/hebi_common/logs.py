"""One log format for every component, so a session's logs read as one story: text for a person at a
terminal, or (``logging.format: json``) one JSON object per line for a log collector (Loki, Elasticsearch,
Graylog) that would otherwise have to parse the text.

The JSON formatter is a few lines on the standard library's json, rather than a dependency every image
would carry for it."""
from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, plus ``component`` and ``exception`` (the traceback)."""

    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "component": self.component,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        # ensure_ascii: a line is always one line of ASCII, whatever a user name or path holds.
        return json.dumps(entry, ensure_ascii=True, default=str)


def setup_logging(component: str, level: str = "info", log_format: str = "text") -> logging.Logger:
    """Configure the root logger once for this process and return the component's logger."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_hebi", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._hebi = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter(component) if log_format == "json" else logging.Formatter(FORMAT))
    root.setLevel(level.upper())
    return logging.getLogger(f"hebi.{component}")
