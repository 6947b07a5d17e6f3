"""Real Diamond and Savu files, as users have them: /entry and /entry1 layouts, external links that
resolve or dangle, raw detector files without NeXus classes."""
from __future__ import annotations

import h5py
import numpy as np
from conftest import FIXTURES  # noqa: F401 (the shared fixtures; h5_samples skips when absent)
from h5_samples import copy_fixture, data_dir, write_tomo_entry1  # noqa: F401 (fixtures)


def test_savu_output_with_its_external_links_dangling_and_then_present(dataserver, data_dir):
    copy_fixture("24737_processed.nxs", data_dir)
    url = "/data/meta?file=data/24737_processed.nxs&path=/entry/final_result_tomo"
    children = {c["name"]: c for c in dataserver.get(url).json["children"]}
    assert children["data"] == {"kind": "external_link", "name": "data",
                                "target_file": "tomo_p1_dark_flat_field_correction.h5",
                                "target_path": "1-DarkFlatFieldCorrection-tomo/data"}
    assert children["rotation_angle"]["shape"] == [91]
    missing = dataserver.get("/data/data?file=data/24737_processed.nxs&path=/entry/final_result_tomo/data"
                             "&selection=0,:,:&format=bin&dtype=safe")
    assert missing.status_code == 404 and "does not exist" in missing.json["message"]
    plot = dataserver.get("/data/default?file=data/24737_processed.nxs").json
    assert plot["found"] is False and plot["nxdata"] == "/entry/final_result_tomo"

    # The plugin's output file arrives next to the master file (as when the job finishes).
    volume = np.random.default_rng(1).random((91, 135, 160), dtype=np.float32)
    with h5py.File(data_dir / "tomo_p1_dark_flat_field_correction.h5", "w") as f:
        f.create_dataset("1-DarkFlatFieldCorrection-tomo/data", data=volume, chunks=(1, 135, 160))
    plot = dataserver.get("/data/default?file=data/24737_processed.nxs").json
    assert plot["found"] is True and plot["signal"] == "/entry/final_result_tomo/data"
    assert plot["shape"] == [91, 135, 160] and plot["axes"] == ["rotation_angle", "detector_y", "detector_x"]
    frame = dataserver.get("/data/data?file=data/24737_processed.nxs&path=/entry/final_result_tomo/data"
                           "&selection=45,:,:&format=bin&dtype=safe")
    np.testing.assert_array_equal(np.frombuffer(frame.data, "<f4").reshape(135, 160), volume[45])
    sinogram = dataserver.get("/data/data?file=data/24737_processed.nxs&path=/entry/final_result_tomo/data"
                              "&selection=:,60,:&format=bin")
    np.testing.assert_array_equal(np.frombuffer(sinogram.data, "<f4").reshape(91, 160), volume[:, 60])
    # The input link points at an absolute path on the author's machine: shown, not followed.
    tomo = dataserver.get("/data/meta?file=data/24737_processed.nxs&path=/entry/input_data/tomo").json
    assert tomo["kind"] == "group"
    assert {c["name"]: c["kind"] for c in tomo["children"]}["data"] == "external_link"


def test_raw_gda_scan_under_entry1_with_byte_string_attributes(dataserver, data_dir):
    copy_fixture("24888.nxs", data_dir)
    keys = dataserver.get("/data/data?file=data/24888.nxs&path=/entry1/tomo_entry/instrument/detector/image_key"
                          "&format=bin&dtype=safe")
    assert keys.headers["X-Hebi-Shape"] == "111"
    counts = np.bincount(np.frombuffer(keys.data, "<f8").astype(int))
    assert counts.tolist() == [91, 10, 10]  # projections, flats, darks
    stats = dataserver.get("/data/stats?file=data/24888.nxs&path=/entry1/tomo_entry/data/rotation_angle").json
    assert round(stats["min"], 1) == -89.1 and round(stats["max"], 1) == 90.9
    assert dataserver.get("/data/meta?file=data/24888.nxs&path=/entry1/tomo_entry/data/data").json["kind"] \
        == "external_link"


def test_savu_synthetic_output_is_found_without_nx_class_on_its_entries(dataserver, data_dir):
    copy_fixture("synthetic_data.nxs", data_dir)
    with h5py.File(data_dir / "phantom.h5", "w") as f:
        f.create_dataset("phantom/data", data=np.ones((128, 128, 128), dtype=np.float32), chunks=(1, 128, 128))
    plot = dataserver.get("/data/default?file=data/synthetic_data.nxs").json
    assert plot["found"] is True and plot["nxdata"] == "/entry/final_result_phantom"
    assert plot["axes"] == ["voxel_x", "voxel_y", "voxel_z"]
    entry1 = dataserver.get("/data/meta?file=data/synthetic_data.nxs&path=/entry1/tomo_entry/data").json
    assert entry1["kind"] == "group"


def test_i12_detector_files_have_no_nexus_classes_yet_open_on_their_stack(dataserver, data_dir):
    for name in ("dark_flat/pco2_darks_00000.hdf", "tomo_data/pc3_projections.hdf"):
        copy_fixture(f"i12_lfov/{name}", data_dir)
    plot = dataserver.get("/data/default?file=data/pc3_projections.hdf").json
    assert plot["signal"] == "/entry/data/data" and plot["shape"] == [19, 32, 64]
    with h5py.File(FIXTURES / "data" / "i12_lfov" / "tomo_data" / "pc3_projections.hdf", "r", locking=False) as f:
        expected = f["entry/data/data"][7]
    frame = dataserver.get("/data/data?file=data/pc3_projections.hdf&path=/entry/data/data&selection=7"
                           "&format=npy")
    np.testing.assert_array_equal(np.load(__import__("io").BytesIO(frame.data)), expected)
    darks = dataserver.get("/data/stats?file=data/pco2_darks_00000.hdf&path=/entry/data/data").json
    assert 80 < darks["min"] < darks["mean"] < darks["max"] < 400


def test_entry1_layout_of_our_own_opens_through_its_defaults(dataserver, data_dir):
    write_tomo_entry1(data_dir / "raw.nxs")
    plot = dataserver.get("/data/default?file=data/raw.nxs").json
    assert plot["chain"] == ["/", "/entry1", "/entry1/tomo_entry", "/entry1/tomo_entry/data"]
    assert plot["signal"] == "/entry1/tomo_entry/data/data" and plot["how"] == "default attributes"
