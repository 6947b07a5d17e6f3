"""The plugin catalogue over HTTP."""
from flask import Blueprint, abort, jsonify

from .state import hebi

blueprint = Blueprint("plugins", __name__)


@blueprint.get("/plugins")
def list_plugins():
    catalogue = hebi("catalogue")
    return jsonify(source=catalogue.source, savu_version=catalogue.savu_version,
                   plugins=[p.summary_json() for p in catalogue.all()])


@blueprint.get("/plugins/<name>")
def get_plugin(name: str):
    plugin = hebi("catalogue").get(name)
    if plugin is None:
        abort(404, description=f"no plugin named {name!r} in the catalogue")
    return jsonify(plugin.to_json())
