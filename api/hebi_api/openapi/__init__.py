"""The API's OpenAPI document, served at GET /api/openapi.json.

Each resource describes itself in one YAML fragment beside this file (files.yaml, plugins.yaml,
process_lists.yaml, ...), holding ``paths`` and optionally ``components``; this module merges every
fragment it finds, so a new resource adds a file and touches nothing else. A path or component defined
twice is an error, caught by the tests rather than silently overwritten.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, jsonify

blueprint = Blueprint("openapi", __name__)

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "hebi session API", "version": "1",
             "description": "The API of one user's hebi session: Savu plugins and process lists, files, jobs. "
                            "Every request arrives through the gateway, which authenticates the user. "
                            "Errors are JSON objects {\"error\": message}."},
    "servers": [{"url": "/api"}],
}


def fragments() -> dict[str, dict[str, Any]]:
    found = {}
    for item in sorted(resources.files(__package__).iterdir(), key=lambda i: i.name):
        if item.name.endswith((".yaml", ".yml")):
            found[item.name] = yaml.safe_load(item.read_text(encoding="utf-8")) or {}
    return found


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    document = dict(BASE, paths={}, components={})
    for name, fragment in fragments().items():
        for path, operations in (fragment.get("paths") or {}).items():
            if path in document["paths"]:
                raise ValueError(f"openapi/{name}: path {path} is already described by another fragment")
            document["paths"][path] = operations
        for section, items in (fragment.get("components") or {}).items():
            target = document["components"].setdefault(section, {})
            for key, value in (items or {}).items():
                if key in target:
                    raise ValueError(f"openapi/{name}: components/{section}/{key} is defined twice")
                target[key] = value
    return document


@blueprint.get("/openapi.json")
def serve_openapi():
    return jsonify(openapi_document())
