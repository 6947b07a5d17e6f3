"""The plugin catalogue over HTTP: search, one plugin's details, savu_config's collections.

    GET /api/plugins?q=median          search by name, module, category or kind (case and small typos
                                       forgiven), best matches first; no q = every plugin by name
    GET /api/plugins/collections       plugins by category (savu_config's ``coll``)
    GET /api/plugins/<name>            kind, GPU need, summary, parameters (dtype, default, visibility,
                                       options, dependency, description, savu_config number), citations
"""
from flask import Blueprint, abort, jsonify, request

from hebi_common.savu.parameters import numbered_parameters

from .state import hebi

blueprint = Blueprint("plugins", __name__)


def _source(catalogue) -> dict:
    return {"source": catalogue.source, "savu_version": catalogue.savu_version}


@blueprint.get("/plugins")
def list_plugins():
    catalogue = hebi("catalogue")
    query = request.args.get("q", "")
    if len(query) > 200:
        abort(400, description="the search text is longer than 200 characters")
    found = catalogue.search(query) if query.strip() else catalogue.all()
    return jsonify(**_source(catalogue), query=query, plugins=[p.summary_json() for p in found],
                   unavailable=catalogue.failed)


@blueprint.get("/plugins/collections")
def collections():
    catalogue = hebi("catalogue")
    return jsonify(**_source(catalogue), collections=catalogue.collections())


@blueprint.get("/plugins/<name>")
def get_plugin(name: str):
    catalogue = hebi("catalogue")
    plugin = catalogue.get(name)
    if plugin is None:
        for candidate in catalogue.plugins.values():  # forgive case, and accept the module path
            if candidate.name.lower() == name.lower() or candidate.module == name:
                plugin = candidate
                break
    if plugin is None:
        hint = catalogue.suggest(name)
        more = f"; did you mean {' or '.join(hint)}?" if hint else ""
        abort(404, description=f"no plugin named {name!r} in the catalogue{more}")
    body = plugin.to_json()
    numbers = {p["name"]: p["number"] for p in numbered_parameters(plugin.parameters, plugin.defaults())}
    for parameter in body["parameters"]:
        parameter["number"] = numbers.get(parameter["name"])  # savu_config's `mod P.n` with the defaults
    body.update(_source(catalogue))
    return jsonify(body)
