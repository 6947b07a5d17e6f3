"""Savu's parameter rules: the dtype grammar, value checks, tuning, previews and savu_config numbering."""
from __future__ import annotations

import pytest

from hebi_common.savu.catalogue import bundled_catalogue
from hebi_common.savu.parameters import (
    DtypeError,
    expand_tuning,
    matches,
    numbered_parameters,
    parse_dtype,
    parse_value_text,
    preview_problem,
    savu_value,
    value_problem,
)

CATALOGUE = bundled_catalogue()


def definition(plugin: str, parameter: str) -> dict:
    return CATALOGUE.get(plugin).parameter(parameter)


@pytest.mark.parametrize("dtype, good, bad", [
    ("int", [3, -1], [3.5, True, "3", None]),
    ("float", [1.5, 2], [True, "1.5", None]),
    ("bool", [True, False, "true", "FALSE"], [1, "yes"]),
    ("[None,float]", [None, 1.0, 3], ["x", [1.0]]),
    ("[list[],list[str]]", [[], ["tomo"]], [["tomo", 1], "tomo", None]),
    ("list[float,float]", [[1.0, 2]], [[1.0], [1.0, 2.0, 3.0], ["a", "b"]]),
    ("[list[float,float],list[None,None]]", [[1, 2], [None, None], ["None", "None"]], [[None, 1.0, 2.0]]),
    ("[list[filepath, h5path, float], list[None, None, float]]", [["/a/dark.h5", "/entry/data", 1.0],
                                                                  [None, None, 1]], [["", "/x", 1.0]]),
    ("[float, str, dict{int:float}]", [86.5, "cor", {1: 86.0}, {"12": 85.5}], [{"a": 1.0}, [86]]),
    ("[preview, dict{str:preview}, dict{}]", [[], [":", "mid", ":"], {}, {"tomo": ["mid"]}], [{"tomo": 3}]),
    ("nptype", ["float32", "int16"], ["float99", 3]),
])
def test_dtype_grammar_accepts_and_refuses(dtype, good, bad):
    node = parse_dtype(dtype)
    for value in good:
        assert matches(node, value), (dtype, value)
    for value in bad:
        assert not matches(node, value), (dtype, value)


def test_every_catalogue_dtype_parses_and_describes_itself():
    for plugin in CATALOGUE.all():
        for parameter in plugin.parameters:
            assert parse_dtype(parameter["dtype"]).describe()
    assert parse_dtype("[None, float]").describe() == "None or float/integer"
    with pytest.raises(DtypeError):
        parse_dtype("list[banana]")


def test_value_errors_read_like_savu_config():
    kernel = definition("MedianFilter", "kernel_size")
    assert value_problem("kernel_size", "abc", kernel) == "The parameter 'kernel_size' does not match the type: 'integer'."
    pattern = definition("MedianFilter", "pattern")
    assert "does not match the options: 'SINOGRAM' or 'VOLUME_XZ'" in value_problem("pattern", "PROJ", pattern)
    assert value_problem("pattern", "SINOGRAM", pattern) is None


def test_the_default_is_always_accepted_even_when_its_type_is_odd():
    # Upstream quirk kept: interpolation is declared int with string options; the default still passes.
    interpolation = definition("ScikitimageFilterBackProjection", "interpolation")
    assert value_problem("interpolation", "linear", interpolation) is None
    assert value_problem("interpolation", "nearest", interpolation) is not None


def test_tuning_values_are_checked_one_by_one():
    centre = definition("AstraReconCpu", "centre_of_rotation")
    assert value_problem("centre_of_rotation", "86;87;88", centre) is None
    algorithm = definition("AstraReconCpu", "algorithm")
    assert value_problem("algorithm", "FBP;CGLS", algorithm) is None
    problem = value_problem("algorithm", "FBP;MAGIC", algorithm)
    assert "options" in problem and "'MAGIC'" in problem
    nvalue = definition("RavenFilter", "nvalue")
    assert "integer" in value_problem("nvalue", "8;nine", nvalue)


def test_tuning_ranges_follow_numpy_arange():
    assert expand_tuning("centre_of_rotation", "84:86:0.5;") == [84.0, 84.5, 85.0, 85.5]  # stop excluded
    assert expand_tuning("centre_of_rotation", "1:4;") == [1, 2, 3]
    assert expand_tuning("centre_of_rotation", "1:4;99;100") == [1, 2, 3]  # after a range the rest is ignored
    assert expand_tuning("algorithm", "FBP;;CGLS;") == ["FBP", "CGLS"]  # empty pieces dropped
    assert expand_tuning("denominator_scale", "1.0;") == [1.0]
    for bad in ("86:84;", "1:2:0;", "a:b;", "1:2:3:4;", ";;"):
        with pytest.raises(ValueError, match="centre_of_rotation"):
            expand_tuning("centre_of_rotation", bad)


def test_none_and_the_string_none_are_the_same():
    force_zero = definition("AstraReconCpu", "force_zero")
    assert value_problem("force_zero", [None, None], force_zero) is None
    assert value_problem("force_zero", ["None", "None"], force_zero) is None
    assert savu_value("None") is None
    assert parse_value_text("None") is None
    assert parse_value_text("'None'") == "None"


def test_values_typed_as_in_savu_config():
    assert parse_value_text("[1, 2]") == [1, 2]
    assert parse_value_text("1e-5") == 1e-5
    assert parse_value_text("True") is True
    assert parse_value_text("FBP") == "FBP"
    assert parse_value_text("86;87") == "86;87"
    assert savu_value("5") == 5 and savu_value("FBP") == "FBP" and savu_value("8;9") == "8;9"


@pytest.mark.parametrize("preview, ok", [
    ([], True), ([":", "mid", ":"], True), (["0:end:1:1", "mid:mid+1:1:1", "0:end:1:1"], True),
    (["mid-5:mid+6", "0:end:2", "300:end-300"], True), ([1, 2.5, "::"], True), (["start:end"], True),
    (["middle"], False), (["1:2:3:4:5"], False), (["__import__('os')"], False), ("[:, :, 0]", False),
    ([True], False),
])
def test_preview_syntax(preview, ok):
    assert (preview_problem(preview) is None) is ok


def test_preview_cannot_be_tuned():
    preview = definition("NxtomoLoader", "preview")
    assert value_problem("preview", "1;2", preview) is not None


def test_parameter_numbering_per_level():
    plugin = CATALOGUE.get("AstraReconCpu")
    params = plugin.defaults()
    mod_numbers = numbered_parameters(plugin.parameters, params)
    visibilities = [p["visibility"] for p in mod_numbers]
    # mod P.n: basic, intermediate, advanced, then datasets; hidden ones never numbered
    assert visibilities == sorted(visibilities, key=["basic", "intermediate", "advanced", "datasets"].index)
    assert [p["number"] for p in mod_numbers] == list(range(1, len(mod_numbers) + 1))
    basic = numbered_parameters(plugin.parameters, params, "basic")
    assert {p["visibility"] for p in basic} == {"basic"}
    assert [p["name"] for p in basic] == [p["name"] for p in mod_numbers[:len(basic)]]
    intermediate = numbered_parameters(plugin.parameters, params, "intermediate")
    in_datasets_disp = next(p["number"] for p in intermediate if p["name"] == "in_datasets")
    in_datasets_mod = next(p["number"] for p in mod_numbers if p["name"] == "in_datasets")
    assert "advanced" not in {p["visibility"] for p in intermediate}
    assert in_datasets_disp < in_datasets_mod  # disp at intermediate leaves the advanced ones out


def test_dependencies_hide_parameters_from_the_numbering():
    plugin = CATALOGUE.get("AstraReconGpu")
    fbp = plugin.defaults() | {"algorithm": "FBP_CUDA"}
    sirt = plugin.defaults() | {"algorithm": "SIRT_CUDA"}
    names_fbp = [p["name"] for p in numbered_parameters(plugin.parameters, fbp)]
    names_sirt = [p["name"] for p in numbered_parameters(plugin.parameters, sirt)]
    assert "FBP_filter" in names_fbp and "n_iterations" not in names_fbp
    assert "n_iterations" in names_sirt and "FBP_filter" not in names_sirt
