"""Rebuild hebi's bundled Savu plugin catalogue from the team's research notes on Savu 4.2.

The bundled catalogue (common/hebi_common/savu/catalogue.json) is hebi's own file: for each plugin only
what hebi uses (module, kind, category, GPU need, a summary, and each parameter's dtype, default,
visibility, options, dependency and description), keyed by plugin name, parameters in definition order.
Citations are harvested from real process lists written by Savu (the NXcite groups Savu stores with each
plugin, and the framework citations of a Savu 4.2 list), because the writer must store them as Savu does.
Run when the research notes change:
    python tools/make_catalogue.py ../shared/savu/plugins.json ../shared/fixtures/savu/process_lists
"""
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "common" / "hebi_common" / "savu" / "catalogue.json"
PLUGIN_KEYS = ("module", "kind", "category", "needs_gpu", "driver", "summary")
PARAM_KEYS = ("dtype", "default", "default_by_parent", "visibility", "options", "dependency",
              "description", "warning")
CITATION_FIELDS = ("description", "doi", "endnote", "bibtex")


def _text(dataset) -> str:
    value = dataset[()]
    if getattr(value, "shape", ()) != ():
        value = value[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _citations(group) -> list[dict]:
    return [dict({"name": name}, **{key: _text(group[name][key]) for key in CITATION_FIELDS if key in group[name]})
            for name in sorted(group)]


def harvest_citations(folder: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    """Framework citations of the newest list, and each plugin's citations as Savu stored them."""
    import h5py
    framework: tuple[str, list[dict]] = ("", [])
    by_plugin: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.nxs")):
        with h5py.File(path, "r") as handle:
            entry = handle["entry"]
            version = _text(entry["savu_notes/version"]) if "savu_notes/version" in entry else ""
            if "framework_citations" in entry and version >= framework[0]:
                framework = (version, _citations(entry["framework_citations"]))
            for group in entry["plugin"].values():
                name = _text(group["name"]).strip()
                cites = [c for c in _citations(group) if c["name"].startswith("citation")]
                for cite in cites:
                    cite.pop("name")
                if cites and len(cites) > len(by_plugin.get(name, [])):
                    by_plugin[name] = cites
    return framework[1], by_plugin


def main(source: str, lists: str | None) -> None:
    facts = json.loads(Path(source).read_text())
    framework, citations = harvest_citations(Path(lists)) if lists else ([], {})
    plugins = {}
    for plugin in sorted(facts["plugins"], key=lambda p: p["name"]):
        entry = {key: plugin[key] for key in PLUGIN_KEYS}
        params = sorted(plugin["parameters"], key=lambda p: p["order"])
        entry["parameters"] = [
            dict({"name": p["name"]}, **{key: p[key] for key in PARAM_KEYS if key in p}) for p in params]
        entry["citations"] = citations.get(plugin["name"], [])
        plugins[plugin["name"]] = entry
    catalogue = {"format": "hebi-savu-catalogue/1", "savu_version": facts["savu_version"],
                 "framework_citations": framework, "plugins": plugins}
    OUT.write_text(json.dumps(catalogue, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(plugins)} plugins to {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/savu/plugins.json",
         sys.argv[2] if len(sys.argv) > 2 else "../shared/fixtures/savu/process_lists")
