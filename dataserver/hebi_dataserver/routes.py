"""The routes under /data/: h5grove 4.0's endpoints and parameters, plus what a viewer needs on top.

h5grove's: ``meta``, ``attr``, ``data``, ``stats``, ``paths`` with ``file``, ``path``, ``selection``,
``format`` (json, bin, npy, csv, tiff), ``dtype`` (origin, safe), ``flatten``, ``resolve_links`` and
``attr_keys``. ``file`` is ``<root>/<path in root>`` (``data/scan/1.nxs``), resolved by the sandbox.
hebi's additions:
- ``/data/data``: ``size=512x512`` bins a 1D/2D selection down to at most that size, with
  ``reduce=mean|max|min``; binary answers carry ``X-Hebi-Shape`` / ``X-Hebi-Dtype`` (and ``X-Hebi-Bin``);
- ``/data/stats``: NaN/Inf counts and a histogram (``bins=``);
- ``/data/default``: the NeXus default plot of a file (``nexus.find_default_plot``);
- every answer has an ETag and a conditional request gets 304; every error is JSON with a 4xx status;
- no request reads more than ``dataserver.max_request_bytes`` (413 says how many it would need).
"""
from __future__ import annotations

import math

import h5py
import numpy as np
from flask import Blueprint, Response, current_app, g, request
from h5grove.utils import QueryArgumentError, convert, parse_bool_arg

from hebi_common.confine import check_dataset_sources

from . import httpcache
from .content import Resolver, parse_resolve_links
from .downsample import BAND_BYTES, band_rows, downsample, parse_size
from .encoders import Encoded, encode, encode_json, parse_format
from .errors import DataError
from .files import FileIdentity
from .nexus import find_default_plot
from .reader import chunks_crossed, decompressed_chunk_bytes
from .selection import Selection, parse_selection
from .stats import array_stats, check_numbers, parse_bins

blueprint = Blueprint("data", __name__)
SEND_PIECE = 1 << 20  # gunicorn sends bytes objects only: big bodies leave in 1 MiB pieces
SENDFILE_BYTES = 1 << 20  # runs at least this big go out with sendfile (gunicorn) from the file itself
MAX_PATHS = 200_000


def _hebi() -> dict:
    return current_app.extensions["hebi"]


@blueprint.errorhandler(QueryArgumentError)
@blueprint.errorhandler(OSError)
def _as_data_error(err: Exception):
    """h5grove's argument errors, and h5py's OSError for whatever HDF5 cannot read (a damaged, truncated
    or half-written file), are the user's DataErrors: the session guard answers them like any other."""
    if isinstance(err, QueryArgumentError):
        error = DataError(str(err), 422)
    else:
        ref = request.args.get("file", "the file")
        error = DataError(f"{ref} could not be read at {request.args.get('path', '/')}: the file is corrupt, "
                          "truncated or still being written "
                          f"({str(err).splitlines()[0] if str(err) else type(err).__name__})", 422)
    return current_app.handle_user_exception(error)


@blueprint.teardown_request
def _close_resolvers(_exc=None) -> None:
    for resolver in g.pop("hebi_resolvers", []):
        resolver.close()


def _resolver() -> Resolver:
    ref = request.args.get("file")
    if not ref:
        raise DataError("the 'file' parameter is required, as <root>/<path in root>, e.g. data/scan.nxs", 400)
    context = _hebi()["context"]
    _, path = context.roots.resolve_ref(ref)
    resolver = Resolver(context.roots, _hebi()["files"], path, ref,
                        max_children=_hebi()["config"].dataserver.max_children)
    g.setdefault("hebi_resolvers", []).append(resolver)
    return resolver


def _not_modified(resolver: Resolver, extra_files=()) -> tuple[str, Response | None]:
    params = [(k, v) for k, v in request.args.items(multi=True)]
    tag = httpcache.etag(request.path, params, [*resolver.identities(), *extra_files])
    if httpcache.matches(request.headers.get("If-None-Match"), tag):
        response = Response(status=304)
        response.headers["ETag"] = tag
        response.headers["Cache-Control"] = httpcache.CACHE_CONTROL
        return tag, response
    return tag, None


def _send(encoded: Encoded, tag: str) -> Response:
    def pieces():
        for part in encoded.body:
            if isinstance(part, bytes):
                yield part
            else:
                for start in range(0, part.nbytes, SEND_PIECE):
                    yield bytes(part[start:start + SEND_PIECE])

    body = encoded.body[0] if len(encoded.body) == 1 and isinstance(encoded.body[0], bytes) else pieces()
    response = Response(body, headers=encoded.headers)
    response.headers["Content-Length"] = str(encoded.length)
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = httpcache.CACHE_CONTROL
    return response


def _limit(nbytes: int, what: str) -> None:
    limit = _hebi()["config"].dataserver.max_request_bytes
    if nbytes > limit:
        raise DataError(f"{what} needs {_size(nbytes)} ({nbytes} bytes) but one request may read at most "
                        f"{_size(limit)}: select a smaller slice (e.g. selection=0,:,:) or ask for a "
                        "downsampled view with size=", 413, needed_bytes=int(nbytes), limit_bytes=int(limit))


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# -- h5grove's endpoints ------------------------------------------------------------------------------

@blueprint.get("/")
def health():
    return Response("ok", mimetype="text/plain")


@blueprint.get("/meta")
@blueprint.get("/meta/")
def meta():
    resolver = _resolver()
    entity = resolver.locate(request.args.get("path"), parse_resolve_links(request.args.get("resolve_links")))
    document = resolver.metadata(entity)
    tag, not_modified = _not_modified(resolver)
    return not_modified or _send(encode_json(document), tag)


@blueprint.get("/attr")
@blueprint.get("/attr/")
def attr():
    resolver = _resolver()
    entity = resolver.locate(request.args.get("path"))
    keys = request.args.getlist("attr_keys") if "attr_keys" in request.args else None
    tag, not_modified = _not_modified(resolver)
    limit = _hebi()["config"].dataserver.max_request_bytes
    return not_modified or _send(encode_json(resolver.attributes(entity, keys, limit)), tag)


@blueprint.get("/paths")
@blueprint.get("/paths/")
def paths():
    resolver = _resolver()
    entity = resolver.locate(request.args.get("path"), parse_resolve_links(request.args.get("resolve_links")))
    tag, not_modified = _not_modified(resolver)
    return not_modified or _send(encode_json(resolver.paths(entity, MAX_PATHS)), tag)


def _dataset_and_selection(resolver: Resolver):
    entity = resolver.locate(request.args.get("path"))
    dataset = entity.require_dataset()
    max_chunk = _hebi()["config"].dataserver.max_chunk_bytes

    def bounded_chunks(file_path, read: h5py.Dataset) -> None:
        chunk = decompressed_chunk_bytes(read)
        if chunk > max_chunk:
            whose = "its" if read == dataset else (f"the values it reads from {read.name} in "
                                                   f"{resolver.roots.to_ref(file_path)}, whose")
            raise DataError(f"{entity.path}: {whose} compressed chunks hold {_size(chunk)} each, and HDF5 "
                            "decompresses a chunk whole even to read one value; one request may decompress "
                            f"at most {_size(max_chunk)} per chunk (dataserver.max_chunk_bytes)", 413,
                            chunk_bytes=chunk, limit_bytes=max_chunk)

    sources = check_dataset_sources(resolver.roots, entity.file.path, dataset, entity.path,
                                    open_file=lambda path: resolver.open(path, resolver.roots.to_ref(path)).h5,
                                    each_dataset=bounded_chunks, plain=_hebi()["plain_sources"])
    selection = parse_selection(request.args.get("selection"), dataset.shape)
    chunk = decompressed_chunk_bytes(dataset)
    if chunk:
        crossed = chunks_crossed(dataset, selection)
        limit = _hebi()["config"].dataserver.max_decompressed_bytes
        if crossed * chunk > limit:
            raise DataError(f"{entity.path}{_shown(selection)} crosses {crossed} compressed chunks, which HDF5 "
                            f"would decompress whole: {_size(crossed * chunk)}, more than one request may "
                            f"decompress ({_size(limit)}): select along the chunks (e.g. whole frames)", 413,
                            needed_bytes=crossed * chunk, limit_bytes=limit)
    extra = []
    for source in sources:
        try:
            stat = source.stat()
        except OSError:
            continue
        extra.append((str(source), FileIdentity.of(stat)))
    return entity, dataset, selection, extra


def _item_bytes(dataset: h5py.Dataset) -> int:
    # Variable-length values (strings, ragged arrays): a first guess per item, to refuse huge counts
    # before reading; read_variable then counts their real size.
    return dataset.dtype.itemsize if not dataset.dtype.hasobject else 64


@blueprint.get("/data")
@blueprint.get("/data/")
def data():
    resolver = _resolver()
    fmt = parse_format(request.args.get("format"))
    dtype = request.args.get("dtype") or "origin"
    if dtype not in ("origin", "safe"):
        raise DataError(f"dtype {dtype!r} is not one of origin, safe", 422)
    flatten = parse_bool_arg(request.args.get("flatten"), fallback=False)
    size_text = request.args.get("size")
    how = request.args.get("reduce", "mean")
    entity, dataset, selection, extra = _dataset_and_selection(resolver)
    tag, not_modified = _not_modified(resolver, extra)
    if not_modified:
        return not_modified
    reader = _hebi()["reader"]
    if fmt == "bin" and not size_text:
        _limit(selection.size * _item_bytes(dataset), f"reading {entity.path}{_shown(selection)}")
        run = reader.single_run(dataset, selection)
        if run is not None and (dtype == "origin" or _safe_dtype(dataset.dtype) == dataset.dtype):
            # The file's own bytes are the answer: no array, no copy (a frame of a frame-chunked stack).
            shape = selection.shape if not flatten else (selection.size,)
            headers = {"Content-Type": "application/octet-stream", "X-Hebi-Shape": ",".join(map(str, shape)),
                       "X-Hebi-Dtype": dataset.dtype.str}
            wrapper = request.environ.get("wsgi.file_wrapper")
            file_run = reader.open_run(entity.file, *run) if wrapper and run[1] >= SENDFILE_BYTES else None
            if file_run is not None:
                response = Response(wrapper(file_run, SEND_PIECE), headers=headers, direct_passthrough=True)
                response.headers["Content-Length"] = str(run[1])
                response.headers["ETag"] = tag
                response.headers["Cache-Control"] = httpcache.CACHE_CONTROL
                return response
            return _send(Encoded(reader.read_run(entity.file, *run), headers), tag)
    if size_text:
        values, bins = _downsampled(entity, dataset, selection, size_text, how)
    else:
        what = f"reading {entity.path}{_shown(selection)}"
        _limit(selection.size * _item_bytes(dataset), what)
        if dataset.dtype.hasobject:
            limit = _hebi()["config"].dataserver.max_request_bytes
            values, bins = reader.read_variable(dataset, selection, limit, what), None
        else:
            values, bins = reader.read(entity.file, dataset, selection), None
    if isinstance(values, (np.ndarray, np.generic)) and dtype == "safe":
        values = convert(values, "safe")
    if flatten and isinstance(values, np.ndarray):
        values = values.reshape(-1)
    encoded = encode(values, fmt)
    if bins is not None:
        encoded.headers["X-Hebi-Bin"] = ",".join(str(b) for b in bins)
        encoded.headers["X-Hebi-Reduce"] = how
    return _send(encoded, tag)


def _safe_dtype(dtype: np.dtype) -> np.dtype:
    return convert(np.empty(0, dtype=dtype), "safe").dtype


def _shown(selection: Selection) -> str:
    text = request.args.get("selection")
    return f" [{text}]" if text else ""


def _downsampled(entity, dataset: h5py.Dataset, selection: Selection, size_text: str, how: str):
    if dataset.dtype.kind not in "biuf":
        raise DataError(f"size= downsamples numbers; {entity.path} holds {dataset.dtype} values", 422)
    if len(selection.shape) not in (1, 2):
        raise DataError(f"size= downsamples a 1D or 2D selection; this one is {len(selection.shape)}D "
                        f"{list(selection.shape)}: fix the other dimensions, e.g. selection=0,:,:")
    size = parse_size(size_text, len(selection.shape))
    reader = _hebi()["reader"]
    row_dim = [i for i, m in enumerate(selection.members) if not isinstance(m, int)][0]
    # The server holds one band of rows at a time plus the result: the band shrinks to fit the limit.
    limit = _hebi()["config"].dataserver.max_request_bytes
    out_cells = math.prod(math.ceil(n / math.ceil(n / s)) for n, s in zip(selection.shape, size))
    threads = _hebi()["config"].dataserver.read_threads
    band_bytes = min(BAND_BYTES, max(0, limit - out_cells * 8)) // threads  # bands run side by side
    rows = band_rows(selection.shape, dataset.dtype, size, band_bytes)
    row_bytes = (selection.shape[1] if len(selection.shape) == 2 else selection.shape[0]) * dataset.dtype.itemsize
    held = threads * rows * row_bytes if len(selection.shape) == 2 else row_bytes
    _limit(held + out_cells * 8, f"downsampling {entity.path}{_shown(selection)}")
    member = selection.members[row_dim]

    def read_rows(start: int, stop: int) -> np.ndarray:
        members = list(selection.members)
        members[row_dim] = slice(member.start + start * member.step, member.start + stop * member.step,
                                 member.step)
        sub = Selection(tuple(members), (stop - start, *selection.shape[1:]))
        return reader.read(entity.file, dataset, sub)

    return downsample(read_rows, selection.shape, dataset.dtype, size, how, band_bytes, _hebi()["views"], threads)


@blueprint.get("/stats")
@blueprint.get("/stats/")
def stats():
    resolver = _resolver()
    bins = parse_bins(request.args.get("bins"))
    entity, dataset, selection, extra = _dataset_and_selection(resolver)
    tag, not_modified = _not_modified(resolver, extra)
    if not_modified:
        return not_modified
    check_numbers(dataset.dtype, entity.path)  # before reading: strings can be big
    _limit(selection.size * _item_bytes(dataset), f"statistics of {entity.path}{_shown(selection)}")
    values = _hebi()["reader"].read(entity.file, dataset, selection)
    if isinstance(values, h5py.Empty):
        values = np.empty((0,), dtype=dataset.dtype)
    return _send(encode_json(array_stats(values, bins)), tag)


@blueprint.get("/default")
@blueprint.get("/default/")
def default_plot():
    resolver = _resolver()
    found = find_default_plot(resolver)
    tag, not_modified = _not_modified(resolver)
    return not_modified or _send(encode_json(found), tag)
