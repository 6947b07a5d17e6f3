"""Every real process list opens, and what hebi writes is Savu 4.2's layout, value for value."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURES

from hebi_common.savu.process_list import ProcessList, ProcessListError, read_process_list, write_process_list

LISTS = sorted((FIXTURES / "process_lists").glob("*.nxs"))


def _stored(path: Path) -> dict:
    """What the file holds, read with plain h5py: {pos: (name, id, active, data)} and the loops."""
    with h5py.File(path, "r") as handle:
        plugins = {}
        for group_name, group in handle["entry/plugin"].items():
            active = bool(group["active"][0]) if "active" in group else True
            plugins[group_name.strip()] = (group["name"][0].decode(), group["id"][0].decode(), active,
                                           json.loads(group["data"][0]))
        loops = []
        if "iterate_plugin_groups" in handle["entry"]:
            for group in handle["entry/iterate_plugin_groups"].values():
                loops.append((int(group["start"][()]), int(group["end"][()]), int(group["iterations"][()])))
    return {"plugins": plugins, "loops": loops}


def _none(value):
    if value == "None":
        return None
    if isinstance(value, list):
        return [_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _none(v) for k, v in value.items()}
    return value


def test_fixtures_are_there():
    assert len(LISTS) >= 15, f"expected the shared Savu fixtures in {FIXTURES}"


@pytest.mark.parametrize("path", LISTS, ids=lambda p: p.name)
def test_every_real_list_opens_and_round_trips(path: Path, tmp_path: Path):
    original = _stored(path)
    process_list = read_process_list(path)
    assert [p.pos for p in process_list.plugins] == [str(i) for i in range(1, len(original["plugins"]) + 1)]
    for plugin in process_list.plugins:
        name, module, active, data = original["plugins"][plugin.pos]
        assert (plugin.name, plugin.module, plugin.active) == (name, module, active)
        for key, value in data.items():  # every stored value is kept (None and "None" both read as None)
            assert plugin.params[key] == _none(value), (plugin.name, key)

    saved = tmp_path / path.name
    write_process_list(process_list, saved)
    again = read_process_list(saved)
    assert [(p.pos, p.name, p.module, p.active, p.params, p.known) for p in again.plugins] == \
        [(p.pos, p.name, p.module, p.active, p.params, p.known) for p in process_list.plugins]
    assert [(l.start, l.end, l.iterations) for l in again.loops] == original["loops"]
    written = _stored(saved)
    for pos, (name, module, active, _data) in original["plugins"].items():
        assert written["plugins"][pos.strip()][:3] == (name, module, active)


def test_written_layout_is_savu_42(tmp_path: Path):
    process_list = read_process_list(FIXTURES / "process_lists" / "iterate_three_median_filters.nxs")
    target = tmp_path / "out.nxs"
    write_process_list(process_list, target)
    with h5py.File(target, "r") as handle:
        entry = handle["entry"]
        assert sorted(entry) == ["framework_citations", "iterate_plugin_groups", "plugin", "savu_notes"]
        assert "NX_class" not in entry.attrs
        assert entry["plugin"].attrs["NX_class"] == "NXprocess"
        assert entry["savu_notes"].attrs["NX_class"] == "NXnote"
        assert entry["framework_citations"].attrs["NX_class"] == "NXcollection"
        assert entry["iterate_plugin_groups"].attrs["NX_class"] == "NXnote"
        version = entry["savu_notes/version"]
        assert version.shape == () and h5py.check_string_dtype(version.dtype).length is None
        assert version[()] in (b"4.2", "4.2")
        for cite in entry["framework_citations"].values():
            assert cite.attrs["NX_class"] == "NXcite"
            assert sorted(cite) == ["bibtex", "description", "doi", "endnote"]
            assert all(cite[k].shape == (1,) and cite[k].dtype.kind == "S" for k in cite)
        for group in entry["plugin"].values():
            assert group.attrs["NX_class"] == "NXnote"
            assert {"active", "data", "id", "name"} <= set(group)
            for key in ("name", "id", "data"):
                dataset = group[key]
                assert dataset.shape == (1,) and dataset.dtype.kind == "S", key
                assert h5py.check_string_dtype(dataset.dtype).encoding == "ascii"
            assert group["active"].shape == (1,) and group["active"].dtype == np.bool_
        loop = entry["iterate_plugin_groups/0"]
        assert "NX_class" not in loop.attrs
        for key, value in (("start", 3), ("end", 5), ("iterations", 2)):
            assert loop[key].shape == () and loop[key].dtype == np.int32 and loop[key][()] == value


def test_not_a_process_list_is_refused_with_the_file_named(tmp_path: Path):
    text = tmp_path / "notes.nxs"
    text.write_text("hello")
    with pytest.raises(ProcessListError, match="notes.nxs is not an HDF5 file"):
        read_process_list(text)
    other = tmp_path / "scan.nxs"
    with h5py.File(other, "w") as handle:
        handle["entry/data"] = [1, 2, 3]
    with pytest.raises(ProcessListError, match="no /entry/plugin group"):
        read_process_list(other)


def test_legacy_padded_list_keeps_unknown_plugins_exactly(tmp_path: Path):
    source = FIXTURES / "process_lists" / "simple_fit_test_XRF.nxs"
    process_list = read_process_list(source)
    assert [p.pos for p in process_list.plugins] == ["1", "2", "3"]
    assert not any(p.known for p in process_list.plugins)
    target = tmp_path / "xrf.nxs"
    write_process_list(process_list, target)
    with h5py.File(source, "r") as a, h5py.File(target, "r") as b:
        for old_name, group in a["entry/plugin"].items():
            assert b["entry/plugin"][old_name.strip()]["data"][0] == group["data"][0]
            assert sorted(b["entry/plugin"][old_name.strip()]) == ["active", "data", "id", "name"]


def test_empty_list_writes_and_reads(tmp_path: Path):
    target = tmp_path / "empty.nxs"
    write_process_list(ProcessList(), target)
    assert read_process_list(target).plugins == []


def _layout(path: Path) -> dict[str, tuple]:
    """Every object of a file: kind, dtype class, string type, shape and NX_class (with its string type)."""
    found = {}
    with h5py.File(path, "r") as handle:
        def visit(name, obj):
            attr = obj.attrs.get("NX_class")
            attr_kind = None
            if attr is not None:
                tid = obj.attrs.get_id("NX_class").get_type()
                attr_kind = (tid.is_variable_str(), tid.get_cset())
            if isinstance(obj, h5py.Dataset):
                string = h5py.check_string_dtype(obj.dtype)
                found[name] = ("dataset", obj.dtype.kind, string and (string.encoding, string.length is None),
                               obj.shape, attr, attr_kind)
            else:
                found[name] = ("group", attr, attr_kind)
        handle.visititems(visit)
    return found


def test_written_file_matches_a_list_savu_42_wrote(tmp_path: Path):
    """Object for object the same names, dtypes, shapes and NX_class attributes as Savu 4.2's own file."""
    original = FIXTURES / "process_lists" / "astra_fbp_ds.nxs"
    target = tmp_path / "copy.nxs"
    write_process_list(read_process_list(original), target)
    expected, written = _layout(original), _layout(target)
    assert set(written) == set(expected)
    for name, shape in expected.items():
        if name.endswith(("/data", "/bibtex", "/description", "/endnote", "/doi", "/name", "/id")):
            assert written[name][:3] == shape[:3] and written[name][3:] == shape[3:], name  # |S<n> may differ in n
        else:
            assert written[name] == shape, name
    with h5py.File(original, "r") as a, h5py.File(target, "r") as b:
        for pos in a["entry/plugin"]:
            old, new = json.loads(a["entry/plugin"][pos]["data"][0]), json.loads(b["entry/plugin"][pos]["data"][0])
            assert [k for k in new if k in old] == list(old)  # Savu's key order; missing keys added as defaults
            assert {k: v for k, v in new.items() if k in old} == old


def test_parameters_are_written_in_definition_order_with_defaults(tmp_path: Path):
    from hebi_common.savu.catalogue import bundled_catalogue
    from hebi_common.savu.process_list import Loop, PluginEntry
    catalogue = bundled_catalogue()
    entries = [PluginEntry("1", "NxtomoLoader", catalogue.get("NxtomoLoader").module, params={"name": "tomo", "preview": []}),
               PluginEntry("2", "MedianFilter", catalogue.get("MedianFilter").module, params={"kernel_size": 5})]
    target = tmp_path / "built.nxs"
    write_process_list(ProcessList(plugins=entries, loops=[Loop(2, 2, 3)]), target)
    with h5py.File(target, "r") as handle:
        data = json.loads(handle["entry/plugin/2/data"][0])
        assert list(data) == [p["name"] for p in catalogue.get("MedianFilter").parameters]
        assert data["kernel_size"] == 5
        assert list(json.loads(handle["entry/plugin/1/data"][0]))[:2] == ["preview", "name"]


def _old_list(path: Path) -> None:
    """A list as very old Savu wrote it: /entry NXdata, /entry/plugin NXplugin, zero-based padded
    positions, desc/hide/user datasets, no active flag, no savu_notes, pre-2.4 names."""
    def strings(group, **values):
        for key, text in values.items():
            group[key] = np.array([text.encode()])
    with h5py.File(path, "w") as handle:
        entry = handle.create_group("entry")
        entry.attrs["NX_class"] = "NXdata"
        plugins = entry.create_group("plugin")
        plugins.attrs["NX_class"] = "NXplugin"
        rows = [("NxtomoLoader", "savu.plugins.loaders.full_field_loaders.nxtomo_loader", {"preview": "None"}),
                ("AstraReconCpu", "savu.plugins.reconstructions.astra_recons.astra_recon_cpu",
                 {"center_of_rotation": 86.5, "reconstruction_type": "SIRT", "number_of_iterations": 20,
                  "force_zero": ["None", None]}),
                ("Hdf5TomoSaver", "savu.plugins.savers.hdf5_tomo_saver", {}),
                ("LegacyThing", "facility.plugins.legacy_thing", {"knob": "None", "dial": [1, "None"]})]
        for number, (name, module, data) in enumerate(rows):
            group = plugins.create_group(f"   {number} ")
            strings(group, name=name, id=module, data=json.dumps(data), desc=json.dumps({}), hide="[]", user="[]")


def test_very_old_lists_open_with_savu_open_time_renames(tmp_path: Path):
    source = tmp_path / "old.nxs"
    _old_list(source)
    process_list = read_process_list(source)
    assert process_list.version is None and process_list.loops == []
    assert [(p.pos, p.name, p.active, p.known) for p in process_list.plugins] == [
        ("1", "NxtomoLoader", True, True), ("2", "AstraReconCpu", True, True), ("3", "Hdf5Saver", True, True),
        ("4", "LegacyThing", True, False)]
    recon = process_list.plugins[1]
    assert recon.params["centre_of_rotation"] == 86.5 and "center_of_rotation" not in recon.params
    assert recon.params["algorithm"] == "SIRT" and recon.params["n_iterations"] == 20
    assert recon.params["force_zero"] == [None, None]
    assert any("center_of_rotation renamed to centre_of_rotation" in n for n in recon.notices)
    saver = process_list.plugins[2]
    assert saver.module == "savu.plugins.savers.hdf5_saver" and "replaced by Hdf5Saver" in saver.notices[0]
    assert process_list.plugins[3].params == {"knob": None, "dial": [1, None]}
    assert process_list.plugins[0].params["preview"] is None  # "None" at the top level is None too

    target = tmp_path / "resaved.nxs"
    write_process_list(process_list, target)
    with h5py.File(target, "r") as handle:
        assert sorted(handle["entry/plugin"]) == ["1", "2", "3", "4"]
        assert sorted(handle["entry/plugin/1"]) == ["active", "data", "id", "name"]  # desc/hide/user dropped
        assert handle["entry/plugin/4/data"][0] == json.dumps({"knob": "None", "dial": [1, "None"]}).encode()
    again = read_process_list(target)
    assert [(p.pos, p.name, p.params) for p in again.plugins] == [(p.pos, p.name, p.params) for p in process_list.plugins]


def test_mutations_respect_the_list_version(tmp_path: Path):
    """Parameter renames apply only to lists older than 2.4, as in Savu."""
    source = tmp_path / "v24.nxs"
    _old_list(source)
    with h5py.File(source, "a") as handle:
        handle["entry/savu_notes/version"] = "2.4"
    recon = read_process_list(source).plugins[1]
    assert "center_of_rotation" in recon.params and recon.notices == []
