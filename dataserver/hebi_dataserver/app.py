"""The dataserver's app factory. Run by the launcher as ``python3 -m hebi_common.serve 'hebi_dataserver.app:create_app()'``.

One app holds the per-process state every request shares: the open-file cache (``files``) and the
thread pool of the chunk reader (``reader``). Requests come only from the gateway, through the session's
nginx, signed for this session's user (the session guard refuses anything else with 401).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from hebi_common.config import HebiConfig, load_config
from hebi_common.confine import clear_hdf5_prefixes
from hebi_common.logs import setup_logging
from hebi_common.session import SessionContext, install_flask_session_guard

from . import routes
from .files import OpenFileCache
from .reader import SelectionReader


def create_app(config: HebiConfig | None = None, context: SessionContext | None = None) -> Flask:
    config = config or load_config()
    context = context or SessionContext.from_environment(config)
    setup_logging("dataserver", config.logging.level, config.logging.format)
    clear_hdf5_prefixes()
    settings = config.dataserver
    app = Flask("hebi_dataserver")
    app.extensions["hebi"] = {
        "config": config, "context": context,
        "files": OpenFileCache(settings.open_files, settings.chunk_cache_bytes),
        "reader": SelectionReader(settings.read_threads),
        # Downsampled views read and bin bands of rows in parallel; their own pool, since each band's
        # read may use the reader's.
        "views": ThreadPoolExecutor(settings.read_threads, thread_name_prefix="hebi-view"),
        # VDS source datasets found plain (hebi_common.confine): not opened again while unchanged.
        "plain_sources": {},
    }
    install_flask_session_guard(app, context)
    app.register_blueprint(routes.blueprint, url_prefix="/data")
    return app
