"""h5grove's own Flask app, as its example builds it (blueprint + base dir), for the benchmark only.

Served by the same gunicorn settings as hebi's dataserver so that the comparison is of the apps, not
of the HTTP servers. ``H5_BASE_DIR`` comes from the environment.
"""
import os

from flask import Flask
from h5grove.flask_utils import BLUEPRINT


def create_app() -> Flask:
    app = Flask("h5grove_bench")
    app.config["H5_BASE_DIR"] = os.environ["H5_BASE_DIR"]
    app.register_blueprint(BLUEPRINT)
    return app
