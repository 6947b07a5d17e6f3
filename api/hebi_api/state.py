"""Access to the app-wide objects create_app() made: config, session context, catalogue."""
from flask import current_app


def hebi(name: str):
    return current_app.extensions["hebi"][name]
