"""A user reaches only their own roots, through every kind of HDF5 link too; bad input, damaged files and
greedy requests get a clear JSON 4xx, never a 500 or an HTML page."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from h5_samples import data_dir, make_dataserver, write_tomo_entry1  # noqa: F401 (fixtures)


@pytest.fixture
def outside(tmp_path):
    """A secret HDF5 file next to the user's roots, not inside them."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    with h5py.File(folder / "secret.h5", "w") as f:
        f["data"] = np.full((4, 4), 7.0)
    return folder / "secret.h5"


def assert_json_error(answer, status: int, *words: str):
    assert answer.status_code == status, (answer.status_code, answer.data[:300])
    assert answer.headers["Content-Type"].startswith("application/json")
    message = answer.json["message"]
    assert answer.json["error"] == message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("ref", ["../elsewhere/secret.h5", "data/../../elsewhere/secret.h5", "/etc/passwd",
                                 "data/%2e%2e/%2e%2e/elsewhere/secret.h5", "secret.h5"])
def test_file_parameter_cannot_leave_the_roots(dataserver, outside, ref):
    answer = dataserver.get(f"/data/data?file={ref}&path=/data")
    assert 400 <= answer.status_code < 500
    assert answer.json["message"]


def test_symlinked_file_pointing_outside_is_refused(dataserver, data_dir, outside):
    os.symlink(outside, data_dir / "innocent.h5")
    assert_json_error(dataserver.get("/data/data?file=data/innocent.h5&path=/data"), 403, "outside")


def test_external_link_out_of_the_roots_is_shown_but_never_followed(dataserver, data_dir, outside):
    with h5py.File(data_dir / "links.h5", "w") as f:
        f["abs"] = h5py.ExternalLink(str(outside), "/data")
        f["rel"] = h5py.ExternalLink(os.path.relpath(outside, data_dir), "/data")
        f["via_soft"] = h5py.SoftLink("/abs")
        f.create_group("g")["deeper"] = h5py.ExternalLink(str(outside), "/")
    for path in ("/abs", "/rel", "/via_soft"):
        assert_json_error(dataserver.get(f"/data/data?file=data/links.h5&path={path}&format=bin"), 403,
                          "outside your folders")
    meta = dataserver.get("/data/meta?file=data/links.h5&path=/abs").json
    assert meta["kind"] == "external_link"  # the link itself is the user's own; its target is not read
    children = dataserver.get("/data/meta?file=data/links.h5&path=/").json["children"]
    assert {c["name"]: c["kind"] for c in children}["abs"] == "external_link"
    assert "shape" not in str(children)
    assert_json_error(dataserver.get("/data/meta?file=data/links.h5&path=/g/deeper/data"), 403)
    assert_json_error(dataserver.get("/data/attr?file=data/links.h5&path=/abs"), 403)


def test_external_link_inside_the_roots_is_followed_even_across_roots(dataserver, roots_dir, data_dir):
    with h5py.File(roots_dir / "output" / "result.h5", "w") as f:
        f["volume"] = np.arange(8.0).reshape(2, 4)
    with h5py.File(data_dir / "master.nxs", "w") as f:
        f["result"] = h5py.ExternalLink("../output/result.h5", "/volume")
    answer = dataserver.get("/data/data?file=data/master.nxs&path=/result")
    assert answer.json == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_virtual_dataset_with_sources_outside_is_refused(dataserver, data_dir, outside):
    layout = h5py.VirtualLayout(shape=(4, 4), dtype="f8")
    layout[:] = h5py.VirtualSource(str(outside), "data", shape=(4, 4))
    with h5py.File(data_dir / "vds.h5", "w") as f:
        f.create_virtual_dataset("v", layout, fillvalue=-1)
    assert_json_error(dataserver.get("/data/data?file=data/vds.h5&path=/v"), 403, "secret.h5", "outside")
    assert_json_error(dataserver.get("/data/stats?file=data/vds.h5&path=/v"), 403)


def test_virtual_dataset_with_sources_inside_is_read(dataserver, data_dir):
    for i in range(2):
        with h5py.File(data_dir / f"part{i}.h5", "w") as f:
            f["d"] = np.full((2, 3), i, dtype="i4")
    layout = h5py.VirtualLayout(shape=(4, 3), dtype="i4")
    for i in range(2):
        layout[2 * i:2 * i + 2] = h5py.VirtualSource(f"part{i}.h5", "d", shape=(2, 3))
    with h5py.File(data_dir / "vds.h5", "w") as f:
        f.create_virtual_dataset("v", layout)
    assert dataserver.get("/data/data?file=data/vds.h5&path=/v").json == [[0] * 3, [0] * 3, [1] * 3, [1] * 3]


def test_dataset_with_external_raw_storage_outside_is_refused(dataserver, data_dir, tmp_path):
    raw = tmp_path / "raw.bin"
    np.arange(16, dtype="<f4").tofile(raw)
    with h5py.File(data_dir / "extstore.h5", "w") as f:
        f.create_dataset("d", shape=(16,), dtype="<f4", external=[(str(raw), 0, 64)])
    assert_json_error(dataserver.get("/data/data?file=data/extstore.h5&path=/d"), 403, "outside")


def test_truncated_and_non_hdf5_files_get_422(dataserver, data_dir):
    write_tomo_entry1(data_dir / "whole.nxs", frames=20, rows=64, cols=64)
    blob = (data_dir / "whole.nxs").read_bytes()
    (data_dir / "cut.nxs").write_bytes(blob[: len(blob) // 2])
    (data_dir / "notes.txt").write_text("not HDF5 at all")
    assert_json_error(dataserver.get("/data/meta?file=data/cut.nxs&path=/"), 422, "cut.nxs", "truncated")
    assert_json_error(dataserver.get("/data/meta?file=data/notes.txt"), 422, "not a readable HDF5 file")


def test_damaged_chunks_give_422_not_500(dataserver, data_dir):
    path = data_dir / "damaged.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("z", data=np.arange(4096, dtype="f4").reshape(64, 64), chunks=(16, 64),
                         compression="gzip")
    with h5py.File(path, "r") as f:
        info = f["z"].id.get_chunk_info(1)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)  # the compressed stream of one chunk is garbage now
    assert_json_error(dataserver.get("/data/data?file=data/damaged.h5&path=/z"), 422, "damaged.h5")


def test_a_huge_selection_gets_413_with_the_size_it_needs(make_dataserver, data_dir):
    client, _ = make_dataserver(max_request_bytes=100_000)
    with h5py.File(data_dir / "big.h5", "w") as f:
        f.create_dataset("stack", shape=(100, 1000, 1000), dtype="f4", chunks=(1, 1000, 1000))
    answer = client.get("/data/data?file=data/big.h5&path=/stack&format=bin")
    assert_json_error(answer, 413, "selection=", "size=")
    assert answer.json["needed_bytes"] == 100 * 1000 * 1000 * 4 and answer.json["limit_bytes"] == 100_000
    stats = client.get("/data/stats?file=data/big.h5&path=/stack&selection=0")
    assert stats.status_code == 413 and stats.json["needed_bytes"] == 4_000_000
    small = client.get("/data/data?file=data/big.h5&path=/stack&selection=0,0:10,0:10&format=bin")
    assert small.status_code == 200 and len(small.data) == 400


@pytest.mark.parametrize("query, status, word", [
    ("/data/data?path=/entry1", 400, "'file' parameter is required"),
    ("/data/data?file=data/s.nxs&path=/entry1", 400, "not a dataset"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&selection=a", 400, "not an integer"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&selection=0,0,0,0", 400, "4 members"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&selection=99", 400, "out of range"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&selection=0:5:-1", 400, "positive"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&dtype=weird", 422, "dtype"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&selection=0&size=0x5", 400, "size"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&size=5", 400, "1D or 2D"),
    ("/data/data?file=data/s.nxs&path=/entry1/tomo_entry/data/data&selection=0&size=9&reduce=median", 400,
     "reduce"),
    ("/data/meta?file=data/s.nxs&path=/entry1/nothing", 404, "not a valid path"),
    ("/data/meta?file=data/missing.nxs", 404, "File not found"),
    ("/data/meta?file=data", 400, "folder"),
    ("/data/meta?file=nowhere/s.nxs", 404, "unknown root"),
    ("/data/stats?file=data/s.nxs&path=/entry1/tomo_entry/definition", 422, "numbers"),
    ("/data/stats?file=data/s.nxs&path=/entry1/tomo_entry/data/data&bins=x", 400, "bins"),
    ("/data/paths?file=data/s.nxs&path=/entry1/tomo_entry/data/data", 400, "not a group"),
])
def test_bad_requests_get_clear_json_4xx(dataserver, data_dir, query, status, word):
    write_tomo_entry1(data_dir / "s.nxs")
    assert_json_error(dataserver.get(query), status, word)


def test_requests_without_the_gateway_signature_are_refused(dataserver_app, data_dir):
    write_tomo_entry1(data_dir / "s.nxs")
    answer = dataserver_app.test_client().get("/data/meta?file=data/s.nxs")
    assert answer.status_code == 401 and answer.json["error"]


def test_an_external_link_to_a_damaged_file_does_not_hide_its_siblings(dataserver, data_dir):
    (data_dir / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # a signature and nothing else
    with h5py.File(data_dir / "master.nxs", "w") as f:
        f["broken"] = h5py.ExternalLink("broken.h5", "/data")
        f["fine"] = np.arange(3)
    children = dataserver.get("/data/meta?file=data/master.nxs&path=/").json["children"]
    assert {c["name"]: c["kind"] for c in children} == {"broken": "external_link", "fine": "dataset"}
    assert_json_error(dataserver.get("/data/data?file=data/master.nxs&path=/broken"), 422, "broken.h5")


# -- another user's folder, reached through the sources of a virtual dataset --------------------------

@pytest.fixture
def bob(tmp_path):
    """Another user's folder beside alice's roots, holding a multi-file series of his."""
    folder = tmp_path / "bob"
    folder.mkdir()
    for i in range(2):
        with h5py.File(folder / f"series_{i}.h5", "w") as f:
            f["data"] = np.full((2, 4), 1000 + i, dtype="f8")
    return folder


def write_printf_vds(path, source_pattern: str, dataset: str = "data") -> None:
    """A VDS over a file series named printf-style (``series_%b.h5``, %b the block number), as detectors
    write them: the virtual dataset grows by one (2, 4) block per source file HDF5 finds."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    virtual = h5py.h5s.create_simple((0, 4), (h5py.h5s.UNLIMITED, 4))
    virtual.select_hyperslab((0, 0), (h5py.h5s.UNLIMITED, 1), (2, 1), (2, 4))
    dcpl.set_virtual(virtual, source_pattern.encode(), dataset.encode(), h5py.h5s.create_simple((2, 4)))
    dcpl.set_fill_value(np.array(-1.0))
    with h5py.File(path, "w") as f:
        h5py.h5d.create(f.id, b"v", h5py.h5t.NATIVE_DOUBLE, virtual, dcpl=dcpl)


def assert_nothing_of_bob(answer):
    assert b"1000" not in answer.data and b"1001" not in answer.data


def test_printf_style_vds_sources_in_another_users_folder_are_refused(dataserver, data_dir, bob):
    relative = os.path.relpath(bob, data_dir)
    write_printf_vds(data_dir / "rel.h5", f"{relative}/series_%b.h5")
    write_printf_vds(data_dir / "abs.h5", f"{bob}/series_%b.h5")
    for name in ("rel.h5", "abs.h5"):
        for query in (f"/data/data?file=data/{name}&path=/v", f"/data/stats?file=data/{name}&path=/v",
                      f"/data/data?file=data/{name}&path=/v&format=bin", f"/data/data?file=data/{name}&path=/v&size=2"):
            answer = dataserver.get(query)
            assert_json_error(answer, 403, "series_%b.h5", "outside")
            assert_nothing_of_bob(answer)
    # One symlink in alice's own series that leads to bob's file is enough to refuse the whole series.
    with h5py.File(data_dir / "series_0.h5", "w") as f:
        f["data"] = np.zeros((2, 4))
    os.symlink(bob / "series_1.h5", data_dir / "series_1.h5")
    write_printf_vds(data_dir / "own.h5", "series_%b.h5")
    answer = dataserver.get("/data/data?file=data/own.h5&path=/v")
    assert_json_error(answer, 403, "series_1.h5", "outside")
    assert_nothing_of_bob(answer)


def test_printf_style_vds_sources_inside_the_roots_are_read(dataserver, data_dir):
    (data_dir / "scan").mkdir()
    for i in range(3):
        with h5py.File(data_dir / "scan" / f"frames_{i}%.h5", "w") as f:
            f["data"] = np.full((2, 4), i, dtype="f8")
    write_printf_vds(data_dir / "scan.h5", "scan/frames_%b%%.h5")  # %% is a literal %
    answer = dataserver.get("/data/data?file=data/scan.h5&path=/v")
    assert answer.status_code == 200, answer.json
    assert answer.json == [[i] * 4 for i in (0, 0, 1, 1, 2, 2)]


def test_vds_source_dataset_that_is_a_link_out_of_its_file_is_refused(dataserver, data_dir, bob):
    # alice's own part.h5 looks harmless, but the dataset the VDS names in it is an external link to bob's
    # file, or a virtual dataset over it; HDF5 would follow either while reading the VDS.
    with h5py.File(data_dir / "part.h5", "w") as f:
        f["data"] = h5py.ExternalLink(str(bob / "series_0.h5"), "/data")
        f["via_soft"] = h5py.SoftLink("/data")
        layout = h5py.VirtualLayout(shape=(2, 4), dtype="f8")
        layout[:] = h5py.VirtualSource(str(bob / "series_1.h5"), "data", shape=(2, 4))
        f.create_virtual_dataset("nested", layout)
    for source in ("data", "via_soft", "nested"):
        layout = h5py.VirtualLayout(shape=(2, 4), dtype="f8")
        layout[:] = h5py.VirtualSource("part.h5", source, shape=(2, 4))
        with h5py.File(data_dir / f"vds_{source}.h5", "w") as f:
            f.create_virtual_dataset("v", layout, fillvalue=-1)
        answer = dataserver.get(f"/data/data?file=data/vds_{source}.h5&path=/v")
        assert_json_error(answer, 403, "outside")
        assert_nothing_of_bob(answer)
    # The same trick inside the VDS's own file (source file ".").
    with h5py.File(data_dir / "self.h5", "w") as f:
        f["hidden"] = h5py.ExternalLink(str(bob / "series_0.h5"), "/data")
        layout = h5py.VirtualLayout(shape=(2, 4), dtype="f8")
        layout[:] = h5py.VirtualSource(".", "hidden", shape=(2, 4))
        f.create_virtual_dataset("v", layout, fillvalue=-1)
    answer = dataserver.get("/data/data?file=data/self.h5&path=/v")
    assert_json_error(answer, 403, "outside")
    assert_nothing_of_bob(answer)


def test_a_vds_over_many_files_is_checked_without_reopening_them(make_dataserver, data_dir, bob):
    client, app = make_dataserver(open_files=4)
    (data_dir / "series").mkdir()
    for i in range(40):
        with h5py.File(data_dir / "series" / f"frames_{i}.h5", "w") as f:
            f["data"] = np.full((2, 4), i, dtype="f8")
    write_printf_vds(data_dir / "series.h5", "series/frames_%b.h5")
    query = "/data/data?file=data/series.h5&path=/v&selection=::2,0"
    assert client.get(query).json == list(range(40))
    files = app.extensions["hebi"]["files"]
    opened = files.opened
    assert client.get(query).json == list(range(40))
    assert files.opened - opened <= 1  # at most the VDS's own file, pushed out by its sources
    # A source file that changes is walked again: now its dataset is an external link to bob's file.
    (data_dir / "series" / "frames_7.h5").unlink()
    with h5py.File(data_dir / "series" / "frames_7.h5", "w") as f:
        f["data"] = h5py.ExternalLink(str(bob / "series_0.h5"), "/data")
    answer = client.get(query)
    assert_json_error(answer, 403, "outside")
    assert_nothing_of_bob(answer)


def test_h5grove_argument_errors_are_json_422(dataserver, data_dir):
    with h5py.File(data_dir / "names.h5", "w") as f:
        f["names"] = np.array([b"a", b"b"])
    assert_json_error(dataserver.get("/data/data?file=data/names.h5&path=/names&dtype=safe"), 422, "non-numeric")
