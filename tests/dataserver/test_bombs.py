"""Small files that would make the dataserver expand far more than they hold: each is refused, or
answered within bounds, by design. (What the server's memory does under them is measured by bench/bombs/.)"""
from __future__ import annotations

import shutil
import tracemalloc
import zlib

import h5py
import numpy as np
import pytest
from h5_samples import data_dir, make_dataserver  # noqa: F401 (fixtures)
from test_safety import assert_json_error

GIB = 1 << 30
SIDE = 1 << 14  # a (SIDE, SIDE) float32 chunk is 1 GiB


@pytest.fixture(scope="module")
def zero_chunk_file(tmp_path_factory):
    """A 1 MB file holding one gzip-compressed 1 GiB chunk of zeros, written without ever holding 1 GiB."""
    path = tmp_path_factory.mktemp("bombs") / "zeros.h5"
    squeeze = zlib.compressobj(9)
    zeros = bytes(1 << 24)
    stream = b"".join(squeeze.compress(zeros) for _ in range(GIB // len(zeros))) + squeeze.flush()
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("zeros", shape=(SIDE, SIDE), dtype="f4", chunks=(SIDE, SIDE), compression="gzip")
        dataset.id.write_direct_chunk((0, 0), stream)
        f.create_dataset("small", data=np.arange(64, dtype="f4").reshape(8, 8), chunks=(4, 4), compression="gzip")
        # Unfiltered chunks are read in part, never whole: a huge one is harmless.
        f.create_dataset("plain", shape=(SIDE, SIDE), dtype="f4", chunks=(SIDE, SIDE))
    return path


def test_a_value_from_a_huge_compressed_chunk_is_refused_before_decompressing(dataserver, data_dir,
                                                                              zero_chunk_file):
    shutil.copy(zero_chunk_file, data_dir / "zeros.h5")
    layout = h5py.VirtualLayout(shape=(4, 4), dtype="f4")
    layout[:] = h5py.VirtualSource("zeros.h5", "zeros", shape=(SIDE, SIDE))[:4, :4]
    with h5py.File(data_dir / "vds.h5", "w") as f:
        f.create_virtual_dataset("v", layout)
    for query in ("/data/data?file=data/zeros.h5&path=/zeros&selection=0,0",
                  "/data/data?file=data/zeros.h5&path=/zeros&selection=0,0:10&format=bin",
                  "/data/stats?file=data/zeros.h5&path=/zeros&selection=0,0:100",
                  "/data/data?file=data/zeros.h5&path=/zeros&selection=0:100,0:100&size=10",
                  "/data/data?file=data/vds.h5&path=/v"):
        answer = dataserver.get(query)
        assert_json_error(answer, 413, "/zeros", "1.0 GiB", "64.0 MiB")
        assert answer.json["chunk_bytes"] == GIB and answer.json["limit_bytes"] == 64 << 20
    meta = dataserver.get("/data/meta?file=data/zeros.h5&path=/zeros").json
    assert meta["chunks"] == [SIDE, SIDE]  # describing it is fine: nothing is decompressed
    assert dataserver.get("/data/data?file=data/zeros.h5&path=/small&selection=1,1").json == 9
    assert dataserver.get("/data/data?file=data/zeros.h5&path=/plain&selection=5,0:3").json == [0, 0, 0]


def test_the_chunk_bound_comes_from_configuration(make_dataserver, data_dir):
    client, _ = make_dataserver(max_chunk_bytes=1000)
    with h5py.File(data_dir / "c.h5", "w") as f:
        f.create_dataset("d", data=np.zeros((64, 64), "f8"), chunks=(16, 16), compression="gzip")
    assert_json_error(client.get("/data/data?file=data/c.h5&path=/d&selection=0,0"), 413, "2.0 KiB", "1000 bytes")


def test_a_group_with_100000_links_lists_its_first_children_and_says_so(dataserver, data_dir):
    with h5py.File(data_dir / "many.h5", "w") as f:
        f["target"] = np.arange(3)
        group = f.create_group("links")
        group.attrs["NX_class"] = "NXentry"  # so that the NeXus default-plot search looks into it
        for i in range(100_000):
            group[f"l{i:06d}"] = h5py.SoftLink("/target")
        group["z_dataset"] = np.arange(2)
    meta = dataserver.get("/data/meta?file=data/many.h5&path=/links")
    assert meta.status_code == 200
    document = meta.json
    assert document["kind"] == "group" and document["truncated"] is True and len(document["attributes"]) == 1
    assert document["children_count"] == 100_001
    children = document["children"]
    assert len(children) == 10_000
    assert children[0]["name"] == "l000000" and children[0]["kind"] == "dataset"  # soft links still resolved
    assert children[0]["shape"] == [3]
    small = dataserver.get("/data/meta?file=data/many.h5&path=/").json
    assert "truncated" not in small and {c["name"] for c in small["children"]} == {"target", "links"}
    # The entries beyond the first ones are still reachable by path.
    assert dataserver.get("/data/meta?file=data/many.h5&path=/links/z_dataset").json["shape"] == [2]
    # The NeXus default-plot search looks at as many children as /meta lists.
    assert dataserver.get("/data/default?file=data/many.h5").json["found"] is False


def test_statistics_hold_little_more_than_the_selection(dataserver, data_dir):
    values = np.random.default_rng(0).normal(size=(1000, 1000)).astype("f4")
    values[0, :10] = np.nan
    values[1, :5] = np.inf
    with h5py.File(data_dir / "s.h5", "w") as f:
        f["d"] = values
    tracemalloc.start()
    try:
        answer = dataserver.get("/data/stats?file=data/s.h5&path=/d&bins=16")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 200, answer.json
    stats = answer.json
    finite = values[np.isfinite(values)]
    assert stats["count"] == finite.size and stats["nan_count"] == 10 and stats["inf_count"] == 5
    assert stats["min"] == pytest.approx(float(finite.min())) and stats["max"] == pytest.approx(float(finite.max()))
    assert stats["mean"] == pytest.approx(float(finite.astype("f8").mean()), rel=1e-9, abs=1e-12)
    assert stats["std"] == pytest.approx(float(finite.astype("f8").std()), rel=1e-9)
    assert stats["positive_min"] == pytest.approx(float(finite[finite >= 0].min()))
    assert sum(stats["histogram"]["counts"]) == finite.size
    assert peak < 2 * values.nbytes, f"statistics of {values.nbytes} bytes held {peak} bytes"


def test_variable_length_strings_count_their_real_size(make_dataserver, data_dir):
    client, _ = make_dataserver(max_request_bytes=1_000_000)
    with h5py.File(data_dir / "text.h5", "w", libver="latest") as f:
        f.create_dataset("notes", data=["x" * 100_000] * 100, dtype=h5py.string_dtype())
        f.create_dataset("short", data=["a", "bc"], dtype=h5py.string_dtype())
        f["d"] = np.zeros(3)
        f["d"].attrs["huge"] = np.zeros(2_000_000 // 8)
        f["d"].attrs["text"] = ["y" * 100_000] * 20
        f["d"].attrs["units"] = "mm"
    answer = client.get("/data/data?file=data/text.h5&path=/notes")
    assert_json_error(answer, 413, "/notes")
    assert len(answer.data) < 10_000
    assert client.get("/data/data?file=data/text.h5&path=/short").json == ["a", "bc"]
    for key in ("huge", "text"):
        assert_json_error(client.get(f"/data/attr?file=data/text.h5&path=/d&attr_keys={key}"), 413, key)
    assert_json_error(client.get("/data/attr?file=data/text.h5&path=/d"), 413)
    assert client.get("/data/attr?file=data/text.h5&path=/d&attr_keys=units").json == {"units": "mm"}
    meta = client.get("/data/meta?file=data/text.h5&path=/d").json  # attribute shapes and types only
    assert {a["name"]: a["shape"] for a in meta["attributes"]} == {"huge": [250_000], "text": [20], "units": []}


@pytest.mark.parametrize("track_order", [False, True])
def test_children_are_listed_in_h5pys_order(dataserver, data_dir, track_order):
    names = [f"n{(i * 7919) % 40}" for i in range(40)]
    with h5py.File(data_dir / "order.h5", "w", track_order=track_order) as f:
        group = f.create_group("g", track_order=track_order)
        for name in names:
            group[name] = np.arange(1)
    with h5py.File(data_dir / "order.h5", "r") as f:
        expected = list(f["g"])
    children = dataserver.get("/data/meta?file=data/order.h5&path=/g").json["children"]
    assert [c["name"] for c in children] == expected


def test_a_small_selection_across_many_compressed_chunks_is_refused(make_dataserver, data_dir):
    # One column of a row-chunked image is 1000 values, but HDF5 decompresses every chunk it crosses.
    client, _ = make_dataserver(max_decompressed_bytes=1_000_000)
    with h5py.File(data_dir / "rows.h5", "w") as f:
        f.create_dataset("d", data=np.ones((1000, 1000), "f4"), chunks=(10, 1000), compression="gzip")
    answer = client.get("/data/data?file=data/rows.h5&path=/d&selection=:,0")
    assert_json_error(answer, 413, "/d", "100 compressed chunks", "3.8 MiB")
    assert answer.json["needed_bytes"] == 100 * 40_000 and answer.json["limit_bytes"] == 1_000_000
    assert client.get("/data/stats?file=data/rows.h5&path=/d&selection=:,0").status_code == 413
    assert client.get("/data/data?file=data/rows.h5&path=/d&selection=::100,0").json == [1.0] * 10
    assert client.get("/data/data?file=data/rows.h5&path=/d&selection=5,:&format=bin").status_code == 200


def test_one_meta_describes_a_bounded_number_of_attributes_and_children(make_dataserver, data_dir):
    client, _ = make_dataserver(max_children=100)  # one answer describes at most 4 x 100 entries
    with h5py.File(data_dir / "attrs.h5", "w", libver="latest") as f:
        dataset = f.create_dataset("d", data=np.zeros(2))
        for i in range(1000):
            dataset.attrs[f"a{i:04d}"] = i
        group = f.create_group("g")
        for i in range(300):
            child = group.create_group(f"c{i:03d}")
            for j in range(5):
                child.attrs[f"x{j}"] = j
    meta = client.get("/data/meta?file=data/attrs.h5&path=/d").json
    assert [a["name"] for a in meta["attributes"]] == [f"a{i:04d}" for i in range(100)]
    assert meta["attributes_truncated"] is True and meta["shape"] == [2]
    meta = client.get("/data/meta?file=data/attrs.h5&path=/g").json
    assert meta["truncated"] is True and meta["children_count"] == 300
    assert 0 < len(meta["children"]) < 100  # each child costs itself and its five attributes
    assert all(len(child["attributes"]) == 5 for child in meta["children"])


def test_many_short_strings_are_read_whole_in_blocks(dataserver, data_dir):
    names = [f"frame {i}" for i in range(5000)]
    with h5py.File(data_dir / "names.h5", "w") as f:
        f.create_dataset("names", data=np.array(names, dtype=object).reshape(50, 100), dtype=h5py.string_dtype())
    assert dataserver.get("/data/data?file=data/names.h5&path=/names").json == np.reshape(names, (50, 100)).tolist()
    assert dataserver.get("/data/data?file=data/names.h5&path=/names&selection=3:40:3,7").json == \
        [names[r * 100 + 7] for r in range(3, 40, 3)]
