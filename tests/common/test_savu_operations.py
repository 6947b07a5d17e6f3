"""Each savu_config command on a real process list, including the awkward parts: letter positions, loop
shifting, None vs "None", tuning ranges and parameter numbering."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from hebi_common.savu.catalogue import bundled_catalogue
from hebi_common.savu.operations import OperationError, apply_operations
from hebi_common.savu.process_list import ProcessList, read_process_list, write_process_list
from hebi_common.savu.validation import check_runnable

CATALOGUE = bundled_catalogue()
LISTS = FIXTURES / "process_lists"


def load(name: str = "iterate_three_median_filters.nxs") -> ProcessList:
    return read_process_list(LISTS / name, CATALOGUE)


def run(process_list: ProcessList, *operations, level="basic"):
    changed, results, _ = apply_operations(process_list, list(operations), CATALOGUE, level)
    return changed, results


def layout(process_list: ProcessList) -> list[str]:
    return [f"{e.pos}:{e.name}" for e in process_list.plugins]


def loops(process_list: ProcessList) -> list[tuple[int, int, int]]:
    return [(l.start, l.end, l.iterations) for l in process_list.loops]


def test_add_at_the_end_and_at_a_position_shifts_the_loop():
    original = load()
    assert loops(original) == [(3, 5, 2)]
    at_end, _ = run(original, {"op": "add", "name": "Hdf5Saver"})
    assert layout(at_end)[-1] == "6:Hdf5Saver" and loops(at_end) == [(3, 5, 2)]
    before, _ = run(original, {"op": "add", "name": "RavenFilter", "pos": "2"})
    assert layout(before)[:3] == ["1:TomoPhantomLoader", "2:RavenFilter", "3:TomoPhantomArtifacts"]
    assert loops(before) == [(4, 6, 2)]  # the loop follows its plugins
    inside, results = run(original, {"op": "add", "name": "RavenFilter", "pos": "4"})
    assert loops(inside) == [] and "removed" in results[0]["notes"][0]
    assert loops(original) == [(3, 5, 2)]  # the original is never touched


def test_letter_positions_as_savu_config_makes_them():
    original = load()
    one, _ = run(original, {"op": "add", "name": "RavenFilter", "pos": "3a"})
    assert layout(one)[2:4] == ["3a:RavenFilter", "3b:MedianFilter"]  # the old 3 became 3b
    two, _ = run(original, {"op": "add", "name": "RavenFilter", "pos": "3b"})
    assert layout(two)[2:4] == ["3a:MedianFilter", "3b:RavenFilter"]
    three, _ = run(one, {"op": "add", "name": "Hdf5Saver", "pos": "3b"})
    assert layout(three)[2:5] == ["3a:RavenFilter", "3b:Hdf5Saver", "3c:MedianFilter"]
    after, _ = run(one, {"op": "add", "name": "Hdf5Saver", "pos": "3f"})
    assert layout(after)[2:5] == ["3a:RavenFilter", "3b:MedianFilter", "3c:Hdf5Saver"]  # next free letter
    plain, _ = run(one, {"op": "add", "name": "Hdf5Saver", "pos": "3"})
    assert layout(plain)[2:5] == ["3:Hdf5Saver", "4a:RavenFilter", "4b:MedianFilter"]
    removed, _ = run(three, {"op": "rem", "pos": "3a"})
    assert layout(removed)[2:5] == ["3a:Hdf5Saver", "3b:MedianFilter", "4:MedianFilter"]


def test_letter_positions_survive_a_save(tmp_path: Path):
    edited, _ = run(load(), {"op": "add", "name": "RavenFilter", "pos": "3a"})
    write_process_list(edited, tmp_path / "x.nxs", CATALOGUE)
    assert layout(read_process_list(tmp_path / "x.nxs", CATALOGUE)) == layout(edited)


def test_rem_several_and_loops():
    original = load()
    before_loop, _ = run(original, {"op": "rem", "pos": "2"})
    assert layout(before_loop) == ["1:TomoPhantomLoader", "2:MedianFilter", "3:MedianFilter", "4:MedianFilter"]
    assert loops(before_loop) == [(2, 4, 2)]
    both, results = run(original, {"op": "rem", "pos": ["2", "4"]})
    assert layout(both) == ["1:TomoPhantomLoader", "2:MedianFilter", "3:MedianFilter"]
    assert loops(both) == [] and results[0]["removed"] == ["TomoPhantomArtifacts", "MedianFilter"]


def test_move_and_dupl():
    original = load("basic_tomo_process.nxs")
    moved, _ = run(original, {"op": "move", "pos": "3", "new_pos": "5"})
    assert [e.name for e in moved.plugins] == ["NxtomoLoader", "DarkFlatFieldCorrection", "PaganinFilter",
                                              "ScikitimageFilterBackProjection", "RavenFilter"]
    assert moved.plugins[-1].params["nvalue"] == "8;9"  # the plugin keeps its values
    copied, _ = run(original, {"op": "dupl", "pos": "3", "new_pos": "4"})
    assert [e.name for e in copied.plugins][2:5] == ["RavenFilter", "RavenFilter", "PaganinFilter"]
    copied.plugins[3].params["uvalue"] = 1
    assert copied.plugins[2].params["uvalue"] == 30  # a deep copy
    to_end, _ = run(original, {"op": "dupl", "pos": "2"})
    assert layout(to_end)[-1] == "6:DarkFlatFieldCorrection"


def test_mod_by_name_by_number_by_text_and_back_to_default():
    original = load("basic_tomo_process.nxs")
    named, _ = run(original, {"op": "mod", "pos": "3", "param": "uvalue", "value": 25})
    assert named.plugins[2].params["uvalue"] == 25
    # savu_config numbering of RavenFilter: basic uvalue, vvalue, nvalue, padFT, then datasets
    numbered, results = run(original, {"op": "mod", "pos": "3", "param": 2, "text": "3"})
    assert results[0]["param"] == "vvalue" and numbered.plugins[2].params["vvalue"] == 3
    typed, _ = run(original, {"op": "mod", "pos": "1", "param": "preview", "text": "[':', 'mid', ':']"})
    assert typed.plugins[0].params["preview"] == [":", "mid", ":"]
    back, _ = run(named, {"op": "mod", "pos": "3", "param": "uvalue", "default": True})
    assert back.plugins[2].params["uvalue"] == CATALOGUE.get("RavenFilter").parameter("uvalue")["default"]


def test_mod_tuning_ranges_and_savu_config_semicolon():
    original = load("multiple_param_values_test.nxs")
    centre = original.plugins[2].params["centre_of_rotation"]
    assert centre == "86;87;88"
    ranged, results = run(original, {"op": "mod", "pos": "3", "param": "centre_of_rotation", "text": "84:86:0.5"},
                          {"op": "expand", "pos": "3", "param": "centre_of_rotation"})
    assert ranged.plugins[2].params["centre_of_rotation"] == "84:86:0.5;"  # "Parameter tuning syntax applied"
    assert results[1]["values"] == [84.0, 84.5, 85.0, 85.5]
    with pytest.raises(OperationError, match="gives no values"):
        run(original, {"op": "mod", "pos": "3", "param": "centre_of_rotation", "value": "90:86;"})


def test_mod_preview_dimensions_and_parts():
    original = load("basic_tomo_process.nxs")
    assert original.plugins[0].params["preview"] == [":", "0:2", ":"]
    whole, _ = run(original, {"op": "mod", "pos": "1", "param": "preview", "dim": 2, "value": "mid"})
    assert whole.plugins[0].params["preview"] == [":", "mid", ":"]
    part, _ = run(original, {"op": "mod", "pos": "1", "param": "preview", "dim": 2, "part": "step", "value": 2})
    assert part.plugins[0].params["preview"] == [":", "0:2:2", ":"]
    with pytest.raises(OperationError, match="dimension 4 does not exist"):
        run(original, {"op": "mod", "pos": "1", "param": "preview", "dim": 4, "value": "mid"})
    expanded, results = run(original, {"op": "expand", "pos": "1", "dims": 4})
    assert expanded.plugins[0].params["preview"] == [":", "0:2", ":", ":"]
    assert results[0]["dimensions"][1] == {"dim": 2, "start": "0", "stop": "2", "step": "1", "chunk": "1"}
    shorter, _ = run(original, {"op": "expand", "pos": "1", "dims": 2})
    assert shorter.plugins[0].params["preview"] == [":", "0:2"]


def test_mod_respects_dependencies_and_hidden_parameters():
    original = load("mpi_gpu_test.nxs")
    assert original.plugins[2].params["algorithm"] == "FBP_CUDA"
    with pytest.raises(OperationError, match="only used when 'algorithm' is") as err:
        run(original, {"op": "mod", "pos": "3", "param": "n_iterations", "value": 50})
    assert err.value.status == 409
    ok, _ = run(original, {"op": "mod", "pos": "3", "param": "algorithm", "value": "SIRT_CUDA"},
                {"op": "mod", "pos": "3", "param": "n_iterations", "value": 50})
    assert ok.plugins[2].params["n_iterations"] == 50
    phantom = load("tomophantom_loader.nxs")
    with pytest.raises(OperationError, match="hidden"):
        run(phantom, {"op": "mod", "pos": "1", "param": "patterns", "value": []})


def test_none_and_string_none_read_alike_and_write_as_null(tmp_path: Path):
    original = load("vo_centering_test.nxs")
    assert original.plugins[0].params["dark"] == [None, None, 1]
    edited, _ = run(load("mpi_gpu_test.nxs"), {"op": "mod", "pos": "3", "param": "force_zero",
                                               "value": ["None", "None"]})
    assert edited.plugins[2].params["force_zero"] in ([None, None], ["None", "None"])
    write_process_list(edited, tmp_path / "n.nxs", CATALOGUE)
    assert read_process_list(tmp_path / "n.nxs", CATALOGUE).plugins[2].params["force_zero"] == [None, None]
    # A plain str parameter set to None reads the same as Savu's "None"
    text_none, _ = run(load("mpi_gpu_test.nxs"), {"op": "mod", "pos": "3", "param": "init_vol", "text": "None"})
    assert text_none.plugins[2].params["init_vol"] is None


def test_set_on_off_and_replace_and_ref():
    original = load("mrc_loader_test.nxs")
    assert [e.active for e in original.plugins] == [True, True, False]
    switched, _ = run(original, {"op": "set", "pos": ["2", "3"], "state": "ON"})
    assert [e.active for e in switched.plugins] == [True, True, True]
    off, _ = run(original, {"op": "set", "pos": "1", "state": "off"})
    assert not off.plugins[0].active and any("switched off" in str(p) for p in check_runnable(off, CATALOGUE))
    replaced, _ = run(original, {"op": "replace", "pos": "2", "name": "MedianFilter"})
    assert replaced.plugins[1].name == "MedianFilter"
    assert replaced.plugins[1].params == CATALOGUE.get("MedianFilter").defaults()
    tuned = load("multiple_param_values_test.nxs")
    tuned.plugins[2].params["stale_key"] = 1  # as old lists have
    refreshed, results = run(tuned, {"op": "ref", "pos": "*"})
    assert "stale_key" not in refreshed.plugins[2].params
    assert refreshed.plugins[2].params["centre_of_rotation"] == "86;87;88"  # surviving values kept
    assert any("stale_key" in note for note in results[0]["notes"])
    reset, _ = run(tuned, {"op": "ref", "pos": ["3"], "defaults": True})
    assert reset.plugins[2].params == CATALOGUE.get("AstraReconCpu").defaults()


def test_iterate_set_update_overlap_and_remove():
    original = load()
    updated, _ = run(original, {"op": "iterate", "set": {"start": 3, "end": 5, "iterations": 7}})
    assert loops(updated) == [(3, 5, 7)]  # the same start/end again only changes the count
    with pytest.raises(OperationError, match="overlaps"):
        run(original, {"op": "iterate", "set": {"start": 2, "end": 3, "iterations": 2}})
    second, _ = run(original, {"op": "add", "name": "MedianFilter"},
                    {"op": "iterate", "set": {"start": 6, "end": 6, "iterations": 3}})
    assert loops(second) == [(3, 5, 2), (6, 6, 3)]
    one_left, _ = run(second, {"op": "iterate", "remove": [1]})
    assert loops(one_left) == [(6, 6, 3)]
    none_left, _ = run(second, {"op": "iterate", "remove": "all"})
    assert loops(none_left) == []
    moved, _ = run(second, {"op": "move", "pos": "2", "new_pos": "6"})
    assert loops(moved) == [(2, 4, 2), (5, 5, 3)]  # both loops follow their plugins
    into, _ = run(second, {"op": "move", "pos": "6", "new_pos": "4"})
    assert loops(into) == []  # taken out of one loop and dropped inside the other: both are removed


def test_loaders_must_come_first_and_together():
    original = load("basic_tomo_process.nxs")
    with pytest.raises(OperationError, match="must be a loader plugin"):
        run(original, {"op": "move", "pos": "1", "new_pos": "3"})
    with pytest.raises(OperationError, match="at the beginning"):
        run(original, {"op": "add", "name": "NxtomoLoader", "pos": "3"})
    two_loaders, _ = run(original, {"op": "add", "name": "SavuNexusLoader", "pos": "2"})
    assert [e.name for e in two_loaders.plugins][:2] == ["NxtomoLoader", "SavuNexusLoader"]
    # An order that is wrong half-way through a batch is fine if the batch ends right.
    fixed, _ = run(original, {"op": "rem", "pos": "1"}, {"op": "add", "name": "ImageLoader", "pos": "1"})
    assert fixed.plugins[0].name == "ImageLoader"


def test_queries_disp_level_cite_coll_list_change_nothing():
    original = load("mpi_gpu_test.nxs")
    changed, results, modified = apply_operations(original, [
        {"op": "level", "level": "advanced"}, {"op": "disp", "start": "3"}, {"op": "cite"}, {"op": "coll"},
        {"op": "list", "q": "astra"}], CATALOGUE)
    assert not modified
    assert results[0] == {"level": "advanced"}
    shown = results[1]["plugins"][0]
    assert results[1]["level"] == "advanced" and shown["name"] == "AstraReconGpu"
    names = [p["name"] for p in shown["parameters"]]
    assert "res_norm" not in names and "FBP_filter" in names  # dependency on algorithm FBP_CUDA
    assert all(p["number"] == p["mod_number"] for p in shown["parameters"])
    basic = apply_operations(original, [{"op": "disp", "start": "3", "level": "basic"}], CATALOGUE)[1][0]
    assert {p["visibility"] for p in basic["plugins"][0]["parameters"]} == {"basic"}
    assert [c["name"] for c in results[2]["framework"]] == ["Hdf5", "MPI", "Savu", "Savu repository"]
    assert len(results[2]["plugins"][2]["citations"]) == 3
    assert "AstraReconGpu" in results[3]["collections"]["reconstruction"]
    assert {p["name"] for p in results[4]["plugins"]} >= {"AstraReconCpu", "AstraReconGpu"}


def test_a_failing_batch_changes_nothing_and_names_the_operation():
    original = load()
    before = layout(original)
    with pytest.raises(OperationError, match=r"operation 2 \(add\): Unknown plugin 'NoSuchFilter'") as err:
        run(original, {"op": "add", "name": "MedianFilter"}, {"op": "add", "name": "NoSuchFilter"})
    assert err.value.status == 404
    assert layout(original) == before


def test_unknown_plugins_stay_as_they_are_and_block_only_running(tmp_path: Path):
    original = load("lfov_loader_and_image_stitching_test.nxs")
    assert [e.known for e in original.plugins] == [False, False]
    problems = check_runnable(original, CATALOGUE)
    assert any("ImageStitching" in str(p) and "not available" in str(p) for p in problems)
    with pytest.raises(OperationError, match="not in the plugin catalogue") as err:
        run(original, {"op": "mod", "pos": "2", "param": "overlap", "value": 4})
    assert err.value.status == 409
    edited, _ = run(original, {"op": "add", "name": "NoProcessPlugin"}, {"op": "set", "pos": "2", "state": "off"})
    write_process_list(edited, tmp_path / "l.nxs", CATALOGUE)
    again = read_process_list(tmp_path / "l.nxs", CATALOGUE)
    assert again.plugins[1].params == original.plugins[1].params and not again.plugins[1].known
    assert not any("ImageStitching" in str(p) for p in check_runnable(again, CATALOGUE))  # it is off now


def test_check_runnable_reports_bad_values_and_stale_keys():
    good = load("basic_tomo_process.nxs")
    assert check_runnable(good, CATALOGUE) == []
    bad = good.copy()
    bad.plugins[2].params["uvalue"] = "thirty"
    bad.plugins[3].params["old_name"] = 3
    messages = [str(p) for p in check_runnable(bad, CATALOGUE)]
    assert any("uvalue" in m and "integer" in m for m in messages)
    assert any("'old_name' is not valid for plugin 4 (PaganinFilter)" in m for m in messages)
    assert [str(p) for p in check_runnable(ProcessList(), CATALOGUE)] == [
        "The process list is empty: add a loader and the processing steps first."]


def test_mod_all_sets_a_parameter_in_every_plugin_that_has_it():
    original = load()
    changed, results = run(original, {"op": "mod", "all": True, "param": "kernel_size", "value": 5})
    assert results[0]["changed"] == ["3", "4", "5"]
    assert [e.params.get("kernel_size") for e in changed.plugins[2:]] == [5, 5, 5]
    with pytest.raises(OperationError, match="'kernel_size'.*integer"):
        run(original, {"op": "mod", "all": True, "param": "kernel_size", "value": "big"})
    with pytest.raises(OperationError, match="no plugin in the list has a parameter 'colour'"):
        run(original, {"op": "mod", "all": True, "param": "colour", "value": 1})
