"""The HTTP floor, for the benchmark only: bodies of a frame's and a view's size sent from memory by the
same gunicorn settings, so the figures show what moving the bytes alone costs on this machine."""
import os

BODIES = {"/full": os.urandom(2048 * 2048 * 4), "/view": os.urandom(512 * 512 * 4)}


def app(environ, start_response):
    body = BODIES.get(environ["PATH_INFO"], b"ok")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
