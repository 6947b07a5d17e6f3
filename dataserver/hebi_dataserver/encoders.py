"""How values leave the server: json, bin, npy, csv, tiff (h5grove's formats) with hebi's headers.

JSON goes through h5grove's orjson encoder (NaN and Inf become null, bytes are decoded, complex numbers
become [re, im]), csv and tiff through h5grove's encoders. ``bin`` and ``npy`` are written here so that a
16 MiB slice is sent from the array's own memory, not copied into a bytes object first, and so that
binary answers say what they hold: ``X-Hebi-Shape`` (comma-separated, empty for a scalar) and
``X-Hebi-Dtype`` (NumPy's dtype string, e.g. ``<f4``). h5grove sends neither.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import h5py
import numpy as np
import orjson
from h5grove.encoders import csv_encode, orjson_default, tiff_encode
from h5grove.utils import is_numeric_data

from .errors import DataError

FORMATS = ("json", "bin", "npy", "csv", "tiff")


@dataclass
class Encoded:
    body: list  # byte chunks (bytes or memoryviews) sent one after the other
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return sum(len(part) if isinstance(part, bytes) else part.nbytes for part in self.body)


def parse_format(text: str | None) -> str:
    value = (text or "json").lower()
    if value not in FORMATS:
        raise DataError(f"format {text!r} is not one of {', '.join(FORMATS)}", 422)
    return value


def _default(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")  # a mis-encoded string must not fail the whole answer
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        return [value.real, value.imag]
    return orjson_default(value)


def encode_json(value) -> Encoded:
    try:
        body = orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as err:
        raise DataError(f"these values cannot be written as JSON ({err})", 422) from None
    return Encoded([body], {"Content-Type": "application/json"})


def binary_headers(array: np.ndarray) -> dict[str, str]:
    return {"X-Hebi-Shape": ",".join(str(n) for n in array.shape), "X-Hebi-Dtype": array.dtype.str}


def encode(value, fmt: str) -> Encoded:
    if fmt == "json":
        return encode_json(value)
    if isinstance(value, h5py.Empty):
        value = np.empty((0,), dtype=value.dtype)
    array = np.asarray(value)
    if fmt == "bin":
        if array.dtype.hasobject:
            raise DataError("format=bin needs fixed-size values; these are variable-length "
                            "(strings or arrays): ask for format=json", 422)
        array = np.ascontiguousarray(array)
        return Encoded([memoryview(array.reshape(-1).view(np.uint8))],
                       {"Content-Type": "application/octet-stream", **binary_headers(array)})
    if not is_numeric_data(array):
        raise DataError(f"format={fmt} needs numbers; these values are {array.dtype}: ask for format=json", 422)
    if fmt == "npy":
        array = np.ascontiguousarray(array)
        header = _npy_header(array)
        return Encoded([header, memoryview(array.reshape(-1).view(np.uint8))],
                       {"Content-Type": "application/octet-stream",
                        "Content-Disposition": 'attachment; filename="data.npy"', **binary_headers(array)})
    if array.ndim == 0:
        raise DataError(f"format={fmt} needs an array, not a single value", 422)
    if fmt == "csv":
        if array.ndim > 2:
            raise DataError(f"format=csv holds 1D or 2D values; this selection is {array.ndim}D: "
                            "select a slice, e.g. selection=0,:,:", 422)
        return Encoded([csv_encode(array)], {"Content-Type": "text/csv",
                                             "Content-Disposition": 'attachment; filename="data.csv"'})
    return Encoded([tiff_encode(array)], {"Content-Type": "image/tiff",
                                          "Content-Disposition": 'attachment; filename="data.tiff"'})


def _npy_header(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
    return buffer.getvalue()
