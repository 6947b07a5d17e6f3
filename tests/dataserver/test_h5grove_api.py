"""h5web's H5GroveProvider must work unchanged: the dataserver answers h5grove 4.0's endpoints the same
way h5grove does (its own content layer is the reference here), in every format the viewer asks for."""
from __future__ import annotations

import io

import h5py
import numpy as np
import orjson
import pytest
import tifffile
from h5_samples import data_dir, write_tomo_entry1  # noqa: F401 (fixture)
from h5grove.content import create_content


@pytest.fixture
def mixed_file(data_dir):
    """Compound, string, big-endian, float16, enum-like bool, scalar, empty, links: one file of each kind."""
    path = data_dir / "mixed.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "mixed bag"
        f.attrs["numbers"] = np.arange(3)
        grp = f.create_group("entry1")
        grp.attrs["NX_class"] = "NXentry"
        table = np.array([(1, 2.5, b"alpha"), (2, -1.0, b"beta")],
                         dtype=[("id", "<i4"), ("value", "<f8"), ("label", "S8")])
        grp["table"] = table
        grp.create_dataset("names", data=["Ångström", "sample b"], dtype=h5py.string_dtype())
        grp["big_endian"] = np.arange(12, dtype=">i4").reshape(3, 4)
        grp["half"] = np.linspace(0, 1, 5, dtype=np.float16)
        grp["flags"] = np.array([True, False, True])
        grp["scalar"] = 42.5
        grp["empty"] = h5py.Empty("f4")
        grp["image"] = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
        grp["soft"] = h5py.SoftLink("/entry1/image")
        grp["dangling"] = h5py.SoftLink("/nowhere")
        grp["ext_missing"] = h5py.ExternalLink("absent.h5", "/data")
    return path


PATHS = ["/", "/entry1", "/entry1/table", "/entry1/names", "/entry1/big_endian", "/entry1/half", "/entry1/flags",
         "/entry1/scalar", "/entry1/empty", "/entry1/image", "/entry1/soft", "/entry1/dangling", "/entry1/ext_missing"]


@pytest.mark.parametrize("path", PATHS)
def test_meta_is_exactly_what_h5grove_answers(dataserver, mixed_file, path):
    answer = dataserver.get(f"/data/meta?file=data/mixed.h5&path={path}")
    assert answer.status_code == 200, answer.json
    with h5py.File(mixed_file, "r", locking=False) as f:
        expected = orjson.loads(orjson.dumps(create_content(f, path).metadata(),
                                             option=orjson.OPT_SERIALIZE_NUMPY))
    assert answer.json == expected


def test_attr_returns_values_and_honours_attr_keys(dataserver, mixed_file):
    everything = dataserver.get("/data/attr?file=data/mixed.h5&path=/").json
    assert everything == {"title": "mixed bag", "numbers": [0, 1, 2]}
    only = dataserver.get("/data/attr?file=data/mixed.h5&path=/&attr_keys=title").json
    assert only == {"title": "mixed bag"}
    missing = dataserver.get("/data/attr?file=data/mixed.h5&path=/&attr_keys=nope")
    assert missing.status_code == 404 and "nope" in missing.json["message"]


def test_binary_slice_as_h5web_requests_it(dataserver, data_dir):
    values = write_tomo_entry1(data_dir / "scan.nxs")
    answer = dataserver.get("/data/data?file=data/scan.nxs&path=/entry1/tomo_entry/data/data"
                            "&selection=2,:,:&format=bin&dtype=safe")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["X-Hebi-Shape"] == "40,50" and answer.headers["X-Hebi-Dtype"] == "<f4"
    assert int(answer.headers["Content-Length"]) == 40 * 50 * 4
    np.testing.assert_array_equal(np.frombuffer(answer.data, "<f4").reshape(40, 50), values[2])


def test_dtype_safe_turns_big_endian_and_float16_into_typed_array_types(dataserver, mixed_file):
    big = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/big_endian&format=bin&dtype=safe")
    assert big.headers["X-Hebi-Dtype"] == "<i4"
    np.testing.assert_array_equal(np.frombuffer(big.data, "<i4").reshape(3, 4), np.arange(12).reshape(3, 4))
    origin = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/big_endian&format=bin")
    assert origin.headers["X-Hebi-Dtype"] == ">i4"
    half = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/half&format=bin&dtype=safe")
    assert half.headers["X-Hebi-Dtype"] == "<f4"
    np.testing.assert_allclose(np.frombuffer(half.data, "<f4"), np.linspace(0, 1, 5), atol=1e-3)


def test_compound_and_string_datasets_come_as_json_as_h5web_asks(dataserver, mixed_file):
    table = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/table&flatten=true")
    assert table.json == [[1, 2.5, "alpha"], [2, -1.0, "beta"]]
    names = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/names&flatten=true")
    assert names.json == ["Ångström", "sample b"]
    scalar = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/scalar")
    assert scalar.json == 42.5
    empty = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/empty")
    assert empty.status_code == 200 and empty.json is None
    strings_as_bin = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/names&format=bin")
    assert strings_as_bin.status_code == 422 and "format=json" in strings_as_bin.json["message"]


def test_npy_csv_tiff_exports(dataserver, mixed_file):
    base = "/data/data?file=data/mixed.h5&path=/entry1/image"
    npy = dataserver.get(base + "&format=npy&selection=0:5,0:7")
    assert 'filename="data.npy"' in npy.headers["Content-Disposition"]
    np.testing.assert_array_equal(np.load(io.BytesIO(npy.data)), np.arange(600, dtype=np.uint16).reshape(20, 30)[:5, :7])
    csv = dataserver.get(base + "&format=csv&selection=0:2,0:3")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert np.loadtxt(io.StringIO(csv.data.decode()), delimiter=",").tolist() == [[0, 1, 2], [30, 31, 32]]
    tiff = dataserver.get(base + "&format=tiff")
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(tiff.data)), np.arange(600).reshape(20, 30))
    bad = dataserver.get(base + "&format=png")
    assert bad.status_code == 422 and "png" in bad.json["message"]


def test_flatten_and_strided_selection(dataserver, mixed_file):
    flat = dataserver.get("/data/data?file=data/mixed.h5&path=/entry1/image&selection=0:4:2,::10&flatten=true")
    assert flat.json == [0, 10, 20, 60, 70, 80]


def test_resolve_links_modes(dataserver, mixed_file):
    soft = dataserver.get("/data/meta?file=data/mixed.h5&path=/entry1/soft").json
    assert soft["kind"] == "dataset" and soft["shape"] == [20, 30]
    unresolved = dataserver.get("/data/meta?file=data/mixed.h5&path=/entry1/soft&resolve_links=none").json
    assert unresolved == {"kind": "soft_link", "name": "soft", "target_path": "/entry1/image"}
    dangling = dataserver.get("/data/meta?file=data/mixed.h5&path=/entry1/ext_missing").json
    assert dangling["kind"] == "external_link" and dangling["target_file"] == "absent.h5"
    strict = dataserver.get("/data/meta?file=data/mixed.h5&path=/entry1/dangling&resolve_links=all")
    assert strict.status_code == 404 and "Cannot resolve" in strict.json["message"]
    bad = dataserver.get("/data/meta?file=data/mixed.h5&path=/&resolve_links=maybe")
    assert bad.status_code == 422


def test_paths_lists_every_path_under_a_group(dataserver, mixed_file):
    answer = dataserver.get("/data/paths?file=data/mixed.h5&path=/entry1").json
    assert answer[0] == "/entry1"
    assert set(answer) == {"/entry1", *(p for p in PATHS if p.startswith("/entry1/"))}


def test_stats_fields_of_h5grove_ignore_nan_and_add_a_histogram(dataserver, data_dir):
    values = np.array([[np.nan, -2.0, 0.0], [1.0, np.inf, 3.0]], dtype=np.float32)
    with h5py.File(data_dir / "nan.h5", "w") as f:
        f["v"] = values
    stats = dataserver.get("/data/stats?file=data/nan.h5&path=/v&bins=4").json
    assert stats["min"] == -2.0 and stats["max"] == 3.0
    assert stats["positive_min"] == 0.0 and stats["strict_positive_min"] == 1.0
    assert stats["mean"] == pytest.approx(0.5) and stats["std"] == pytest.approx(np.std([-2, 0, 1, 3]))
    assert (stats["count"], stats["nan_count"], stats["inf_count"]) == (4, 1, 1)
    assert stats["histogram"]["counts"] == [1, 1, 1, 1] and stats["histogram"]["edges"][0] == -2.0
    row = dataserver.get("/data/stats?file=data/nan.h5&path=/v&selection=0").json
    assert row["min"] == -2.0 and row["max"] == 0.0 and row["nan_count"] == 1
    json_nan = dataserver.get("/data/data?file=data/nan.h5&path=/v").json
    assert json_nan == [[None, -2.0, 0.0], [1.0, None, 3.0]]


STATS_CASES = {
    "minus zero": np.array([-0.0, -1.0], "f4"),
    "zeros only": np.zeros(5, "u2"),
    "dead pixels": np.array([0, 0, 7, 3, 65535], "u2"),
    "negatives only": np.array([-1.5, -2.0], "f8"),
    "int8 extremes": np.array([-128, 0, 5, 127], "i1"),
    "int8 all negative": np.array([-128, -1], "i1"),
    "subnormals": np.array([1e-45, -1e-45, 0.0], "f4"),
    "half floats": np.array([3.0, -0.0, 0.0, 2.0, np.nan], "f2"),
    "one value": np.full(7, 4.25, "f4"),
    "reconstruction": np.random.default_rng(3).normal(0.01, 0.02, 300_000).astype("f4"),
}


@pytest.mark.parametrize("name", STATS_CASES)
def test_statistics_agree_with_numpy_for_awkward_values(dataserver, data_dir, name):
    """The colour scale's range, its log scale's floor (strict_positive_min) and the histogram, as
    NumPy computes them over the finite values, whatever the type and sign of the data."""
    values = STATS_CASES[name]
    with h5py.File(data_dir / "awkward.h5", "w") as f:
        f["v"] = values
    stats = dataserver.get("/data/stats?file=data/awkward.h5&path=/v&bins=16").json
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values

    def least(found):
        return None if found.size == 0 else float(found.min())
    assert stats["min"] == float(finite.min()) and stats["max"] == float(finite.max())
    assert stats["positive_min"] == least(finite[finite >= 0])
    assert stats["strict_positive_min"] == least(finite[finite > 0])
    assert stats["mean"] == pytest.approx(float(finite.astype("f8").mean()), rel=1e-9, abs=1e-12)
    assert stats["std"] == pytest.approx(float(finite.astype("f8").std()), rel=1e-9, abs=1e-12)
    counts, edges = np.histogram(finite.astype("f8"), bins=16)
    assert stats["histogram"]["edges"] == pytest.approx(edges.tolist())
    assert sum(stats["histogram"]["counts"]) == finite.size
    # Binned by one multiply: a value within rounding of an inner edge may sit in the bin beside.
    assert np.abs(np.array(stats["histogram"]["counts"]) - counts).sum() <= 2 * max(1, finite.size // 10_000)


@pytest.mark.parametrize("values", [[-1.7976931348623157e308, 0.0, 1.7976931348623157e308], [1e308, 1e308, 1e308]],
                         ids=["float64's whole range", "one huge value"])
def test_values_at_float64s_limits_get_statistics_not_a_server_error(dataserver, data_dir, values):
    with h5py.File(data_dir / "huge.h5", "w") as f:
        f["v"] = np.array(values)
    answer = dataserver.get("/data/stats?file=data/huge.h5&path=/v&bins=4")
    assert answer.status_code == 200, answer.json
    stats = answer.json
    assert (stats["min"], stats["max"]) == (min(values), max(values))
    assert sum(stats["histogram"]["counts"]) == len(values)
    edges = stats["histogram"]["edges"]
    assert all(e is not None for e in edges) and edges == sorted(edges)
    assert edges[0] <= min(values) and max(values) <= edges[-1]
