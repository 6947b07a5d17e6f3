"""A session service (the API or the dataserver) as one process: gunicorn's threaded worker, without its arbiter.

A session serves one user, so each service runs one gunicorn worker, and gunicorn's arbiter is a second
Python process that only forks that worker and watches it. Supervision is already the launcher's (local:
the gateway restarts a session whose parts stop answering) or the container runtime's (podman and
Kubernetes: ``restartPolicy``). The arbiter cost about 15 MB PSS per service, a quarter of an idle
session (bench/session). The worker is gunicorn's own ``gthread`` worker, so requests are served exactly
as they were: a pool of threads, request bodies streamed to the app, ``wsgi.file_wrapper`` sent with
sendfile, a graceful stop on SIGTERM (quick on SIGINT), and gunicorn's own options and logging.

    python -m hebi_common.serve --bind unix:/run/api.sock --threads 8 'hebi_api.app:create_app()'

Gunicorn's worker classes are its documented extension point; what this module adds is running one with
no arbiter, which is why the gunicorn version is bounded in hebi-common's ``flask`` extra.
"""
from __future__ import annotations

import contextlib
import os

from gunicorn import sock
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.workers.gthread import ThreadWorker


class SoleWorker(ThreadWorker):
    """gunicorn's gthread worker as the service's only process."""

    def is_parent_alive(self) -> bool:
        # A worker exits when its arbiter dies; this one has none, and must outlive the gateway that started
        # it (the local launcher finds its sessions again after a restart).
        return True


def main() -> None:
    application = WSGIApplication("%(prog)s [OPTIONS] APP_MODULE:APP")  # gunicorn's own command line
    cfg = application.cfg
    log = cfg.logger_class(cfg)
    listeners = sock.create_sockets(cfg, log)
    unix_sockets = [address for address in cfg.address if isinstance(address, str)]
    worker = SoleWorker(1, os.getppid(), listeners, application, cfg.timeout / 2.0, cfg, log)
    try:
        worker.init_process()  # serves until SIGTERM/SIGINT, then closes the listeners
    finally:
        worker.tmp.close()
        for path in unix_sockets:  # as the arbiter would, so a restart can bind the same path
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


if __name__ == "__main__":
    main()
