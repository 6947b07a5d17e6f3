"""What a viewer gets on top of h5grove: views binned on the server (mean keeps the picture, max keeps
thin features), ETags and 304s, files kept open, and fast chunk reads that return exactly what HDF5 does."""
from __future__ import annotations

import itertools
import os

import h5py
import numpy as np
import pytest
from h5_samples import data_dir, make_dataserver, run_elsewhere, write_tomo_entry1  # noqa: F401


def binary(answer) -> np.ndarray:
    assert answer.status_code == 200, answer.data[:300]
    shape = tuple(int(n) for n in answer.headers["X-Hebi-Shape"].split(",") if n)
    return np.frombuffer(answer.data, answer.headers["X-Hebi-Dtype"]).reshape(shape)


@pytest.fixture
def frame_file(data_dir):
    rng = np.random.default_rng(7)
    frames = rng.normal(100, 5, size=(3, 200, 300)).astype(np.float32)
    frames[1, 57, :] = 10_000.0  # a one-pixel-thin bright line, as a scratch or a diffraction streak
    frames[1, 10, 10] = np.nan  # a dead pixel
    with h5py.File(data_dir / "frames.h5", "w") as f:
        f.create_dataset("stack", data=frames, chunks=(1, 50, 300))
    return frames


def block_view(a: np.ndarray, fy: int, fx: int) -> np.ndarray:
    rows, cols = -(-a.shape[0] // fy) * fy, -(-a.shape[1] // fx) * fx
    padded = np.full((rows, cols), np.nan)
    padded[: a.shape[0], : a.shape[1]] = a
    return padded.reshape(rows // fy, fy, cols // fx, fx)


def test_mean_view_is_the_block_average_at_most_the_requested_size(dataserver, frame_file):
    view = binary(dataserver.get("/data/data?file=data/frames.h5&path=/stack&selection=0,:,:&size=64x64"
                                 "&format=bin"))
    assert view.shape == (50, 60)  # factors ceil(200/64)=4, ceil(300/64)=5: never larger than asked
    expected = np.nanmean(block_view(frame_file[0].astype(np.float64), 4, 5), axis=(1, 3))
    np.testing.assert_allclose(view, expected, rtol=1e-5)


def test_max_view_keeps_a_one_pixel_line_that_decimation_loses(dataserver, frame_file):
    base = "/data/data?file=data/frames.h5&path=/stack&selection=1,:,:&format=bin"
    maxed = binary(dataserver.get(base + "&size=50x50&reduce=max"))
    assert maxed.shape == (50, 50)
    assert (maxed[57 // 4] == 10_000).all()  # every block crossing the line shows it
    assert not np.isnan(maxed).any()  # the dead region does not blank its blocks out
    strided = binary(dataserver.get("/data/data?file=data/frames.h5&path=/stack&selection=1,::4,::6&format=bin"))
    assert strided.max() < 1000  # h5grove's only way to downsample drops the line entirely
    minimum = binary(dataserver.get(base + "&size=50x50&reduce=min"))
    assert minimum.max() < 200


def test_mean_view_ignores_nan_but_keeps_all_nan_blocks_nan(dataserver, data_dir):
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    values[0, 0] = np.nan
    values[2:4, 2:4] = np.nan
    with h5py.File(data_dir / "holes.h5", "w") as f:
        f["v"] = values
    view = binary(dataserver.get("/data/data?file=data/holes.h5&path=/v&size=2x2&format=bin"))
    assert view[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    assert np.isnan(view[1, 1])


def test_integer_and_1d_views(dataserver, data_dir):
    with h5py.File(data_dir / "ints.h5", "w") as f:
        f["img"] = np.arange(100 * 90, dtype=np.uint16).reshape(100, 90)
        f["spectrum"] = np.arange(1000, dtype=np.int32)
    mean = binary(dataserver.get("/data/data?file=data/ints.h5&path=/img&size=10&format=bin"))
    assert mean.dtype == np.float32 and mean.shape == (10, 10)
    assert mean[0, 0] == pytest.approx(np.arange(100 * 90).reshape(100, 90)[:10, :9].mean())
    top = binary(dataserver.get("/data/data?file=data/ints.h5&path=/img&size=10&reduce=max&format=bin"))
    assert top.dtype == np.uint16 and top[-1, -1] == 100 * 90 - 1
    line = dataserver.get("/data/data?file=data/ints.h5&path=/spectrum&size=10&reduce=max")
    assert line.json == list(range(99, 1000, 100))
    assert line.headers["X-Hebi-Bin"] == "100"


def test_a_view_of_a_frame_too_big_to_send_whole_fits_the_byte_limit(make_dataserver, data_dir):
    client, _ = make_dataserver(max_request_bytes=2_000_000)
    with h5py.File(data_dir / "wide.h5", "w") as f:
        f.create_dataset("frame", data=np.ones((1200, 1000), dtype=np.float32))
    whole = client.get("/data/data?file=data/wide.h5&path=/frame&format=bin")
    assert whole.status_code == 413 and whole.json["needed_bytes"] == 4_800_000
    view = binary(client.get("/data/data?file=data/wide.h5&path=/frame&size=100x100&format=bin"))
    assert view.shape == (100, 100) and (view == 1).all()


def test_etag_gives_304_until_the_file_changes(dataserver, data_dir):
    write_tomo_entry1(data_dir / "scan.nxs")
    url = "/data/data?file=data/scan.nxs&path=/entry1/tomo_entry/data/data&selection=0&format=bin&dtype=safe"
    first = dataserver.get(url)
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = dataserver.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    other = dataserver.get(url.replace("selection=0", "selection=1"), headers={"If-None-Match": tag})
    assert other.status_code == 200
    meta = dataserver.get("/data/meta?file=data/scan.nxs&path=/entry1")
    assert dataserver.get("/data/meta?file=data/scan.nxs&path=/entry1",
                          headers={"If-None-Match": meta.headers["ETag"]}).status_code == 304
    run_elsewhere("with h5py.File(path, 'a') as f: f['entry1/tomo_entry/data/data'][0, 0, 0] = -1.0",
                  path=str(data_dir / "scan.nxs"))
    stamp = os.stat(data_dir / "scan.nxs").st_mtime_ns + 1_000_000
    os.utime(data_dir / "scan.nxs", ns=(stamp, stamp))
    changed = dataserver.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert binary(changed)[0, 0] == -1.0


def test_files_stay_open_between_requests_and_reopen_when_they_change(dataserver, dataserver_app, data_dir):
    write_tomo_entry1(data_dir / "scan.nxs")
    cache = dataserver_app.extensions["hebi"]["files"]
    for i in range(5):
        dataserver.get(f"/data/data?file=data/scan.nxs&path=/entry1/tomo_entry/data/data&selection={i}")
    assert cache.opened == 1
    run_elsewhere("with h5py.File(path, 'a') as f: f['entry1/extra'] = 1", path=str(data_dir / "scan.nxs"))
    extra = dataserver.get("/data/meta?file=data/scan.nxs&path=/entry1/extra").json
    assert extra.get("kind") == "dataset", extra
    assert cache.opened == 2


LAYOUTS = {
    "frames": dict(chunks=(1, 37, 41)),
    "blocks": dict(chunks=(4, 8, 16)),
    "contiguous": dict(),
    "big_endian": dict(chunks=(3, 10, 10), dtype=">f8"),
    "int16": dict(chunks=(2, 16, 16), dtype="<i2"),
    "gzip": dict(chunks=(2, 16, 16), compression="gzip"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_chunk_reads_return_exactly_what_hdf5_returns(dataserver, data_dir, layout):
    options = dict(LAYOUTS[layout])
    dtype = options.pop("dtype", "<f4")
    values = (np.arange(7 * 37 * 41) % 251 - 100).astype(dtype).reshape(7, 37, 41)
    path = data_dir / f"{layout}.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=values, **options)
        f.create_dataset("sparse", shape=(7, 37, 41), dtype=dtype, fillvalue=-3, **options)
        f["sparse"][2, 5:9, 30:41] = 1  # most chunks never written: their values are the fill value
    rng = np.random.default_rng(len(layout))
    selections = ["3", "0,:,:", "6,36,40", ":,5,:", ":,:,40", "1:5,10:30,7:8", "-1", "2:3"]
    for _ in range(12):
        members = []
        for size in values.shape:
            a = int(rng.integers(0, size))
            b = int(rng.integers(a + 1, size + 1))
            members.append(str(a) if rng.random() < 0.2 else f"{a}:{b}")
        selections.append(",".join(members))
    sparse = np.full(values.shape, -3, dtype=dtype)
    sparse[2, 5:9, 30:41] = 1
    for (name, array), selection in itertools.product((("d", values), ("sparse", sparse)), selections):
        answer = dataserver.get(f"/data/data?file=data/{layout}.h5&path=/{name}&selection={selection}&format=bin")
        index = tuple(int(m) if ":" not in m else slice(*[int(p) if p else None for p in m.split(":")])
                      for m in selection.split(","))
        np.testing.assert_array_equal(binary(answer), array[index], err_msg=f"{name}[{selection}]")


def test_a_frame_shaped_chunk_is_sent_whole_and_exact(dataserver, data_dir):
    frames = np.random.default_rng(5).random((3, 1024, 1024), dtype=np.float32)
    with h5py.File(data_dir / "frames.h5", "w") as f:
        f.create_dataset("d", data=frames, chunks=(1, 1024, 1024))
        f.create_dataset("rows", data=frames, chunks=(3, 16, 1024))
    for name in ("d", "rows"):
        answer = dataserver.get(f"/data/data?file=data/frames.h5&path=/{name}&selection=2&format=bin&dtype=safe")
        assert int(answer.headers["Content-Length"]) == 4 * 1024 * 1024
        np.testing.assert_array_equal(binary(answer), frames[2])
    flat = dataserver.get("/data/data?file=data/frames.h5&path=/d&selection=1,:,:&format=bin&flatten=true")
    assert flat.headers["X-Hebi-Shape"] == str(1024 * 1024)
    np.testing.assert_array_equal(binary(flat), frames[1].reshape(-1))
