"""The dataserver's app factory. Run by the launcher as ``gunicorn 'hebi_dataserver.app:create_app()'``."""
from __future__ import annotations

from flask import Flask

from hebi_common.config import HebiConfig, load_config
from hebi_common.logs import setup_logging
from hebi_common.session import SessionContext, install_flask_session_guard

from . import routes


def create_app(config: HebiConfig | None = None, context: SessionContext | None = None) -> Flask:
    config = config or load_config()
    context = context or SessionContext.from_environment(config)
    setup_logging("dataserver", config.logging.level)
    app = Flask("hebi_dataserver")
    app.extensions["hebi"] = {"config": config, "context": context}
    install_flask_session_guard(app, context)
    app.register_blueprint(routes.blueprint, url_prefix="/data")
    return app
