"""The Savu plugin catalogue: which plugins exist and what parameters each takes.

``bundled`` is hebi's own catalogue (catalogue.json beside this file, facts of Savu 4.2, rebuilt by
tools/make_catalogue.py). ``savu`` reads the plugins of a real Savu installed in this Python
(``savu_catalogue.py``). ``auto`` prefers a real Savu when ``savu`` imports, else the bundled one.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

VISIBILITY_ORDER = ("basic", "intermediate", "advanced", "datasets")
LEVELS = ("basic", "intermediate", "advanced")


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
    citations: tuple[dict[str, str], ...] = ()

    # -- what the API shows --------------------------------------------------------------------
    def summary_json(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "kind": self.kind, "category": self.category,
                "needs_gpu": self.needs_gpu, "summary": self.summary}

    def to_json(self) -> dict[str, Any]:
        return dict(self.summary_json(), driver=self.driver, is_loader=self.is_loader, is_saver=self.is_saver,
                    parameters=[dict(p) for p in self.parameters],
                    citations=[dict(c) for c in self.citations])

    # -- facts the process-list code needs ---------------------------------------------------
    @property
    def is_loader(self) -> bool:
        return self.kind == "loader"

    @property
    def is_saver(self) -> bool:
        return self.kind == "saver"

    def parameter(self, name: str) -> dict[str, Any] | None:
        for parameter in self.parameters:
            if parameter["name"] == name:
                return parameter
        return None

    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.parameters]

    def default_for(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """The default of ``name``; a default that depends on another parameter follows its value."""
        parameter = self.parameter(name)
        if parameter is None:
            return None
        by_parent = parameter.get("default_by_parent")
        if by_parent and params is not None and by_parent["parent"] in params:
            parent_value = params[by_parent["parent"]]
            for key, value in by_parent["values"].items():
                if key == str(parent_value):
                    return _fresh(value)
        return _fresh(parameter.get("default"))

    def defaults(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for parameter in self.parameters:
            params[parameter["name"]] = _fresh(parameter.get("default"))
        for parameter in self.parameters:  # dependent defaults follow the parents' defaults
            if parameter.get("default_by_parent"):
                params[parameter["name"]] = self.default_for(parameter["name"], params)
        return params


def _fresh(value: Any) -> Any:
    return json.loads(json.dumps(value))


@dataclass
class Catalogue:
    plugins: dict[str, Plugin]
    source: str
    savu_version: str
    framework_citations: list = field(default_factory=list)
    #: Names of plugins a real Savu could not import, with the reason (shown, never fatal).
    failed: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.plugins)

    def get(self, name: str) -> Plugin | None:
        return self.plugins.get(name)

    def by_module(self, module: str) -> Plugin | None:
        for plugin in self.plugins.values():
            if plugin.module == module:
                return plugin
        return None

    def all(self) -> list[Plugin]:
        return [self.plugins[name] for name in sorted(self.plugins)]

    def collections(self) -> dict[str, list[str]]:
        """savu_config's ``coll``: plugins grouped by category (Savu groups by sub-package)."""
        groups: dict[str, list[str]] = {}
        for plugin in self.all():
            groups.setdefault(plugin.category, []).append(plugin.name)
        return dict(sorted(groups.items()))

    def search(self, query: str) -> list[Plugin]:
        """Plugins matching ``query`` by name, module, category or kind, tolerant of case and small typos;
        best matches first."""
        words = [w for w in re.split(r"[\s,]+", query.strip().lower()) if w]
        if not words:
            return self.all()
        scored = []
        for plugin in self.plugins.values():
            score = _score(words, plugin)
            if score > 0:
                scored.append((-score, plugin.name))
        return [self.plugins[name] for _, name in sorted(scored)]

    def suggest(self, name: str) -> list[str]:
        """Close plugin names for a message like "did you mean ...?"."""
        lowered = {n.lower(): n for n in self.plugins}
        close = [lowered[n] for n in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
        for plugin in self.search(name)[:3]:  # a word of the name is enough ("Ravenn" -> RavenFilter)
            if plugin.name not in close and len(close) < 3:
                close.append(plugin.name)
        return close


def _words(plugin: Plugin) -> list[str]:
    camel = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", plugin.name)
    parts = re.split(r"[._]", plugin.module)
    return sorted({w.lower() for w in camel + parts + [plugin.category, plugin.kind, plugin.name] if w})


def _score(words: list[str], plugin: Plugin) -> float:
    """Every query word must match: exactly or as a substring (strong), or within a small typo
    distance of one of the plugin's words (weaker). The sum ranks the results."""
    haystack = f"{plugin.name} {plugin.module} {plugin.category} {plugin.kind}".lower()
    tokens = _words(plugin)
    total = 0.0
    for word in words:
        if word == plugin.name.lower():
            total += 10
        elif plugin.name.lower().startswith(word):
            total += 6
        elif word in haystack:
            total += 4
        else:
            best = max((difflib.SequenceMatcher(None, word, token).ratio() for token in tokens), default=0)
            whole = difflib.SequenceMatcher(None, word, plugin.name.lower()).ratio()
            best = max(best, whole)
            threshold = 0.75 if len(word) > 4 else 0.8
            if best < threshold:
                return 0
            total += 3 * best + whole  # the closer the whole name, the higher among equal word matches
    return total


def _plugin_from_json(name: str, p: dict[str, Any]) -> Plugin:
    return Plugin(name=name, module=p["module"], kind=p["kind"], category=p["category"],
                  needs_gpu=p["needs_gpu"], driver=p["driver"], summary=p["summary"],
                  parameters=tuple(p["parameters"]), citations=tuple(p.get("citations", ())))


@lru_cache(maxsize=1)
def bundled_catalogue() -> Catalogue:
    from .process_list import Citation
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    data = json.loads(text)
    plugins = {name: _plugin_from_json(name, p) for name, p in data["plugins"].items()}
    framework = [Citation(**c) for c in data.get("framework_citations", [])]
    return Catalogue(plugins, source="bundled", savu_version=data["savu_version"],
                     framework_citations=framework)


class CatalogueError(Exception):
    pass


def savu_importable() -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec("savu") is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=3)
def load_catalogue(choice: str = "auto") -> Catalogue:
    """``bundled``, ``savu`` (a real Savu; error when it does not import) or ``auto``."""
    if choice == "bundled":
        return bundled_catalogue()
    if choice == "savu" or (choice == "auto" and savu_importable()):
        from .savu_catalogue import catalogue_from_savu
        try:
            return catalogue_from_savu(bundled_catalogue())
        except Exception as err:  # a broken Savu install must not take the session down under "auto"
            if choice == "savu":
                raise CatalogueError(f"plugin_catalogue is 'savu' but Savu's plugins could not be read: {err}") from err
            return bundled_catalogue()
    return bundled_catalogue()


_default: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The catalogue readers use when none is given (the API passes its own explicitly)."""
    global _default
    if _default is None:
        _default = load_catalogue("auto")
    return _default
