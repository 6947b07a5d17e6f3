"""The Savu plugin catalogue: which plugins exist and what parameters each takes.

``bundled`` is hebi's own catalogue (catalogue.json beside this file, facts of Savu 4.2); when a real
Savu is importable, ``load_catalogue("auto")`` will prefer its plugins (see docs/process-lists.md).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Plugin:
    name: str
    module: str
    kind: str
    category: str
    needs_gpu: bool
    driver: str
    summary: str
    parameters: tuple[dict[str, Any], ...]

    def summary_json(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "kind": self.kind, "category": self.category,
                "needs_gpu": self.needs_gpu, "summary": self.summary}

    def to_json(self) -> dict[str, Any]:
        return dict(self.summary_json(), driver=self.driver, parameters=[dict(p) for p in self.parameters])


class Catalogue:
    def __init__(self, plugins: dict[str, Plugin], source: str, savu_version: str):
        self.plugins = plugins
        self.source = source
        self.savu_version = savu_version

    def __len__(self) -> int:
        return len(self.plugins)

    def get(self, name: str) -> Plugin | None:
        return self.plugins.get(name)

    def all(self) -> list[Plugin]:
        return [self.plugins[name] for name in sorted(self.plugins)]


@lru_cache(maxsize=1)
def bundled_catalogue() -> Catalogue:
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    data = json.loads(text)
    plugins = {
        name: Plugin(name=name, module=p["module"], kind=p["kind"], category=p["category"],
                     needs_gpu=p["needs_gpu"], driver=p["driver"], summary=p["summary"],
                     parameters=tuple(p["parameters"]))
        for name, p in data["plugins"].items()
    }
    return Catalogue(plugins, source="bundled", savu_version=data["savu_version"])


def load_catalogue(choice: str = "auto") -> Catalogue:
    # A real Savu's catalogue arrives with the process-list issue; until then every choice is bundled.
    return bundled_catalogue()
