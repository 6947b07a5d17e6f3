"""Rebuild hebi's bundled Savu plugin catalogue from the team's research notes on Savu 4.2.

The bundled catalogue (common/hebi_common/savu/catalogue.json) is hebi's own file: for each plugin only
what hebi uses (module, kind, category, GPU need, a summary, and each parameter's dtype, default,
visibility, options, dependency and description), keyed by plugin name, parameters in definition order.
Run when the research notes change:  python tools/make_catalogue.py ../shared/savu/plugins.json
"""
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "common" / "hebi_common" / "savu" / "catalogue.json"
PLUGIN_KEYS = ("module", "kind", "category", "needs_gpu", "driver", "summary")
PARAM_KEYS = ("dtype", "default", "default_by_parent", "visibility", "options", "dependency",
              "description", "warning")


def main(source: str) -> None:
    facts = json.loads(Path(source).read_text())
    plugins = {}
    for plugin in sorted(facts["plugins"], key=lambda p: p["name"]):
        entry = {key: plugin[key] for key in PLUGIN_KEYS}
        params = sorted(plugin["parameters"], key=lambda p: p["order"])
        entry["parameters"] = [
            dict({"name": p["name"]}, **{key: p[key] for key in PARAM_KEYS if key in p}) for p in params]
        plugins[plugin["name"]] = entry
    catalogue = {"format": "hebi-savu-catalogue/1", "savu_version": facts["savu_version"], "plugins": plugins}
    OUT.write_text(json.dumps(catalogue, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(plugins)} plugins to {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/savu/plugins.json")
