"""Which plot a file opens on: NeXus `default` attributes wherever they lead, never an assumed /entry."""
from __future__ import annotations

import h5py
import numpy as np
from h5_samples import data_dir  # noqa: F401 (fixture)


def nxdata(group: h5py.Group, name: str, shape=(4, 5, 6), signal: str = "data") -> h5py.Group:
    made = group.create_group(name)
    made.attrs["NX_class"] = "NXdata"
    made.attrs["signal"] = signal
    made.create_dataset(signal, data=np.zeros(shape, dtype=np.float32))
    return made


def test_absolute_and_relative_defaults_are_followed_past_a_decoy_entry(dataserver, data_dir):
    with h5py.File(data_dir / "f.nxs", "w") as f:
        decoy = f.create_group("entry")
        decoy.attrs["NX_class"] = "NXentry"
        nxdata(decoy, "data", shape=(2, 2))
        f.attrs["default"] = "/scan_7"
        scan = f.create_group("scan_7")
        scan.attrs["NX_class"] = "NXentry"
        scan.attrs["default"] = "results"
        results = scan.create_group("results")
        results.attrs["NX_class"] = "NXprocess"
        results.attrs["default"] = "reconstruction"
        nxdata(results, "reconstruction", shape=(8, 16, 16), signal="volume")
    plot = dataserver.get("/data/default?file=data/f.nxs").json
    assert plot["signal"] == "/scan_7/results/reconstruction/volume" and plot["shape"] == [8, 16, 16]
    assert plot["chain"] == ["/", "/scan_7", "/scan_7/results", "/scan_7/results/reconstruction"]


def test_a_default_that_leads_nowhere_falls_back_to_the_nexus_implicit_rule(dataserver, data_dir):
    with h5py.File(data_dir / "f.nxs", "w") as f:
        f.attrs["default"] = "entry9"  # a typo in the writer
        entry = f.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        nxdata(entry, "tomo")
    plot = dataserver.get("/data/default?file=data/f.nxs").json
    assert plot["found"] and plot["nxdata"] == "/entry1/tomo"
    assert plot["how"].startswith("implicit NeXus rule")


def test_a_default_through_a_link_out_of_the_roots_is_not_followed(dataserver, data_dir, tmp_path):
    with h5py.File(tmp_path / "outside.nxs", "w") as f:
        nxdata(f, "secret", shape=(3, 3))
    with h5py.File(data_dir / "f.nxs", "w") as f:
        f.attrs["default"] = "away"
        f["away"] = h5py.ExternalLink(str(tmp_path / "outside.nxs"), "/secret")
        f.create_dataset("frames", data=np.ones((5, 6, 7), dtype=np.uint16))
    answer = dataserver.get("/data/default?file=data/f.nxs")
    assert answer.status_code == 200
    plot = answer.json
    assert plot["signal"] == "/frames" and plot["how"] == "largest dataset (no NeXus default)"
    assert "secret" not in answer.text


def test_a_file_with_nothing_to_plot_says_so(dataserver, data_dir):
    with h5py.File(data_dir / "f.h5", "w") as f:
        f["x"] = np.arange(5)
    assert dataserver.get("/data/default?file=data/f.h5").json == {
        "found": False, "how": "nothing to plot: no NXdata and no dataset of 2 or more dimensions", "chain": ["/"]}
