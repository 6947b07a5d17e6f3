"""Liveness and identity: is the session up, and whose is it."""
from flask import Blueprint, jsonify

from hebi_common.session import current_identity

from .state import hebi

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health():
    return jsonify(status="ok", user=hebi("context").user)


@blueprint.get("/whoami")
def whoami():
    identity = current_identity()
    context = hebi("context")
    roots = [{"name": r.name, "writable": r.writable} for r in context.roots]
    return jsonify(user=identity.user, uid=identity.uid, gid=identity.gid, home=identity.home,
                   groups=list(identity.groups), roots=roots)
