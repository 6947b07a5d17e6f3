"""The API's app factory: ``create_app()`` builds the Flask app of one user's session.

Run by the launcher as ``python3 -m hebi_common.serve 'hebi_api.app:create_app()'`` with HEBI_CONFIG and the session's
HEBI_SESSION_* variables set. Nothing happens at import time.
"""
from __future__ import annotations

from flask import Flask

from hebi_common.config import HebiConfig, load_config
from hebi_common.logs import setup_logging
from hebi_common.savu.catalogue import load_catalogue
from hebi_common.session import SessionContext, install_flask_session_guard

from . import files, health, openapi, plugins, process_lists, tus
from .bodies import install_body_check
from .jobs import routes as jobs_routes
from .quota import UploadQuota


def create_app(config: HebiConfig | None = None, context: SessionContext | None = None) -> Flask:
    config = config or load_config()
    context = context or SessionContext.from_environment(config)
    setup_logging("api", config.logging.level, config.logging.format)

    app = Flask("hebi_api")
    app.config["MAX_CONTENT_LENGTH"] = None  # uploads stream; files.py enforces session.max_upload_bytes
    app.extensions["hebi"] = {
        "config": config,
        "context": context,
        "catalogue": load_catalogue(config.session.plugin_catalogue),
        "quota": UploadQuota(context.roots, config.session.quota_bytes),
    }
    install_flask_session_guard(app, context)
    install_body_check(app)  # after the identity check: a stranger learns nothing from a 415
    for blueprint in (health.blueprint, plugins.blueprint, files.blueprint, tus.blueprint, process_lists.blueprint,
                      openapi.blueprint):
        app.register_blueprint(blueprint, url_prefix="/api")
    app.register_blueprint(jobs_routes.blueprint, url_prefix="/api")
    return app
